"""The traffic timer: synthetic chat traffic through the gateway, and its ground truth.

One run: load the personas, plan the calls (seeded), send them spread over the run with the
openai SDK (at most `concurrency` at once, all done inside the time budget), aggregate what the
responses reported per persona and call mode, upload that to SyntheticTraffic_CL, and log one
summary line. Faults (bad key, unknown deployment, 429 storms, 5xx, timeouts, broken streams)
are counted by reason and never stop the run; a failed upload does (UploadError).

Module layout: personas (file and validation), prompts (sized text), plan (who calls
when), pacing (open-loop dispatch), client (one call, retries),
results (outcomes, rows, summary), upload (Logs Ingestion).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.config import TrafficSettings
from shared.traffic.pacing import Clock, DispatchResult, SystemClock, dispatch
from shared.traffic.personas import Persona, load_personas
from shared.traffic.plan import PlannedCall, plan_run
from shared.traffic.results import RunInfo, TrafficRunSummary, ground_truth_rows, summarize
from shared.traffic.upload import IngestionClientFactory, upload_ground_truth

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncAzureOpenAI

__all__ = ["TrafficRunSummary", "run_traffic", "send_traffic", "send_window_seconds"]

log = logging.getLogger(__name__)

GATEWAY_API_PATH = "/inference"  # the inference-api's path in APIM (policy.xml)


def upload_reserve_seconds(settings: TrafficSettings) -> float:
    """Kept free at the end of the budget for the ground-truth upload."""
    return min(30.0, max(2.0, settings.time_budget_seconds * 0.1))


def calls_deadline_seconds(settings: TrafficSettings) -> float:
    """From the run's start, when every call must have ended."""
    return max(0.0, settings.time_budget_seconds - upload_reserve_seconds(settings))


def send_window_seconds(settings: TrafficSettings) -> float:
    """Calls are spread over this; the last one still has a whole request timeout left."""
    return max(0.0, calls_deadline_seconds(settings) - settings.request_timeout_seconds)


def _longest_prompts(personas: Sequence[Persona]) -> dict[str, int]:
    return {persona.name: persona.prompt_tokens.max_tokens for persona in personas}


def _openai_clients(
    settings: TrafficSettings, personas: Sequence[Persona], http_client: httpx2.AsyncClient
) -> dict[str, AsyncAzureOpenAI]:
    from openai import AsyncAzureOpenAI

    # One client per key (the SDK sends it in the api-key header APIM checks), one connection pool.
    return {
        persona.subscription_key_setting: AsyncAzureOpenAI(
            azure_endpoint=settings.gateway_url.rstrip("/") + GATEWAY_API_PATH,
            api_key=persona.subscription_key,
            api_version=settings.openai_api_version,
            max_retries=0,  # client.py retries, bounded by the run's deadline
            timeout=settings.request_timeout_seconds,
            http_client=http_client,
        )
        for persona in personas
    }


async def send_traffic(
    settings: TrafficSettings,
    personas: Sequence[Persona],
    calls: Sequence[PlannedCall],
    *,
    clock: Clock,
    start: float,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> DispatchResult:
    """Send the planned calls through the gateway; `transport` replaces the network in tests."""
    import httpx2
    from openai import DefaultAsyncHttpxClient

    from shared.traffic.client import CallSender, RetryPolicy

    pool = settings.concurrency
    limits = httpx2.Limits(max_connections=pool, max_keepalive_connections=pool)
    async with DefaultAsyncHttpxClient(limits=limits, transport=transport) as http_client:
        sender = CallSender(
            _openai_clients(settings, personas, http_client),
            clock=clock,
            policy=RetryPolicy(
                max_retries=settings.max_retries, request_timeout_seconds=settings.request_timeout_seconds
            ),
            longest_prompt_tokens=_longest_prompts(personas),
        )
        deadline = start + calls_deadline_seconds(settings)
        return await dispatch(
            calls, sender.send, clock=clock, start=start, deadline=deadline, concurrency=settings.concurrency
        )


def run_traffic(
    settings: TrafficSettings,
    ingestion_client_factory: IngestionClientFactory,
    *,
    clock: Clock | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> TrafficRunSummary:
    """One traffic run, ground-truth upload included (settings: shared/config.py's traffic section).
    Raises InputFileError before sending anything if the persona file is unusable, and UploadError
    if the record could not be stored."""
    clock = clock or SystemClock()
    start = clock.now()
    run = RunInfo(
        run_id=str(uuid.uuid4()),
        seed=settings.seed if settings.seed is not None else random.SystemRandom().getrandbits(31),
        started_at=clock.wall(),
    )
    personas = load_personas(settings.personas_file, settings.subscription_keys)
    calls = plan_run(
        personas, requests=settings.requests_per_run, seed=run.seed, send_window_seconds=send_window_seconds(settings)
    )
    result = asyncio.run(send_traffic(settings, personas, calls, clock=clock, start=start, transport=transport))

    summary = summarize(run, result.outcomes, result.not_sent, duration_seconds=clock.now() - start)
    log.info(summary.line())
    if summary.calls_not_sent:
        log.warning(
            "traffic run %s: %d of %d calls did not fit the time budget of %.0fs and were not sent",
            run.run_id,
            summary.calls_not_sent,
            summary.calls_planned,
            settings.time_budget_seconds,
        )
    if summary.failure_ratio() > settings.failure_warn_ratio:
        log.warning(
            "traffic run %s: %.1f%% of calls failed (%s), above the warning threshold of %.1f%%",
            run.run_id,
            summary.failure_ratio() * 100,
            ", ".join(f"{reason}={count}" for reason, count in summary.failures.items()),
            settings.failure_warn_ratio * 100,
        )

    rows = ground_truth_rows(run, result.outcomes, result.not_sent)
    upload_ground_truth(
        ingestion_client_factory(settings.ingestion_endpoint),
        rule_id=settings.ingestion_rule_id,
        stream_name=settings.ingestion_stream,
        rows=rows,
        timeout_seconds=max(1.0, start + settings.time_budget_seconds - clock.now()),
    )
    summary.rows_uploaded = len(rows)
    summary.duration_seconds = clock.now() - start
    return summary
