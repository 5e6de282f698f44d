"""Benchmark: the highest request rate one traffic run sustains, and where its CPU time goes.

Starts the local stand-ins (each its own process), then from this process runs the traffic
timer's sending path (plan → open-loop dispatch → openai SDK → gateway → simulator) at rising
target rates, one run per rate, and prints per rate:
- pacing error: |achieved send rate − target| / target, the achieved rate taken from the
  actual send times (first to last, plus one interval); and send lateness p50/p99/max;
- failures and calls not sent; a rate counts as sustained when pacing error ≤ 2 % and every
  call was sent and answered;
- CPU time per call of this process (the stand-ins run in other processes).
Then one profiled run splits the CPU per call between our code (shared/), the openai SDK (with
pydantic), the HTTP stack (httpx2/httpcore/h11/anyio) and the event loop / stdlib.

Run: `python -m bench.traffic_rate` (options: --seconds, --rates, --concurrency, --json).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from shared.config import TrafficSettings
from shared.traffic.pacing import SystemClock
from shared.traffic.personas import load_personas
from shared.traffic.plan import plan_run
from shared.traffic.results import percentile
from shared.traffic.run import send_traffic, send_window_seconds
from standins.stack import Stack, running_stack

PACING_ERROR_LIMIT = 0.02
TARGET_RATE = 200.0


@dataclass
class RateResult:
    target_rps: float
    calls: int
    achieved_rps: float
    pacing_error: float
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float
    failed: int
    not_sent: int
    latency_p50_ms: float
    cpu_ms_per_call: float

    @property
    def sustained(self) -> bool:
        return self.pacing_error <= PACING_ERROR_LIMIT and self.failed == 0 and self.not_sent == 0


def _personas_file(stack: Stack, directory: Path) -> Path:
    # Small prompts and replies: the figure is about the client's pacing and CPU, not the model.
    names = sorted(stack.info.subscriptions)
    personas = [
        {"name": f"plain-{i}", "subscription": name, "subscription_key_setting": f"KEY_{i}",
         "user_id": f"bench-plain-{i}", "deployment": "gpt-5.6-luna", "prompt_tokens": {"min": 60, "max": 200},
         "max_tokens": 12, "stream_share": 0.0, "weight": 1}
        for i, name in enumerate(names)
    ] + [
        {"name": f"stream-{i}", "subscription": name, "subscription_key_setting": f"KEY_{i}",
         "user_id": f"bench-stream-{i}", "deployment": "gpt-5.6-luna", "prompt_tokens": {"min": 60, "max": 200},
         "max_tokens": 12, "stream_share": 1.0, "include_usage_share": 1.0, "weight": 1}
        for i, name in enumerate(names)
    ]
    path = directory / "bench-personas.json"
    path.write_text(json.dumps({"personas": personas}), encoding="utf-8")
    return path


def _settings(stack: Stack, personas_file: Path, seconds: float, concurrency: int) -> TrafficSettings:
    keys = {f"KEY_{i}": stack.info.subscriptions[name] for i, name in enumerate(sorted(stack.info.subscriptions))}
    timeout_seconds = 10.0
    # Budget so that the send window (budget − upload reserve − one timeout) is `seconds`.
    budget = seconds + timeout_seconds + 2.0
    settings = TrafficSettings(
        gateway_url=stack.info.gateway_url, openai_api_version=stack.info.api_version,
        personas_file=personas_file, seed=7, requests_per_run=1, concurrency=concurrency,
        time_budget_seconds=budget, request_timeout_seconds=timeout_seconds, max_retries=0,
        failure_warn_ratio=1.0, ingestion_endpoint="unused", ingestion_rule_id="unused",
        ingestion_stream="unused", subscription_keys=keys,
    )
    while send_window_seconds(settings) < seconds:
        settings = replace(settings, time_budget_seconds=settings.time_budget_seconds + 0.5)
    return settings


def run_rate(settings: TrafficSettings, rate: float, profile: cProfile.Profile | None = None) -> RateResult:
    personas = load_personas(settings.personas_file, settings.subscription_keys)
    window = send_window_seconds(settings)
    calls = plan_run(personas, requests=round(rate * window), seed=settings.seed or 0, send_window_seconds=window)
    clock = SystemClock()
    cpu_before = time.process_time()
    if profile is not None:
        profile.enable()
    result = asyncio.run(send_traffic(settings, personas, calls, clock=clock, start=clock.now() + 0.2))
    if profile is not None:
        profile.disable()
    cpu_seconds = time.process_time() - cpu_before
    outcomes = result.outcomes
    interval = window / len(calls)
    lateness = [o.lateness_seconds * 1000 for o in outcomes]
    starts = sorted(o.call.send_offset_seconds + o.lateness_seconds for o in outcomes)
    achieved = len(starts) / (starts[-1] - starts[0] + interval) if starts else 0.0
    target = len(calls) / window
    return RateResult(
        target_rps=target,
        calls=len(calls),
        achieved_rps=achieved,
        pacing_error=abs(achieved - target) / target,
        lateness_p50_ms=percentile(lateness, 0.5) or 0.0,
        lateness_p99_ms=percentile(lateness, 0.99) or 0.0,
        lateness_max_ms=max(lateness, default=0.0),
        failed=sum(1 for o in outcomes if not o.ok),
        not_sent=len(result.not_sent),
        latency_p50_ms=percentile([o.latency_ms for o in outcomes if o.latency_ms is not None], 0.5) or 0.0,
        cpu_ms_per_call=cpu_seconds * 1000 / max(1, len(outcomes)),
    )


_CATEGORIES = (
    ("our code (shared/)", ("/shared/",)),
    ("openai SDK + pydantic", ("/openai/", "/pydantic", "/typing_extensions", "/distro/", "/jiter/")),
    ("HTTP stack (httpx2, httpcore, h11, anyio)", ("/httpx2/", "/httpcore", "/h11/", "/anyio/", "/sniffio/",
                                                   "/certifi/", "/idna/")),
)


def cpu_split(profile: cProfile.Profile) -> dict[str, float]:
    """Share of profiled CPU (own time of each function) by where the function lives."""
    stats = pstats.Stats(profile)
    totals: dict[str, float] = {}
    for (filename, _, _), (_, _, own_seconds, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        category = next((name for name, markers in _CATEGORIES if any(m in filename for m in markers)),
                        "event loop, sockets, ssl, json, stdlib")
        totals[category] = totals.get(category, 0.0) + own_seconds
    everything = sum(totals.values()) or 1.0
    return {name: seconds / everything for name, seconds in sorted(totals.items(), key=lambda item: -item[1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.traffic_rate", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="send window of each run")
    parser.add_argument("--rates", default="50,100,150,200,250,300,400", help="target requests/s, comma separated")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--profile-rate", type=float, default=100.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    rates = [float(rate) for rate in args.rates.split(",")]

    with tempfile.TemporaryDirectory(prefix="traffic-bench-") as tmp, running_stack(Path(tmp) / "stack") as stack:
        settings = _settings(stack, _personas_file(stack, Path(tmp)), args.seconds, args.concurrency)
        run_rate(settings, 20.0)  # warm-up: connections, encodings, imports
        print(f"traffic run pacing against the local stack ({args.seconds:.0f}s send window per rate, "
              f"concurrency {args.concurrency}, half streamed)", flush=True)
        print(f"{'target/s':>9} {'calls':>6} {'achieved/s':>10} {'pacing err':>10} {'late p50':>9} "
              f"{'late p99':>9} {'late max':>9} {'failed':>6} {'unsent':>6} {'lat p50':>8} {'CPU/call':>9}")
        results = []
        for rate in rates:
            result = run_rate(settings, rate)
            results.append(result)
            print(f"{result.target_rps:9.0f} {result.calls:6d} {result.achieved_rps:10.1f} "
                  f"{result.pacing_error:10.2%} {result.lateness_p50_ms:8.1f}ms {result.lateness_p99_ms:8.1f}ms "
                  f"{result.lateness_max_ms:8.1f}ms {result.failed:6d} {result.not_sent:6d} "
                  f"{result.latency_p50_ms:6.1f}ms {result.cpu_ms_per_call:7.2f}ms"
                  + ("" if result.sustained else "  (not sustained)"), flush=True)
        sustained = [r.target_rps for r in results if r.sustained]
        best = max(sustained, default=0.0)
        print(f"highest sustained rate (pacing error <= {PACING_ERROR_LIMIT:.0%}, nothing failed or unsent): "
              f"{best:.0f} requests/s (target {TARGET_RATE:.0f})")

        profile = cProfile.Profile(time.process_time)
        profiled = run_rate(settings, args.profile_rate, profile)
        unprofiled = next((r for r in results if r.target_rps == args.profile_rate), profiled)
        split = cpu_split(profile)
        print(f"CPU per call at {args.profile_rate:.0f}/s: {unprofiled.cpu_ms_per_call:.2f} ms in this process; "
              "split (from a cProfile run, own time per function):")
        for name, share in split.items():
            print(f"  {name:45s} {share:6.1%}  ~{share * unprofiled.cpu_ms_per_call:.3f} ms/call")
    if args.json:
        args.json.write_text(json.dumps({
            "rates": [{**asdict(r), "sustained": r.sustained} for r in results],
            "highest_sustained_rps": best, "cpu_split": split,
        }, indent=2) + "\n", encoding="utf-8")
    return 0 if best >= TARGET_RATE else 1


if __name__ == "__main__":
    sys.exit(main())
