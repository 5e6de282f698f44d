"""A whole traffic run against a fake gateway (httpx2 mock transport) with the real openai SDK.

The fake answers like Azure OpenAI behind APIM (api-key, deployments, SSE with a final usage
chunk) and misbehaves on demand per user id, so each failure reason, the retry on 429 with
Retry-After, pacing, determinism and the ground truth are checked without sockets. The clock is
injected: send times and retry waits are asserted exactly, never against wall-clock precision.
"""

from __future__ import annotations

import asyncio
import gzip
import heapq
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from azure.core.exceptions import HttpResponseError

from shared.config import TrafficSettings
from shared.errors import InputFileError, UploadError
from shared.traffic.pacing import dispatch
from shared.traffic.personas import Persona, PromptSize
from shared.traffic.plan import PlannedCall
from shared.traffic.results import CallOutcome
from shared.traffic.run import calls_deadline_seconds, run_traffic, send_window_seconds
from tests import ROOT

T0 = 1000.0
WALL0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_PATH = re.compile(r"^/inference/openai/deployments/([^/]+)/chat/completions$")


class FakeClock:
    """Virtual time, discrete-event style: when every task is waiting on a sleep, time jumps to
    the earliest wake-up. Exchanges with the mock transport take no virtual time."""

    _IDLE_YIELDS = 200  # loop turns without progress that count as "everyone is asleep"

    def __init__(self) -> None:
        self.t = T0
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._advancer: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return WALL0 + timedelta(seconds=self.t - T0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.t + max(0.0, seconds), len(self.sleeps), future))
        if self._advancer is None or self._advancer.done():
            self._advancer = asyncio.create_task(self._advance())
        await future

    async def _advance(self) -> None:
        while self._waiters:
            for _ in range(self._IDLE_YIELDS):
                await asyncio.sleep(0)
            wake, _, future = heapq.heappop(self._waiters)
            self.t = max(self.t, wake)
            future.set_result(None)


@dataclass
class Sent:
    at: float
    user: str
    deployment: str
    body: dict[str, Any]


@dataclass
class FakeGateway:
    clock: FakeClock
    keys: frozenset[str] = frozenset({"key-a", "key-b"})
    deployments: frozenset[str] = frozenset({"gpt-4o-mini", "gpt-4o"})
    # Per user id: behaviours for successive requests; the last one repeats.
    script: dict[str, list[str]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    usage_returned: list[dict[str, Any]] = field(default_factory=list)

    def _behaviour(self, user: str) -> str:
        queue = self.script.get(user, ["ok"])
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        user = request.headers.get("x-user-id", "")
        match = _PATH.match(request.url.path)
        assert match and request.url.params["api-version"] == "2024-10-21"
        self.sent.append(Sent(self.clock.now(), user, match.group(1), body))
        number = len(self.sent)
        headers = {"apim-request-id": f"req-{number}"}
        if request.headers.get("api-key") not in self.keys:
            return httpx2.Response(401, headers=headers, json={"statusCode": 401, "message": "Access denied"})
        if match.group(1) not in self.deployments:
            return httpx2.Response(404, headers=headers, json={"error": {"code": "DeploymentNotFound"}})
        behaviour = self._behaviour(user)
        if behaviour.startswith("429"):
            retry_after = behaviour.partition(":")[2] or "3"
            return httpx2.Response(
                429,
                headers={**headers, "Retry-After": retry_after},
                json={"error": {"code": "429", "message": "Rate limit"}},
            )
        if behaviour == "500":
            return httpx2.Response(500, headers=headers, json={"error": {"code": "InternalServerError"}})
        if behaviour == "timeout":
            raise httpx2.ReadTimeout("timed out", request=request)
        if behaviour == "connect":
            raise httpx2.ConnectError("refused", request=request)
        if behaviour == "garbage":
            return httpx2.Response(200, headers={**headers, "content-type": "application/json"}, content=b"{not json")
        words = sum(len(m["content"].split()) for m in body["messages"])
        prompt = words + 11
        assert "max_tokens" not in body  # reasoning models refuse it
        completion = min(body.get("max_completion_tokens") or 16, 3 + number % 5)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 1024 if prompt >= 1100 else 0},
        }
        if not body.get("stream"):
            self.usage_returned.append(usage)
            return httpx2.Response(200, headers=headers, json=_completion(number, completion, usage))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if include_usage and behaviour == "ok":
            self.usage_returned.append(usage)
        return httpx2.Response(
            200,
            headers={**headers, "content-type": "text/event-stream"},
            content=_sse(number, completion, usage if include_usage else None, behaviour),
        )


def _completion(number: int, completion: int, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "word " * completion},
            }
        ],
        "usage": usage,
    }


async def _sse(number: int, completion: int, usage: dict[str, Any] | None, behaviour: str) -> AsyncIterator[bytes]:
    def event(choices: list[Any], chunk_usage: Any = None) -> bytes:
        data = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": choices,
            "usage": chunk_usage,
        }
        return f"data: {json.dumps(data)}\n\n".encode()

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    for _ in range(completion):
        yield event([{"index": 0, "delta": {"content": "word "}, "finish_reason": None}])
        if behaviour == "broken":
            raise httpx2.RemoteProtocolError("peer closed connection without sending complete message body")
        if behaviour == "error_event":
            yield f"data: {json.dumps({'error': {'message': 'The response was filtered'}})}\n\n".encode()
    if behaviour == "no_finish":
        return  # a clean end of body, but no finish_reason, usage or [DONE]
    yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage is not None:
        yield event([], usage)
    yield b"data: [DONE]\n\n"


class FakeIngestion:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.endpoints: list[str] = []
        self.uploads: list[tuple[str, str, list[dict[str, Any]]]] = []

    def __call__(self, endpoint: str) -> FakeIngestion:
        self.endpoints.append(endpoint)
        return self

    def upload(self, rule_id: str, stream_name: str, logs: list[Any], **kwargs: Any) -> None:
        if self.fail:
            raise HttpResponseError("(Forbidden) caller lacks Monitoring Metrics Publisher")
        if hasattr(logs, "read"):  # a prepared body (shared/logs/upload.py): gzip'ed JSON array
            logs = json.loads(gzip.decompress(logs.read()))
        json.dumps(logs)  # what the SDK sends must be JSON
        self.uploads.append((rule_id, stream_name, logs))

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for _, _, logs in self.uploads for row in logs]


def _persona_json(name: str, **overrides: Any) -> dict[str, Any]:
    persona: dict[str, Any] = {
        "name": name,
        "subscription": "team-a",
        "subscription_key_setting": "KEY_A",
        "user_id": name,
        "deployment": "gpt-4o-mini",
        "prompt_tokens": {"min": 40, "max": 1500},
        "max_tokens": 20,
        "stream_share": 0.0,
        "weight": 1,
    }
    persona.update(overrides)
    return persona


def _settings(tmp_path: Path, personas: list[dict[str, Any]], **overrides: Any) -> TrafficSettings:
    path = tmp_path / "personas.json"
    path.write_text(json.dumps({"personas": personas}), encoding="utf-8")
    values: dict[str, Any] = dict(
        gateway_url="https://gateway.test",
        openai_api_version="2024-10-21",
        personas_file=path,
        seed=42,
        requests_per_run=20,
        concurrency=4,
        time_budget_seconds=120.0,
        request_timeout_seconds=10.0,
        max_retries=2,
        failure_warn_ratio=0.1,
        ingestion_endpoint="https://dce.test",
        ingestion_rule_id="dcr-1",
        ingestion_stream="Custom-SyntheticTraffic_CL",
        subscription_keys={"KEY_A": "key-a", "KEY_B": "key-b", "KEY_BAD": "wrong"},
    )
    values.update(overrides)
    return TrafficSettings(**values)


def _run(settings: TrafficSettings, gateway: FakeGateway, ingestion: FakeIngestion | None = None) -> Any:
    return run_traffic(
        settings, ingestion or FakeIngestion(), clock=gateway.clock, transport=httpx2.MockTransport(gateway)
    )


def test_ground_truth_is_what_the_responses_reported_per_persona_and_mode(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        [
            _persona_json("plain"),
            _persona_json(
                "streamer",
                subscription="team-b",
                subscription_key_setting="KEY_B",
                deployment="gpt-4o",
                stream_share=1.0,
                include_usage_share=0.5,
                prompt_tokens={"min": 1200, "max": 1400},
                prefix_share=0.9,
            ),
        ],
        requests_per_run=60,
    )
    gateway, ingestion = FakeGateway(FakeClock()), FakeIngestion()
    summary = _run(settings, gateway, ingestion)

    assert (summary.calls_ok, summary.calls_failed, summary.calls_not_sent) == (60, 0, 0)
    assert ingestion.endpoints == ["https://dce.test"]
    assert [(rule, stream) for rule, stream, _ in ingestion.uploads] == [("dcr-1", "Custom-SyntheticTraffic_CL")]
    rows = {(r["Persona"], r["Streamed"], r["IncludeUsage"]): r for r in ingestion.rows}
    assert set(rows) == {("plain", False, False), ("streamer", True, True), ("streamer", True, False)}
    schema = json.loads((ROOT / "shared" / "logs" / "schemas" / "log_tables.json").read_text(encoding="utf-8"))
    columns = [column["name"] for column in schema["custom"]["SyntheticTraffic_CL"]["columns"]]
    assert all(list(row) == columns for row in ingestion.rows)  # the table's declared columns, in order
    returned = gateway.usage_returned
    for column, key in (
        ("PromptTokens", "prompt_tokens"),
        ("CompletionTokens", "completion_tokens"),
        ("TotalTokens", "total_tokens"),
    ):
        assert sum(r[column] for r in ingestion.rows) == sum(u[key] for u in returned)
    assert (
        sum(r["CachedTokens"] for r in ingestion.rows)
        == sum(u["prompt_tokens_details"]["cached_tokens"] for u in returned)
        > 0
    )
    assert summary.total_tokens == sum(u["total_tokens"] for u in returned)

    unseen = rows[("streamer", True, False)]
    assert unseen["CallsUsageUnseen"] == unseen["CallsOk"] > 0
    assert unseen["PromptTokens"] == unseen["TotalTokens"] == 0  # never guessed
    assert summary.calls_usage_unseen == unseen["CallsOk"]
    streamed = rows[("streamer", True, True)]
    assert (streamed["Subscription"], streamed["UserId"], streamed["Deployment"]) == (
        "team-b",
        "streamer",
        "gpt-4o",
    )
    assert streamed["TtftP50Ms"] is not None and rows[("plain", False, False)]["TtftP50Ms"] is None
    assert sum(r["CallsPlanned"] for r in ingestion.rows) == 60
    assert all(r["RunId"] == summary.run_id and r["Seed"] == "42" for r in ingestion.rows)
    assert all(r["TimeGenerated"] == WALL0.isoformat() and r["FailureReasons"] == {} for r in ingestion.rows)

    # Prompts are the planned sizes: the fake counts words + framing, as the tokenizer would.
    assert all(r["PromptTokens"] >= 40 * (r["CallsOk"] - r["CallsUsageUnseen"]) for r in ingestion.rows)


def test_calls_are_spread_over_the_send_window_not_sent_in_a_burst(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        [_persona_json("plain")],
        requests_per_run=50,
        time_budget_seconds=100.0,
        request_timeout_seconds=20.0,
    )
    gateway = FakeGateway(FakeClock())
    summary = _run(settings, gateway)
    # budget 100 s - upload reserve 10 s - one request timeout 20 s = 70 s window, 1.4 s apart.
    assert send_window_seconds(settings) == 70.0
    sent_offsets = [s.at - T0 for s in gateway.sent]
    assert sent_offsets == pytest.approx([i * 1.4 for i in range(50)])
    assert summary.lateness_max_ms == pytest.approx(0.0)
    assert summary.calls_ok == 50


def test_a_persona_s_reasoning_effort_is_sent_and_max_tokens_never(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, [_persona_json("thinker", reasoning_effort="minimal"), _persona_json("default", weight=1)],
        requests_per_run=20,
    )  # fmt: skip
    gateway = FakeGateway(FakeClock())
    _run(settings, gateway)
    efforts = {(s.user, s.body.get("reasoning_effort")) for s in gateway.sent}
    assert efforts == {("thinker", "minimal"), ("default", None)}
    assert all(s.body["max_completion_tokens"] == 20 and "max_tokens" not in s.body for s in gateway.sent)


def test_429_is_retried_after_the_retry_after_the_gateway_sent(tmp_path: Path) -> None:
    settings = _settings(tmp_path, [_persona_json("plain")], requests_per_run=1)
    gateway = FakeGateway(FakeClock(), script={"plain": ["429:3", "429:5", "ok"]})
    ingestion = FakeIngestion()
    summary = _run(settings, gateway, ingestion)
    assert summary.calls_ok == 1 and summary.retries == 2
    assert gateway.clock.sleeps[-2:] == [3.0, 5.0]
    assert [s.at - T0 for s in gateway.sent] == pytest.approx([0.0, 3.0, 8.0])
    (row,) = ingestion.rows
    assert (row["Retries"], row["CallsOk"], row["TotalTokens"]) == (
        2,
        1,
        gateway.usage_returned[0]["total_tokens"],
    )


def test_429_storm_gives_up_after_max_retries_and_is_counted_as_throttled(tmp_path: Path) -> None:
    settings = _settings(tmp_path, [_persona_json("plain")], requests_per_run=1, max_retries=2)
    gateway = FakeGateway(FakeClock(), script={"plain": ["429:2"]})
    ingestion = FakeIngestion()
    summary = _run(settings, gateway, ingestion)
    assert summary.failures == {"throttled": 1} and len(gateway.sent) == 3
    assert ingestion.rows[0]["FailedRequestIds"] == ["req-3"]


def test_retry_after_beyond_the_deadline_is_not_waited_for(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, [_persona_json("plain")], requests_per_run=1, max_retries=5, time_budget_seconds=60.0
    )
    gateway = FakeGateway(FakeClock(), script={"plain": ["429:600"]})
    summary = _run(settings, gateway)
    assert summary.failures == {"throttled": 1} and len(gateway.sent) == 1
    assert summary.duration_seconds < 60.0


def test_each_failure_reason_is_counted_and_the_run_continues(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    personas = [
        _persona_json("bad-key", subscription_key_setting="KEY_BAD"),
        _persona_json("no-such-model", deployment="gpt-9"),
        _persona_json("server-error"),
        _persona_json("slow"),
        _persona_json("unreachable"),
        _persona_json("broken", stream_share=1.0, include_usage_share=1.0),
        _persona_json("no-finish", stream_share=1.0, include_usage_share=0.0),
        _persona_json("error-event", stream_share=1.0, include_usage_share=1.0),
        _persona_json("garbage"),
        _persona_json("fine"),
    ]
    settings = _settings(tmp_path, personas, requests_per_run=100, max_retries=1)
    script = {
        "server-error": ["500"],
        "slow": ["timeout"],
        "unreachable": ["connect"],
        "broken": ["broken"],
        "no-finish": ["no_finish"],
        "error-event": ["error_event"],
        "garbage": ["garbage"],
    }
    gateway, ingestion = FakeGateway(FakeClock(), script=script), FakeIngestion()
    with caplog.at_level(logging.INFO, logger="shared.traffic.run"):
        summary = _run(settings, gateway, ingestion)

    by_persona: dict[str, dict[str, int]] = {}
    for row in ingestion.rows:
        for reason, count in row["FailureReasons"].items():
            by_persona.setdefault(row["Persona"], {})[reason] = count
    assert {persona: set(reasons) for persona, reasons in by_persona.items()} == {
        "bad-key": {"auth"},
        "no-such-model": {"not_found"},
        "server-error": {"server_error"},
        "slow": {"timeout"},
        "unreachable": {"connection"},
        "broken": {"broken_stream"},
        "no-finish": {"broken_stream"},
        "error-event": {"broken_stream"},
        "garbage": {"bad_response"},
    }
    assert all(count > 0 for reasons in by_persona.values() for count in reasons.values())
    fine = next(row for row in ingestion.rows if row["Persona"] == "fine")
    assert fine["CallsFailed"] == 0 and fine["CallsOk"] == fine["CallsPlanned"] > 0
    assert summary.calls_ok + summary.calls_failed == 100
    # 401/404 and broken streams are not retried; 5xx, timeouts and connection errors are, once.
    retried = {row["Persona"]: row["Retries"] for row in ingestion.rows}
    assert retried["bad-key"] == retried["no-such-model"] == retried["broken"] == 0
    assert retried["server-error"] == by_persona["server-error"]["server_error"]
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("traffic run ") and "auth=" in m and "broken_stream=" in m for m in messages)
    assert any("above the warning threshold of 10.0%" in m for m in messages)


def test_no_warning_when_failures_stay_under_the_threshold(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(tmp_path, [_persona_json("plain")], requests_per_run=10)
    with caplog.at_level(logging.INFO, logger="shared.traffic.run"):
        _run(settings, FakeGateway(FakeClock()))
    assert [r.levelname for r in caplog.records] == ["INFO"]


def test_failed_upload_fails_the_run_loudly_after_logging_the_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, [_persona_json("plain")], requests_per_run=3)
    with (
        caplog.at_level(logging.INFO, logger="shared.traffic.run"),
        pytest.raises(
            UploadError,
            match=r"stream Custom-SyntheticTraffic_CL of data collection rule dcr-1 failed.*Forbidden",
        ),
    ):
        _run(settings, FakeGateway(FakeClock()), FakeIngestion(fail=True))
    assert any("3 ok, 0 failed" in record.getMessage() for record in caplog.records)


def test_same_seed_same_traffic_other_seed_other_traffic(tmp_path: Path) -> None:
    personas = [
        _persona_json("a", stream_share=0.5, include_usage_share=0.5, prefix_share=0.5),
        _persona_json("b", deployment="gpt-4o", weight=2),
    ]

    def traffic(seed: int | None) -> list[tuple[float, str, str, str]]:
        gateway = FakeGateway(FakeClock())
        _run(_settings(tmp_path, personas, seed=seed), gateway)
        return [(s.at, s.user, s.deployment, json.dumps(s.body, sort_keys=True)) for s in gateway.sent]

    assert traffic(5) == traffic(5)
    assert traffic(5) != traffic(6)
    assert traffic(None) != traffic(None)  # no seed: a fresh one per run


def test_what_does_not_fit_the_budget_is_reported_as_not_sent(tmp_path: Path) -> None:
    # Real clock, but the assertions only depend on order of magnitude: with one slot and calls
    # that take 0.4 s, at most a handful of 20 calls can start before the 1 s calls deadline.
    settings = _settings(
        tmp_path,
        [_persona_json("plain")],
        requests_per_run=20,
        concurrency=1,
        time_budget_seconds=3.0,
        request_timeout_seconds=0.5,
    )
    assert calls_deadline_seconds(settings) == 1.0

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(0.4)
        return httpx2.Response(
            200, json=_completion(1, 1, {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21})
        )

    ingestion = FakeIngestion()
    summary = run_traffic(settings, ingestion, transport=httpx2.MockTransport(slow))
    assert summary.calls_not_sent >= 15
    assert summary.calls_ok + summary.calls_failed + summary.calls_not_sent == 20
    assert ingestion.rows[0]["CallsNotSent"] == summary.calls_not_sent
    assert summary.duration_seconds < 3.0


def test_bad_persona_file_fails_before_any_call(tmp_path: Path) -> None:
    settings = _settings(tmp_path, [_persona_json("plain", subscription_key_setting="KEY_MISSING")])
    gateway, ingestion = FakeGateway(FakeClock()), FakeIngestion()
    with pytest.raises(InputFileError, match="app setting KEY_MISSING is not set"):
        _run(settings, gateway, ingestion)
    assert gateway.sent == [] and ingestion.uploads == []


# --- the dispatcher on its own: concurrency limit, lateness, deadline -----------------------------


def _calls(count: int, interval: float) -> list[PlannedCall]:
    persona = Persona(
        name="p",
        subscription="s",
        subscription_key_setting="K",
        user_id="u",
        deployment="d",
        prompt_tokens=PromptSize(20, 20),
        max_tokens=1,
        stream_share=0,
        include_usage_share=0,
        prefix_share=0,
        weight=1,
    )
    return [
        PlannedCall(
            index=i,
            persona=persona,
            send_offset_seconds=i * interval,
            stream=False,
            include_usage=False,
            prompt_tokens=20,
            call_seed=i,
        )
        for i in range(count)
    ]


async def test_dispatch_waits_for_a_free_slot_and_records_lateness() -> None:
    clock = FakeClock()
    started: dict[int, float] = {}
    release: dict[int, asyncio.Event] = {i: asyncio.Event() for i in range(5)}

    async def send(call: PlannedCall, due: float, deadline: float) -> CallOutcome:
        started[call.index] = clock.now()
        await release[call.index].wait()
        return CallOutcome(
            call=call, status="ok", started_at=clock.wall(), attempts=1, lateness_seconds=clock.now() - due
        )

    async def driver() -> None:
        while len(started) < 2:
            await asyncio.sleep(0)
        clock.t = T0 + 3.5  # calls 0 and 1 hold both slots past call 2's and 3's send times
        release[0].set()
        while len(started) < 3:
            await asyncio.sleep(0)
        release[1].set()
        for i in (2, 3, 4):
            release[i].set()

    result, _ = await asyncio.gather(
        dispatch(_calls(5, 1.0), send, clock=clock, start=T0, deadline=T0 + 60, concurrency=2), driver()
    )
    assert result.not_sent == ()
    assert [started[i] - T0 for i in range(5)] == [0.0, 1.0, 3.5, 3.5, 4.0]


async def test_dispatch_reports_calls_that_could_not_start_before_the_deadline() -> None:
    clock = FakeClock()
    hold = asyncio.Event()

    async def send(call: PlannedCall, due: float, deadline: float) -> CallOutcome:
        if call.index == 0:
            await hold.wait()
            clock.t = deadline + 1  # the only slot frees after the deadline
        return CallOutcome(call=call, status="ok", started_at=clock.wall(), attempts=1, lateness_seconds=0)

    async def driver() -> None:
        await asyncio.sleep(0)
        hold.set()

    result, _ = await asyncio.gather(
        dispatch(_calls(4, 1.0), send, clock=clock, start=T0, deadline=T0 + 10, concurrency=1), driver()
    )
    assert [o.call.index for o in result.outcomes] == [0]
    assert [c.index for c in result.not_sent] == [1, 2, 3]
