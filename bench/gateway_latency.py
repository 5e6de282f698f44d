"""Benchmark: what the gateway stand-in adds on top of calling the model simulator directly.

Starts the local stand-ins (each its own process, as `make run` does), then from this process:
1. a steady open-loop load (default 100 requests/s, at most 50 in flight) against the simulator
   directly and through the gateway, alternating phases, plain and streamed; latency is measured
   from the moment a request was due, so a slow server cannot hide queueing (no coordinated
   omission); streamed calls report time to first token and to last byte;
2. saturation: 50 concurrent clients with no pacing, requests per second on each path, against a
   second stack whose simulator answers at once (no latency, no time to first token), so the
   figure is the CPU-bound throughput of each path rather than 50 / model latency.
Prints a table; `--json` also writes the figures. Run: `make bench-gateway` or
`python -m bench.gateway_latency --seconds 20`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from standins.stack import CONFIG_FILE, StackInfo, running_stack

COMPLETION_TOKENS = 20
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]


@dataclass
class Sample:
    total_ms: float
    first_byte_ms: float
    ok: bool


@dataclass
class PhaseResult:
    path: str
    streamed: bool
    samples: list[Sample] = field(default_factory=list)
    late_starts: int = 0
    achieved_rps: float = 0.0

    def quantile(self, q: float, attr: str = "total_ms") -> float:
        values: list[float] = sorted(getattr(s, attr) for s in self.samples if s.ok)
        if not values:
            return float("nan")
        index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
        return values[index]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)


def _request(target: dict[str, Any], streamed: bool) -> tuple[str, dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"messages": MESSAGES, "max_completion_tokens": 100}
    if streamed:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"x-sim-completion-tokens": str(COMPLETION_TOKENS), "x-user-id": "bench", **target["headers"]}
    return target["url"], body, headers


async def _one(session: aiohttp.ClientSession, target: dict[str, Any], streamed: bool, due: float) -> Sample:
    url, body, headers = _request(target, streamed)
    first_byte = None
    try:
        async with session.post(url, json=body, headers=headers) as response:
            async for _ in response.content.iter_any():
                if first_byte is None:
                    first_byte = time.perf_counter()
            ok = response.status == 200
    except aiohttp.ClientError:
        ok = False
    end = time.perf_counter()
    return Sample((end - due) * 1000, ((first_byte or end) - due) * 1000, ok)


async def steady_phase(
    target: dict[str, Any], path: str, streamed: bool, rate_rps: float, seconds: float, concurrency: int
) -> PhaseResult:
    result = PhaseResult(path, streamed)
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        count = int(rate_rps * seconds)
        start = time.perf_counter() + 0.05
        tasks = []

        async def run(due: float) -> None:
            async with limit:
                if time.perf_counter() - due > 0.005:
                    result.late_starts += 1
                result.samples.append(await _one(session, target, streamed, due))

        for index in range(count):
            due = start + index / rate_rps
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(run(due)))
        await asyncio.gather(*tasks)
        result.achieved_rps = count / (time.perf_counter() - start)
    return result


async def saturation(target: dict[str, Any], seconds: float, concurrency: int) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                sample = await _one(session, target, False, time.perf_counter())
                done += sample.ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


# One of standins/stack.config.json's deployments (the small model: the cheapest to simulate).
BENCH_DEPLOYMENT = "gpt-5.6-luna"


def _targets(info: StackInfo) -> dict[str, dict[str, Any]]:
    api = info.api_version
    key = next(iter(info.subscriptions.values()))
    path = f"/openai/deployments/{BENCH_DEPLOYMENT}/chat/completions?api-version={api}"
    targets = {
        "direct": {
            "url": f"{info.simulator_url}{path}",
            "headers": {"api-key": "bench"},
        },
        "gateway": {
            "url": f"{info.gateway_url}/inference{path}",
            "headers": {"api-key": key},
        },
    }
    return targets


async def run_saturation(info: StackInfo, args: argparse.Namespace) -> dict[str, float]:
    saturation_rps = {}
    for path, target in _targets(info).items():
        print(f"  saturation, {args.concurrency} clients: {path}...", file=sys.stderr, flush=True)
        await saturation(target, 1, args.concurrency)  # warm-up
        saturation_rps[path] = await saturation(target, args.saturation_seconds, args.concurrency)
    return saturation_rps


async def run_benchmark(info: StackInfo, args: argparse.Namespace) -> dict[str, Any]:
    targets = _targets(info)
    # Warm both paths (connection pools, tokenizer caches) before measuring.
    for target in targets.values():
        await steady_phase(target, "warm", False, 50, 1, args.concurrency)
    phases: list[PhaseResult] = []
    for streamed in (False, True):
        for path in ("direct", "gateway"):
            print(
                f"  steady {args.rate:.0f} req/s for {args.seconds:.0f}s: {path}, "
                f"{'streamed' if streamed else 'plain'}...",
                file=sys.stderr,
                flush=True,
            )
            phases.append(await steady_phase(targets[path], path, streamed, args.rate, args.seconds, args.concurrency))
    return {"phases": phases}


def report(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    phases: list[PhaseResult] = results["phases"]
    by_key = {(p.path, p.streamed): p for p in phases}
    print(
        f"\nGateway added latency at {args.rate:.0f} requests/s, {args.concurrency} concurrent clients, "
        f"{COMPLETION_TOKENS} completion tokens per call (ms)"
    )
    print(
        f"{'mode':<10}{'metric':<16}{'direct p50':>11}{'p99':>9}{'gateway p50':>13}{'p99':>9}"
        f"{'added p50':>11}{'p99':>9}"
    )
    figures: dict[str, Any] = {}
    for streamed in (False, True):
        direct, gateway = by_key[("direct", streamed)], by_key[("gateway", streamed)]
        metrics = (
            [("total", "total_ms")] if not streamed else [("first token", "first_byte_ms"), ("last byte", "total_ms")]
        )
        for label, attr in metrics:
            d50, d99 = direct.quantile(0.5, attr), direct.quantile(0.99, attr)
            g50, g99 = gateway.quantile(0.5, attr), gateway.quantile(0.99, attr)
            mode = "streamed" if streamed else "plain"
            print(
                f"{mode:<10}{label:<16}{d50:>11.2f}{d99:>9.2f}{g50:>13.2f}{g99:>9.2f}"
                f"{g50 - d50:>11.2f}{g99 - d99:>9.2f}"
            )
            figures[f"{mode} {label}"] = {
                "direct_p50_ms": d50,
                "direct_p99_ms": d99,
                "gateway_p50_ms": g50,
                "gateway_p99_ms": g99,
                "added_p50_ms": g50 - d50,
                "added_p99_ms": g99 - d99,
            }
    for phase in phases:
        print(
            f"  {phase.path:<8} {'streamed' if phase.streamed else 'plain':<9} calls={len(phase.samples)} "
            f"errors={phase.errors} achieved={phase.achieved_rps:.1f} req/s late starts={phase.late_starts}"
        )
    print(
        f"Saturation ({args.concurrency} clients, plain): direct {results['saturation_rps']['direct']:.0f} req/s, "
        f"gateway {results['saturation_rps']['gateway']:.0f} req/s"
    )
    figures["saturation_rps"] = results["saturation_rps"]
    figures["errors"] = sum(p.errors for p in phases)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second in the steady phases")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each steady phase")
    parser.add_argument("--saturation-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-gateway-") as data_dir,
        running_stack(Path(data_dir), fixed_ports=False, with_host=False) as stack,
    ):
        print("stack up; measuring...", file=sys.stderr, flush=True)
        results = asyncio.run(run_benchmark(stack.info, args))
    instant = json.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    instant["simulator"].update({"latency_ms": 0, "time_to_first_token_ms": 0, "tokens_per_second": 1_000_000})
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as data_dir:
        config_file = Path(data_dir) / "stack.config.json"
        config_file.write_text(json.dumps(instant), encoding="utf-8")
        with running_stack(Path(data_dir), fixed_ports=False, with_host=False, config_file=config_file) as stack:
            results["saturation_rps"] = asyncio.run(run_saturation(stack.info, args))
    figures = report(results, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
