"""What each call came back with, and the run's totals: the ground-truth rows and the summary.

Token counts are exactly what the responses reported. A streamed call sent without
`stream_options.include_usage` gets no usage from the service; it is counted in
CallsUsageUnseen and adds nothing to the token totals, because guessing would make the
reconciliation with the gateway's metrics compare an estimate with an estimate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.traffic.plan import PlannedCall

OK = "ok"
# Failure reasons a call can end with (the keys of FailureReasons and of the summary).
REASONS = (
    "auth",  # 401/403: the subscription key was refused
    "not_found",  # 404: unknown deployment or path
    "bad_request",  # 400 and other 4xx the service will refuse again
    "throttled",  # 429 still, after the retries the budget allowed
    "server_error",  # 5xx still, after retries
    "timeout",  # no (complete) answer within the per-request timeout
    "run_budget",  # cut short because the run's time budget ran out
    "connection",  # could not connect, or the connection broke before a response
    "broken_stream",  # a stream that broke off or ended without its finish (and usage, if asked)
    "bad_response",  # an answer the SDK could not read (invalid JSON or shape)
)
MAX_FAILED_REQUEST_IDS = 20


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int


@dataclass(frozen=True)
class CallOutcome:
    call: PlannedCall
    status: str  # OK or one of REASONS
    started_at: datetime
    attempts: int
    lateness_seconds: float  # actual first send minus scheduled send
    usage: Usage | None = None
    latency_ms: float | None = None  # of the answering attempt, to the last byte
    ttft_ms: float | None = None  # streamed calls: to the first content token
    http_status: int | None = None
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def usage_unseen(self) -> bool:
        return self.ok and self.usage is None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile; None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(share * len(ordered))))
    return ordered[rank - 1]


@dataclass
class _Tally:
    """Counters shared by a ground-truth row and the run summary."""

    planned: int = 0
    ok: int = 0
    not_sent: int = 0
    usage_unseen: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    ttfts_ms: list[float] = field(default_factory=list)
    started: list[datetime] = field(default_factory=list)
    failed_request_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def add(self, outcome: CallOutcome) -> None:
        self.planned += 1
        self.retries += max(0, outcome.attempts - 1)
        self.started.append(outcome.started_at)
        if not outcome.ok:
            self.failures[outcome.status] += 1
            if outcome.request_id and len(self.failed_request_ids) < MAX_FAILED_REQUEST_IDS:
                self.failed_request_ids.append(outcome.request_id)
            return
        self.ok += 1
        if outcome.latency_ms is not None:
            self.latencies_ms.append(outcome.latency_ms)
        if outcome.ttft_ms is not None:
            self.ttfts_ms.append(outcome.ttft_ms)
        if outcome.usage is None:
            self.usage_unseen += 1
            return
        self.prompt_tokens += outcome.usage.prompt_tokens
        self.cached_tokens += outcome.usage.cached_tokens
        self.completion_tokens += outcome.usage.completion_tokens
        self.total_tokens += outcome.usage.total_tokens

    def add_not_sent(self) -> None:
        self.planned += 1
        self.not_sent += 1


def _row_key(call: PlannedCall) -> tuple[str, bool, bool]:
    return call.persona.name, call.stream, call.include_usage


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    seed: int
    started_at: datetime


def ground_truth_rows(
    run: RunInfo, outcomes: Iterable[CallOutcome], not_sent: Iterable[PlannedCall]
) -> list[dict[str, Any]]:
    """One row per persona and call mode (plain / streamed with usage / streamed without)."""
    tallies: dict[tuple[str, bool, bool], _Tally] = {}
    calls: dict[tuple[str, bool, bool], PlannedCall] = {}
    for outcome in outcomes:
        key = _row_key(outcome.call)
        calls.setdefault(key, outcome.call)
        tallies.setdefault(key, _Tally()).add(outcome)
    for call in not_sent:
        key = _row_key(call)
        calls.setdefault(key, call)
        tallies.setdefault(key, _Tally()).add_not_sent()
    rows = []
    for key in sorted(tallies):
        tally, persona = tallies[key], calls[key].persona
        rows.append(
            {
                "TimeGenerated": run.started_at.isoformat(),
                "RunId": run.run_id,
                "Seed": str(run.seed),
                "Persona": persona.name,
                "Subscription": persona.subscription,
                "UserId": persona.user_id,
                "Deployment": persona.deployment,
                "Streamed": key[1],
                "IncludeUsage": key[2],
                "CallsPlanned": tally.planned,
                "CallsOk": tally.ok,
                "CallsFailed": tally.failed,
                "CallsNotSent": tally.not_sent,
                "CallsUsageUnseen": tally.usage_unseen,
                "Retries": tally.retries,
                "PromptTokens": tally.prompt_tokens,
                "CachedTokens": tally.cached_tokens,
                "CompletionTokens": tally.completion_tokens,
                "TotalTokens": tally.total_tokens,
                "LatencyP50Ms": _round(percentile(tally.latencies_ms, 0.5)),
                "LatencyP95Ms": _round(percentile(tally.latencies_ms, 0.95)),
                "TtftP50Ms": _round(percentile(tally.ttfts_ms, 0.5)),
                "TtftP95Ms": _round(percentile(tally.ttfts_ms, 0.95)),
                "FirstCallAt": _iso(min(tally.started, default=None)),
                "LastCallAt": _iso(max(tally.started, default=None)),
                "FailureReasons": dict(sorted(tally.failures.items())),
                "FailedRequestIds": tally.failed_request_ids,
            }
        )
    return rows


@dataclass
class TrafficRunSummary:
    run_id: str = ""
    seed: int = 0
    calls_planned: int = 0
    calls_ok: int = 0
    calls_failed: int = 0
    calls_not_sent: int = 0
    calls_usage_unseen: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    lateness_p95_ms: float | None = None
    lateness_max_ms: float | None = None
    duration_seconds: float = 0.0
    rows_uploaded: int = 0

    @property
    def calls_sent(self) -> int:
        return self.calls_ok + self.calls_failed

    def failure_ratio(self) -> float:
        """Failed share of the calls sent (not-sent calls are a capacity problem, reported apart)."""
        return self.calls_failed / self.calls_sent if self.calls_sent else 0.0

    def line(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}ms"

        failed = ", ".join(f"{reason}={count}" for reason, count in sorted(self.failures.items())) or "none"
        return (
            f"traffic run {self.run_id} (seed {self.seed}): {self.calls_ok} ok, {self.calls_failed} failed "
            f"({failed}), {self.calls_not_sent} not sent of {self.calls_planned} planned, "
            f"{self.retries} retries; tokens prompt={self.prompt_tokens} cached={self.cached_tokens} "
            f"completion={self.completion_tokens} total={self.total_tokens}, "
            f"{self.calls_usage_unseen} ok calls without usage (streams without include_usage); "
            f"latency p50={ms(self.latency_p50_ms)} p95={ms(self.latency_p95_ms)}, "
            f"TTFT p50={ms(self.ttft_p50_ms)} p95={ms(self.ttft_p95_ms)}, "
            f"send lateness p95={ms(self.lateness_p95_ms)} max={ms(self.lateness_max_ms)}; "
            f"{self.duration_seconds:.1f}s"
        )


def summarize(
    run: RunInfo, outcomes: Sequence[CallOutcome], not_sent: Sequence[PlannedCall], duration_seconds: float
) -> TrafficRunSummary:
    tally = _Tally()
    for outcome in outcomes:
        tally.add(outcome)
    for _ in not_sent:
        tally.add_not_sent()
    lateness_ms = [outcome.lateness_seconds * 1000 for outcome in outcomes]
    return TrafficRunSummary(
        run_id=run.run_id,
        seed=run.seed,
        calls_planned=tally.planned,
        calls_ok=tally.ok,
        calls_failed=tally.failed,
        calls_not_sent=tally.not_sent,
        calls_usage_unseen=tally.usage_unseen,
        retries=tally.retries,
        prompt_tokens=tally.prompt_tokens,
        cached_tokens=tally.cached_tokens,
        completion_tokens=tally.completion_tokens,
        total_tokens=tally.total_tokens,
        failures=dict(sorted(tally.failures.items())),
        latency_p50_ms=percentile(tally.latencies_ms, 0.5),
        latency_p95_ms=percentile(tally.latencies_ms, 0.95),
        ttft_p50_ms=percentile(tally.ttfts_ms, 0.5),
        ttft_p95_ms=percentile(tally.ttfts_ms, 0.95),
        lateness_p95_ms=percentile(lateness_ms, 0.95),
        lateness_max_ms=max(lateness_ms, default=None),
        duration_seconds=duration_seconds,
    )
