"""The costs run: token metrics -> priced cost summaries in TokenCostSummary_CL, once per window.

One run:
  1. plans its windows (shared/windows.py): every window not final yet, the last N final ones
     again (late metrics), and the open window as provisional;
  2. reads their token usage, summarized by Log Analytics (shared/costs/query.py);
  3. prices it (shared/costs/frame.py, shared/costs/pricing.py), each deployment as the model the
     accounts list for it through ARM or deployments.json says (shared/costs/deployments.py);
  4. uploads each window whose content changed since its last upload as a new revision
     (shared/logs/upload.py); readers take the latest complete revision per window;
  5. records progress in Table storage (shared/costs/progress.py) for the windows that fully uploaded;
  6. returns, and logs in one line, what it did plus the day- and month-to-date spend per
     subscription (shared/costs/totals.py) the alert rules need, as shared/costs/outputs.py types.
A failure at any step leaves the affected windows not final, so the next run redoes them.

pandas and the Azure SDKs are imported inside run_costs, so importing this module (shared/timers.py,
tests) costs nothing until a run starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.config import CostSettings
from shared.costs.deployments import ArmDeploymentDiscovery, DeploymentDiscovery, deployment_map_for_run
from shared.costs.outputs import CostRunSummary, DeploymentTokens, SubscriptionSpend, WindowOutcome
from shared.costs.pricing import load_deployment_map, load_price_table
from shared.costs.progress import ProgressStore, WindowProgress
from shared.errors import UploadError
from shared.logs.upload import UploadPolicy
from shared.money import from_micros
from shared.windows import PlannedWindow, plan_windows, start_of_day, start_of_month

if TYPE_CHECKING:
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient

    from shared.costs.frame import PricedUsage

log = logging.getLogger(__name__)

EMPTY_FINGERPRINT = "0:0000000000000000"


def progress_scope(settings: CostSettings) -> str:
    """Whose progress a run reads and writes: another workspace, schema or window width starts afresh."""
    return f"{settings.workspace_id}|{settings.metrics_schema}|{settings.window_minutes}m"


class CostUploadError(UploadError):
    """Some windows did not upload; they stay not final and the next run redoes them. Carries the
    run's summary: the caller still alerts on the windows that did upload."""

    def __init__(self, summary: CostRunSummary, problems: list[str]) -> None:
        super().__init__(f"{len(summary.failed_windows)} cost windows failed to upload: " + "; ".join(problems))
        self.summary = summary


@dataclass
class CostClients:
    """The service clients of a run; tests pass their own, run_costs builds them from settings."""

    query: LogsQueryClient
    ingestion: LogsIngestionClient
    progress: ProgressStore
    # The model accounts' deployments through ARM; None (no COST_MODEL_ACCOUNTS): the deployment map alone.
    discovery: DeploymentDiscovery | None = None


def build_clients(settings: CostSettings) -> CostClients:
    from shared.costs.progress import TableProgressStore

    access = settings.azure
    credential = access.credential()
    discovery = None
    if settings.model_accounts:
        discovery = ArmDeploymentDiscovery(
            settings.model_accounts,
            lambda subscription: access.cognitive_services_client(
                settings.resource_manager_endpoint, subscription, credential
            ),
        )
    return CostClients(
        query=access.logs_query_client(settings.query_endpoint, credential),
        ingestion=access.logs_ingestion_client(settings.ingestion_endpoint, credential),
        progress=TableProgressStore(
            access.state_table(settings, "costs progress", credential), progress_scope(settings)
        ),
        discovery=discovery,
    )


def run_costs(
    settings: CostSettings,
    *,
    now: datetime | None = None,
    clients: CostClients | None = None,
    sleep: Any = time.sleep,
) -> CostRunSummary:
    """One costs run (see the module docstring; settings: shared/config.py's costs section).
    Raises QueryError when the usage could not be read completely (nothing uploaded or marked),
    CostUploadError when some windows did not upload."""
    from shared.costs.frame import price_frame, upload_records, usage_frame, window_fingerprints
    from shared.costs.query import unpack_windows, usage_query
    from shared.logs.parts import query_in_parts
    from shared.logs.upload import upload_windows

    started = time.monotonic()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    prices = load_price_table(settings.price_table_path)
    if prices.left_out:  # usage of these keys is flagged unpriced; say why once per run
        log.warning(
            "price table %s: %d prices not usable (first: %s)", prices.version, len(prices.left_out), prices.left_out[0]
        )
    file_deployments = load_deployment_map(settings.deployment_map_path)
    clients = clients or build_clients(settings)
    # Listed once per run, before anything is priced: a refused read fails the run, never prices blind.
    deployments = deployment_map_for_run(file_deployments, clients.discovery)

    planned = plan_windows(
        now,
        window_minutes=settings.window_minutes,
        ingestion_delay=timedelta(minutes=settings.ingestion_delay_minutes),
        recompute_windows=settings.recompute_windows,
        final_through=clients.progress.final_through(),
    )
    first, last = planned[0].window, planned[-1].window
    recorded = clients.progress.windows(first.start)
    # Computed-at time; strictly after every earlier revision of these windows even if clocks step back.
    revision = max([datetime.now(UTC), *(p.revision + timedelta(microseconds=1) for p in recorded.values())])

    steps: dict[str, float] = {}
    with _timed(steps, "query"):
        usage = query_in_parts(
            clients.query, settings.workspace_id, usage_query(settings), first.start, last.end, sleep=sleep
        )
        usage_columns = unpack_windows(usage.rows)
    with _timed(steps, "pricing"):
        priced = price_frame(usage_frame(usage_columns), prices, deployments)
        fingerprints = window_fingerprints(priced.frame)

    to_upload: list[PlannedWindow] = []
    for item in planned:
        previous = recorded.get(item.window.start)
        fingerprint = fingerprints.get(item.window.start, EMPTY_FINGERPRINT)
        unchanged = previous is not None and (previous.fingerprint, previous.final) == (fingerprint, item.final)
        if not unchanged and fingerprint != EMPTY_FINGERPRINT:
            to_upload.append(item)
    with _timed(steps, "pricing"):  # the summary rows, encoded for the upload
        windows_to_upload = [
            (
                item.window.start,
                upload_records(
                    priced.frame, window=item.window, final=item.final, revision=revision, price_version=prices.version
                ),
            )
            for item in to_upload
        ]
    with _timed(steps, "upload"):
        report = upload_windows(clients.ingestion, upload_policy(settings), windows_to_upload, sleep=sleep)

    outcomes, progress = _outcomes(planned, recorded, fingerprints, set(report.windows_uploaded), revision)
    final_through = _final_through(outcomes, clients.progress.final_through())
    clients.progress.save(progress, final_through)

    summary = CostRunSummary(
        started_at=now,
        revision=revision,
        price_version=prices.version,
        windows=outcomes,
        rows_uploaded=report.rows_uploaded,
        final_through=final_through,
        queries=usage.queries,
        query_splits=usage.splits,
        retries=usage.retries + report.retries,
    )
    with _timed(steps, "totals"):
        _add_totals(summary, priced)
        summary.deployment_tokens = _deployment_tokens(priced)
        summary.spend = _spend(clients.query, settings, priced, now, first.start)
    summary.step_seconds = steps
    summary.duration_seconds = time.monotonic() - started
    log.info(summary.line())
    if report.windows_failed:
        raise CostUploadError(summary, report.problems)
    return summary


def upload_policy(settings: CostSettings) -> UploadPolicy:
    """How the summaries are uploaded: every value from the settings (their defaults are config's)."""
    return UploadPolicy(
        what="cost summary",
        rule_id=settings.ingestion_rule_id,
        stream=settings.ingestion_stream,
        chunk_rows=settings.upload_chunk_rows,
        attempts=settings.upload_attempts,
        retry_delay_seconds=settings.retry_delay_seconds,
    )


@contextmanager
def _timed(steps: dict[str, float], name: str) -> Iterator[None]:
    """Adds the seconds the block takes to steps[name] (the summary line's per-step figures)."""
    started = time.monotonic()
    try:
        yield
    finally:
        steps[name] = steps.get(name, 0.0) + time.monotonic() - started


def _outcomes(
    planned: list[PlannedWindow],
    recorded: Mapping[datetime, WindowProgress],
    fingerprints: Mapping[datetime, str],
    uploaded: set[datetime],
    revision: datetime,
) -> tuple[list[WindowOutcome], list[WindowProgress]]:
    outcomes, progress = [], []
    for item in planned:
        start = item.window.start
        fingerprint = fingerprints.get(start, EMPTY_FINGERPRINT)
        rows = int(fingerprint.split(":")[0])
        previous = recorded.get(start)
        if start in uploaded:
            status = "uploaded"
            progress.append(WindowProgress(start, item.final, revision, fingerprint, rows))
        elif fingerprint == EMPTY_FINGERPRINT:
            status = "empty"
            if previous is None or previous.final != item.final:
                progress.append(WindowProgress(start, item.final, revision, fingerprint, 0))
        elif previous is not None and (previous.fingerprint, previous.final) == (fingerprint, item.final):
            status = "unchanged"
        else:
            status = "failed"
        outcomes.append(WindowOutcome(item.window, item.final, rows, status))
    return outcomes, progress


def _final_through(outcomes: list[WindowOutcome], previous: datetime | None) -> datetime | None:
    """End of the oldest run of final, stored windows from the previous watermark on."""
    through = previous
    for outcome in outcomes:
        if previous is not None and outcome.window.end <= previous:
            continue
        if not outcome.final or outcome.status == "failed":
            break
        through = outcome.window.end
    return through


def _add_totals(summary: CostRunSummary, priced: PricedUsage) -> None:
    frame = priced.frame
    for name in (
        "Requests",
        "PromptTokens",
        "CachedPromptTokens",
        "CompletionTokens",
        "TotalTokens",
        "EstimatedTotalTokens",
    ):
        summary.tokens[name] = int(frame[name].sum()) if not frame.empty else 0
    priced_rows = frame[~frame["Unpriced"]]
    sums = priced_rows.groupby("Currency")[["TotalCostMicros", "EstimatedCostMicros"]].sum()
    for currency, total, estimated in sums.itertuples():
        summary.cost_by_currency[str(currency)] = from_micros(int(total))
        summary.estimated_cost_by_currency[str(currency)] = from_micros(int(estimated))
    summary.unpriced_tokens = int(frame.loc[frame["Unpriced"], "TotalTokens"].sum()) if not frame.empty else 0
    summary.unpriced_models = priced.unpriced_models
    if not frame.empty:
        unmetered = ~frame["CacheDiscountMetered"] & ~frame["Unpriced"]
        summary.cache_unmetered_prompt_tokens = int(frame.loc[unmetered, "PromptTokens"].sum())


def _deployment_tokens(priced: PricedUsage) -> list[DeploymentTokens]:
    """The gateway's tokens per window x deployment, for the bypass check (shared/meters/)."""
    frame = priced.frame
    if frame.empty:
        return []
    sums = frame.groupby(["WindowStart", "Deployment"])[["TotalTokens", "EstimatedTotalTokens"]].sum()
    return [
        DeploymentTokens(start.to_pydatetime(), str(deployment), int(total), int(estimated))
        for (start, deployment), total, estimated in sums.itertuples()
    ]


def _spend(
    client: LogsQueryClient, settings: CostSettings, priced: PricedUsage, now: datetime, first_start: datetime
) -> list[SubscriptionSpend]:
    """Day- and month-to-date per subscription: earlier windows from the summaries, ours from the frame."""
    from shared.costs.totals import daily_totals_of_frame, daily_totals_of_rows, spend_to_date

    month_start = start_of_month(now)
    daily = [daily_totals_of_frame(priced.frame)]
    if month_start < first_start:
        daily.append(daily_totals_of_rows(_summary_totals(client, settings, month_start, first_start)))
    return spend_to_date(daily, day_start=start_of_day(now), month_start=month_start)


def _summary_totals(client: LogsQueryClient, settings: CostSettings, start: datetime, end: datetime) -> list[Any]:
    from shared.costs.totals import TOTALS_QUERY_COLUMNS
    from shared.logs.kql import load_query
    from shared.logs.query import query_table

    query = load_query("cost-totals-by-subscription-day.kql", {"start_time": start, "end_time": end})
    # Summaries carry TimeGenerated = their revision time, which is after their window start.
    return query_table(
        client,
        settings.workspace_id,
        "month-to-date cost totals query",
        query,
        (start, datetime.now(UTC)),
        TOTALS_QUERY_COLUMNS,
    )
