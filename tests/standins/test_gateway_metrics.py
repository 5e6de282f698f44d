"""Token metrics the gateway stand-in emits: values, dimensions, per-minute pre-aggregation, export."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openai import AsyncAzureOpenAI, PermissionDeniedError
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionMessageParam

from standins._server import RunningServer, start_app
from standins.gateway import (
    AggregatedMetric,
    AppInsightsTrackSink,
    InMemorySink,
    MetricAggregator,
    MetricsExporter,
)
from standins.gateway.pair import STACK_CONFIG, GatewayPair, start_gateway_pair
from standins.monitor import start_monitor
from standins.simulator import load_simulator_config, start_simulator
from standins.tls import server_ssl_context
from standins.tokenizer import count_chat_prompt_tokens, count_text_tokens, encoding_name_for_model
from tests import ROOT
from tests.support.monitor import fresh_monitor_config

FAST_SIMULATOR = {"latency_ms": 0.0, "time_to_first_token_ms": 0.0, "tokens_per_second": 50_000.0}
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Count the tokens of this prompt, please."},
]
TOKEN_METRICS = ("Prompt Tokens", "Completion Tokens", "Total Tokens")
T0 = datetime(2025, 3, 1, 12, 0, 10, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    pair: GatewayPair
    sink: InMemorySink
    clock: FakeClock

    def client(self, subscription: str = "team-research") -> AsyncAzureOpenAI:
        return AsyncAzureOpenAI(
            azure_endpoint=self.pair.inference_url,
            api_key=self.pair.keys[subscription],
            api_version=self.pair.config.api_version,
            max_retries=0,
        )

    async def rows(self) -> list[AggregatedMetric]:
        await self.pair.exporter.flush_all()
        return list(self.sink.rows)


def _by_name(rows: list[AggregatedMetric]) -> dict[str, list[AggregatedMetric]]:
    grouped: dict[str, list[AggregatedMetric]] = {}
    for row in rows:
        grouped.setdefault(row.name, []).append(row)
    return grouped


@asynccontextmanager
async def running_harness(
    simulator_settings: dict[str, Any], gateway_settings: dict[str, Any] | None = None
) -> AsyncIterator[Harness]:
    sink, clock = InMemorySink(), FakeClock()
    pair = await start_gateway_pair(
        sink=sink, simulator_settings=simulator_settings, gateway_settings=gateway_settings, clock=clock
    )
    try:
        yield Harness(pair, sink, clock)
    finally:
        await pair.stop()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with running_harness(FAST_SIMULATOR) as running:
        yield running


# --- Aggregation, on its own ---


def test_aggregator_keeps_sum_count_min_max_per_minute_metric_and_dimension_set() -> None:
    clock = FakeClock()
    aggregator = MetricAggregator(clock)
    for seconds, value in ((0, 5.0), (20, 1.0), (49, 9.0)):
        clock.now = T0 + timedelta(seconds=seconds)  # 12:00:10 .. 12:00:59, one minute
        aggregator.record("ns", "Total Tokens", value, {"User ID": "a"})
    aggregator.record("ns", "Total Tokens", 100.0, {"User ID": "b"})
    clock.now = T0 + timedelta(seconds=50)  # 12:01:00, the next minute
    aggregator.record("ns", "Total Tokens", 7.0, {"User ID": "a"})

    closed = aggregator.drain(include_open_minute=False)
    assert [(r.minute.minute, r.properties, r.total, r.count, r.minimum, r.maximum) for r in closed] == [
        (0, {"User ID": "a"}, 15.0, 3, 1.0, 9.0),
        (0, {"User ID": "b"}, 100.0, 1, 100.0, 100.0),
    ]
    assert all(row.minute == datetime(2025, 3, 1, 12, 0, tzinfo=UTC) for row in closed)
    [open_row] = aggregator.drain(include_open_minute=True)
    assert (open_row.minute.minute, open_row.total, open_row.count) == (1, 7.0, 1)
    assert aggregator.drain(include_open_minute=True) == []


# --- Through the gateway, with the real simulator and the openai SDK ---


async def test_calls_in_one_minute_aggregate_into_one_row_per_metric(harness: Harness) -> None:
    seen: list[CompletionUsage] = []
    async with harness.client() as client:
        for tokens in (3, 11, 6):
            completion = await client.chat.completions.create(
                model="gpt-5.6-luna",
                messages=MESSAGES,
                extra_headers={"x-user-id": "alice", "x-sim-completion-tokens": str(tokens)},
            )
            assert completion.usage is not None
            seen.append(completion.usage)
            harness.clock.now += timedelta(seconds=15)
    grouped = _by_name(await harness.rows())
    for name, field_name in zip(
        TOKEN_METRICS, ("prompt_tokens", "completion_tokens", "total_tokens"), strict=True
    ):
        [row] = grouped[name]
        values = [getattr(usage, field_name) for usage in seen]
        assert (row.total, row.count, row.minimum, row.maximum) == (sum(values), 3, min(values), max(values))
        assert row.minute == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
        assert row.namespace == "AzureOpenAI"
    # azure-openai-emit-token-metric documents these three only: no cached-token metric.
    assert set(grouped) == set(TOKEN_METRICS)


def _llm_policy(tmp_path: Path) -> dict[str, Any]:
    """The repository policy with llm-emit-token-metric in place of azure-openai-emit-token-metric."""
    text = (ROOT / "policy.xml").read_text(encoding="utf-8")
    swapped = text.replace("<azure-openai-emit-token-metric ", "<llm-emit-token-metric ").replace(
        "</azure-openai-emit-token-metric>", "</llm-emit-token-metric>"
    )
    assert swapped.count("llm-emit-token-metric") == 2  # the opening and the closing tag
    policy = tmp_path / "policy-llm.xml"
    policy.write_text(swapped, encoding="utf-8")
    return {"policy_file": policy}


async def test_llm_emit_token_metric_adds_cached_tokens_of_exact_calls_only(tmp_path: Path) -> None:
    # A prompt over 1,024 tokens, sent twice: the second call hits the simulator's prompt cache.
    long_messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Cache me. " * 400},
        {"role": "user", "content": "And answer."},
    ]
    async with running_harness(FAST_SIMULATOR, _llm_policy(tmp_path)) as harness, harness.client() as client:
        seen = []
        for _ in range(2):
            completion = await client.chat.completions.create(model="gpt-5.6-sol", messages=long_messages)
            assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
            seen.append(completion.usage.prompt_tokens_details.cached_tokens or 0)
        stream = await client.chat.completions.create(
            model="gpt-5.6-sol", messages=long_messages, stream=True, stream_options={"include_usage": True}
        )
        streamed_usage = [chunk.usage async for chunk in stream if chunk.usage is not None]
        rows = await harness.rows()
    assert seen[1] > 0 and streamed_usage[0].prompt_tokens_details.cached_tokens > 0  # type: ignore[union-attr]
    by_streamed = {flag: _by_name([r for r in rows if r.properties["Streamed"] == flag]) for flag in ("True", "False")}
    [cached] = by_streamed["False"]["Prompt Cached Tokens"]
    assert (cached.total, cached.count) == (sum(seen), 2)
    # A streamed call is estimated: an estimate knows nothing of the cache, so no cached metric.
    assert set(by_streamed["True"]) == set(TOKEN_METRICS)


async def test_a_policy_that_forwards_the_subscription_key_fails_at_the_backend(tmp_path: Path) -> None:
    # APIM forwards the key unless the policy deletes it; the model account (local auth disabled)
    # then refuses the call. Without policy.xml's delete lines this is every call.
    text = (ROOT / "policy.xml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if "<set-header" not in line or 'exists-action="delete"' not in line]
    assert len(lines) == len(text.splitlines()) - 2
    policy = tmp_path / "policy-forwards-key.xml"
    policy.write_text("\n".join(lines), encoding="utf-8")
    async with running_harness(FAST_SIMULATOR, {"policy_file": policy}) as harness, harness.client() as client:
        with pytest.raises(PermissionDeniedError, match="Key based authentication is disabled"):
            await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)
        assert await harness.rows() == []
    async with running_harness(FAST_SIMULATOR) as harness, harness.client() as client:
        await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)


async def test_every_policy_dimension_is_filled(harness: Harness) -> None:
    async with harness.client("team-support") as client:
        await client.chat.completions.create(
            model="gpt-5.6-terra", messages=MESSAGES, extra_headers={"x-user-id": "carol"}
        )
    rows = await harness.rows()
    assert {row.name for row in rows} == set(TOKEN_METRICS)
    for row in rows:
        # Exactly the policy's dimensions: APIM adds no property of its own.
        assert row.properties == {
            "Subscription ID": "team-support",
            "User ID": "carol",
            "API ID": "inference-api",
            "Streamed": "False",
            "Deployment": "gpt-5.6-terra",
        }


async def test_calls_across_a_minute_boundary_make_two_rows(harness: Harness) -> None:
    async with harness.client() as client:
        for _ in range(2):
            await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)
            harness.clock.now += timedelta(seconds=55)  # 12:00:10 → 12:01:05
    total_rows = _by_name(await harness.rows())["Total Tokens"]
    assert [(row.minute.minute, row.count) for row in total_rows] == [(0, 1), (1, 1)]


async def test_periodic_flush_sends_closed_minutes_only(harness: Harness) -> None:
    async with harness.client() as client:
        await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)
        assert await harness.pair.exporter.flush_closed() == 0  # the minute is still open
        harness.clock.now += timedelta(minutes=1)
        await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)
    assert await harness.pair.exporter.flush_closed() >= 3
    assert {row.minute.minute for row in harness.sink.rows} == {0}


async def test_a_stream_is_estimated_even_when_it_carries_usage(harness: Harness) -> None:
    # The docs: with stream: true "token metrics are estimated"; include_usage is not mentioned, so
    # the usage chunk is not read. An estimate counts the streamed text, so a reasoning model's
    # hidden reasoning tokens, billed in completion_tokens, are missing from it.
    async with harness.client() as client:
        stream = await client.chat.completions.create(
            model="gpt-5.6-sol",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-sim-completion-tokens": "40"},
        )
        chunks = [chunk async for chunk in stream]
    [usage] = [chunk.usage for chunk in chunks if chunk.usage is not None]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    grouped = _by_name(await harness.rows())
    encoding = encoding_name_for_model("gpt-5.6-sol")
    assert grouped["Prompt Tokens"][0].total == count_chat_prompt_tokens(MESSAGES, encoding)
    assert grouped["Completion Tokens"][0].total == count_text_tokens(text, encoding) == 40
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens
    assert usage.completion_tokens == 40 + usage.completion_tokens_details.reasoning_tokens
    assert all(row.properties["Streamed"] == "True" and row.count == 1 for row in harness.sink.rows)


async def test_stream_without_usage_is_estimated_and_marked(harness: Harness) -> None:
    async with harness.client() as client:
        truth = await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)
        stream = await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES, stream=True)
        streamed_text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert truth.usage is not None and streamed_text
    rows = await harness.rows()
    estimated = _by_name([row for row in rows if row.properties["Streamed"] == "True"])
    prompt = count_chat_prompt_tokens(MESSAGES, encoding_name_for_model("gpt-5.6-sol"))
    assert estimated["Prompt Tokens"][0].total == prompt == truth.usage.prompt_tokens
    # The simulator answers the same prompt with the same text, so the counted completion matches
    # the visible part of the billed one; the hidden reasoning is what the estimate misses.
    assert truth.usage.completion_tokens_details is not None
    visible = truth.usage.completion_tokens - (truth.usage.completion_tokens_details.reasoning_tokens or 0)
    assert estimated["Completion Tokens"][0].total == pytest.approx(visible, rel=0.05)
    assert estimated["Total Tokens"][0].total == prompt + estimated["Completion Tokens"][0].total
    assert "Prompt Cached Tokens" not in estimated


async def test_a_stream_cut_by_the_backend_still_emits_an_estimate() -> None:
    # Slow enough that the 100 tokens come in several chunks, so the cut falls between them.
    async with (
        running_harness({**FAST_SIMULATOR, "tokens_per_second": 2000.0}) as harness,
        harness.client() as client,
    ):
        full = await client.chat.completions.create(
            model="gpt-5.6-sol", messages=MESSAGES, extra_headers={"x-sim-completion-tokens": "100"}
        )
        stream = await client.chat.completions.create(
            model="gpt-5.6-sol",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-sim-fault": "truncate", "x-sim-completion-tokens": "100"},
        )
        with pytest.raises(Exception):  # noqa: B017 - the SDK's error type for a cut stream varies
            async for _chunk in stream:
                pass
        assert full.usage is not None
        rows = await harness.rows()
    grouped = _by_name([r for r in rows if r.properties["Streamed"] == "True"])
    completion = grouped["Completion Tokens"][0].total
    assert 0 < completion < full.usage.completion_tokens  # the simulator cuts halfway


async def test_client_gone_mid_stream_emits_what_passed() -> None:
    slow = {"latency_ms": 0.0, "time_to_first_token_ms": 0.0, "tokens_per_second": 200.0}
    async with running_harness(slow) as harness:
        url = f"{harness.pair.inference_url}/openai/deployments/gpt-5.6-sol/chat/completions"
        headers = {"api-key": harness.pair.keys["team-batch"], "x-sim-completion-tokens": "400"}
        body = {"messages": MESSAGES, "stream": True, "max_completion_tokens": 400}
        async with aiohttp.ClientSession() as http:
            response = await http.post(url, params={"api-version": "2024-10-21"}, headers=headers, json=body)
            assert response.status == 200
            received = b""
            while received.count(b"data:") < 4:
                received += await response.content.readany()
            response.close()  # hang up after a few chunks, long before the ~2 s stream ends
        rows: list[AggregatedMetric] = []
        for _ in range(100):  # the gateway notices at its next write (one chunk interval)
            rows = await harness.rows()
            if rows:
                break
            await asyncio.sleep(0.05)
    grouped = _by_name(rows)
    assert grouped["Completion Tokens"][0].properties["Streamed"] == "True"
    assert 0 < grouped["Completion Tokens"][0].total < 200


async def test_failed_calls_emit_nothing(harness: Harness) -> None:
    url = f"{harness.pair.inference_url}/openai/deployments/gpt-5.6-sol/chat/completions?api-version=2024-10-21"
    async with aiohttp.ClientSession() as http:
        for fault in ("429", "500"):
            headers = {"api-key": harness.pair.keys["team-research"], "x-sim-fault": fault}
            async with http.post(url, headers=headers, json={"messages": MESSAGES}) as response:
                assert response.status == int(fault)
    assert await harness.rows() == []


async def test_admin_endpoint_flushes_the_open_minute(harness: Harness) -> None:
    async with harness.client() as client:
        await client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)
    assert harness.sink.rows == []
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{harness.pair.gateway.url}/_standin/metrics/flush") as response,
    ):
        assert response.status == 200
        answer = await response.json()
    assert answer["exported"] == len(harness.sink.rows) >= 3
    assert answer["pending"] == 0


# --- The Application Insights exporter, against a recording track endpoint over TLS ---


@dataclass
class TrackServer:
    server: RunningServer
    ca_cert: Path
    # Status codes to answer, in order; 200 once exhausted.
    script: list[int] = field(default_factory=list)
    bodies: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        return [envelope for body in self.bodies for envelope in body]


@pytest.fixture
async def track(tmp_path: Path) -> AsyncIterator[TrackServer]:
    files, ssl_context = server_ssl_context(tmp_path / "tls")
    app = web.Application()
    recorder: list[TrackServer] = []

    async def post_track(request: web.Request) -> web.Response:
        state = recorder[0]
        body = json.loads(await request.read())
        status = state.script.pop(0) if state.script else 200
        if status == 206:  # reject the first item as throttled, accept the rest
            state.bodies.append(body[1:])
            errors = [{"index": 0, "statusCode": 429, "message": "throttled"}]
            return web.json_response(
                {"itemsReceived": len(body), "itemsAccepted": len(body) - 1, "errors": errors}, status=206
            )
        if status != 200:
            return web.json_response({"error": "down"}, status=status)
        state.bodies.append(body)
        return web.json_response({"itemsReceived": len(body), "itemsAccepted": len(body), "errors": []})

    app.router.add_post("/v2.1/track", post_track)
    server = await start_app(app, ssl_context=ssl_context)
    recorder.append(TrackServer(server, Path(files.ca_cert)))
    yield recorder[0]
    await server.stop()


def _row(name: str, value: float, user: str = "a") -> AggregatedMetric:
    minute = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    return AggregatedMetric(minute, "AzureOpenAI", name, {"User ID": user}, value, 2, 1.0, value - 1)


def _sink(track: TrackServer, ikey: str = "0b6e1e4c-1a2b-4c3d-9e8f-001122334455") -> AppInsightsTrackSink:
    return AppInsightsTrackSink(f"{track.server.url}/", ikey, ca_cert=track.ca_cert, role="managed")


async def test_track_envelopes_have_the_application_insights_shape(track: TrackServer) -> None:
    exporter = MetricsExporter(_sink(track), flush_seconds=60)
    exporter.aggregator.record("AzureOpenAI", "Total Tokens", 40, {"User ID": "a"})
    exporter.aggregator.record("AzureOpenAI", "Total Tokens", 2, {"User ID": "a"})
    assert await exporter.flush_all() == 1
    await exporter.stop()
    [envelope] = track.envelopes
    assert envelope["name"] == "Microsoft.ApplicationInsights.0b6e1e4c1a2b4c3d9e8f001122334455.Metric"
    assert envelope["iKey"] == "0b6e1e4c-1a2b-4c3d-9e8f-001122334455"
    assert envelope["time"].endswith(":00.000000Z")
    assert envelope["tags"]["ai.cloud.role"] == "managed"
    assert envelope["tags"]["ai.internal.sdkVersion"].startswith("apim:")
    assert envelope["data"] == {
        "baseType": "MetricData",
        "baseData": {
            "ver": 2,
            "metrics": [
                {
                    "name": "Total Tokens",
                    "ns": "AzureOpenAI",
                    "value": 42,
                    "count": 2,
                    "min": 2,
                    "max": 40,
                    "stdDev": 0,
                }
            ],
            "properties": {"User ID": "a"},
        },
    }


async def test_failed_posts_keep_rows_for_the_next_flush(track: TrackServer) -> None:
    track.script = [503, 206]
    exporter = MetricsExporter(_sink(track), flush_seconds=60)
    batch = [_row("Prompt Tokens", 10, "a"), _row("Prompt Tokens", 20, "b")]
    exporter._pending = list(batch)  # rows already drained, as after an earlier failure

    assert await exporter.flush_all() == 0  # 503: nothing delivered, everything kept
    assert list(exporter.pending) == batch
    assert await exporter.flush_all() == 1  # 206: the throttled first row stays
    assert list(exporter.pending) == batch[:1]
    assert await exporter.flush_all() == 1
    assert exporter.pending == ()
    delivered = sorted(env["data"]["baseData"]["properties"]["User ID"] for env in track.envelopes)
    assert delivered == ["a", "b"]
    await exporter.stop()


async def test_unreachable_endpoint_keeps_rows(track: TrackServer) -> None:
    sink = AppInsightsTrackSink("https://127.0.0.1:1/", "ikey", ca_cert=track.ca_cert)
    exporter = MetricsExporter(sink, flush_seconds=60)
    exporter.aggregator.record("ns", "Total Tokens", 1, {})
    assert await exporter.flush_all() == 0
    assert len(exporter.pending) == 1
    await exporter.stop()


# --- The CLI: READY line, the configured logger, and a flush on SIGTERM ---


@pytest.fixture
def subscriptions_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "subscriptions.json"
    path.write_text(
        json.dumps([{"name": "team-research", "product": "ai-premium", "user": "u", "key": "cli-key"}])
    )
    yield path


async def test_cli_serves_and_flushes_metrics_on_sigterm(
    track: TrackServer, subscriptions_file: Path
) -> None:
    simulator = await start_simulator(load_simulator_config(STACK_CONFIG))
    argv = [
        sys.executable, "-m", "standins.gateway", "--config", str(STACK_CONFIG), "--port", "0",
        "--subscriptions", str(subscriptions_file), "--backend", f"foundry-backend={simulator.url}",
        "--appinsights-connection-string", f"InstrumentationKey=ik-1;IngestionEndpoint={track.server.url}/",
        "--ca-cert", str(track.ca_cert),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        while not line.startswith("READY "):
            assert line, "the gateway exited before READY"
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        gateway_url = line.split()[1]
        client = AsyncAzureOpenAI(
            azure_endpoint=f"{gateway_url}/inference",
            api_key="cli-key",
            api_version="2024-10-21",
            max_retries=0,
        )
        async with client:
            completion = await client.chat.completions.create(model="gpt-5.6-luna", messages=MESSAGES)
        assert completion.usage is not None
        assert track.envelopes == []  # the minute is open and 60 s have not passed
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await simulator.stop()
    totals = [
        env for env in track.envelopes if env["data"]["baseData"]["metrics"][0]["name"] == "Total Tokens"
    ]
    assert [env["data"]["baseData"]["metrics"][0]["value"] for env in totals] == [
        completion.usage.total_tokens
    ]
    assert totals[0]["iKey"] == "ik-1"


def test_cli_refuses_a_bad_policy_before_ready(tmp_path: Path, subscriptions_file: Path) -> None:
    policy = tmp_path / "policy.xml"
    policy.write_text(
        "<policies>\n<inbound>\n<rate-limit calls='1' renewal-period='1' />\n</inbound>\n</policies>\n"
    )
    config = json.loads(STACK_CONFIG.read_text())
    config["gateway"]["policy_file"] = str(policy)
    config_path = tmp_path / "stack.config.json"
    config_path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "standins.gateway", "--config", str(config_path),
         "--subscriptions", str(subscriptions_file), "--backend", "foundry-backend=http://127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "READY" not in result.stdout
    assert f"{policy}:3: <rate-limit>" in result.stderr


# --- With the real Azure Monitor stand-in: the envelopes become AppMetrics rows ---


async def test_metrics_land_in_the_monitor_stand_in_as_app_metrics(tmp_path: Path) -> None:
    config = fresh_monitor_config(tmp_path, "local-identity-secret-for-tests")
    monitor = await start_monitor(config)
    try:
        sink = AppInsightsTrackSink(f"{monitor.url}/", config.instrumentation_key, ca_cert=monitor.ca_path)
        pair = await start_gateway_pair(sink=sink, simulator_settings=FAST_SIMULATOR)
        try:
            client = AsyncAzureOpenAI(
                azure_endpoint=pair.inference_url,
                api_key=pair.keys["team-research"],
                api_version=pair.config.api_version,
                max_retries=0,
            )
            async with client:
                completion = await client.chat.completions.create(
                    model="gpt-5.6-sol", messages=MESSAGES, extra_headers={"x-user-id": "dana"}
                )
            assert await pair.exporter.flush_all() >= 3
        finally:
            await pair.stop()
        result = monitor.store.query(
            "AppMetrics | where Name == 'Total Tokens' | project Sum, ItemCount, Properties",
            now=datetime.now(UTC),
        )
    finally:
        await monitor.stop()
    assert completion.usage is not None
    [(total, count, properties)] = result.rows
    assert (total, count) == (completion.usage.total_tokens, 1)
    dimensions = json.loads(properties) if isinstance(properties, str) else properties
    assert dimensions["User ID"] == "dana" and dimensions["Deployment"] == "gpt-5.6-sol"
