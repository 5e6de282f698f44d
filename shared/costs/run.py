"""The costs run: token metrics -> priced cost summaries in TokenCostSummary_CL, once per window.

One run:
  1. plans its windows (shared/windows.py): every window not final yet, the last N final ones
     again (late metrics), and the open window as provisional;
  2. recomputes them (shared/costs/recompute.py, the steps the explicit reprice shares): reads their
     token usage, summarized by Log Analytics (query.py); prices it (frame.py, pricing.py), each
     deployment as the model the accounts list for it through ARM or deployments.json says
     (deployments.py); uploads each window whose content changed since its last upload as a new
     revision (shared/logs/upload.py; readers take the latest complete revision per window), except
     a window of a closed month whose usage did not change: only new prices never reprice a closed
     month (`python -m tools.reprice` does, on purpose);
  3. records progress in Table storage (progress.py) for the windows that fully uploaded, with the
     price version and usage they were uploaded with;
  4. returns, and logs in one line, what it did plus the day- and month-to-date spend per
     subscription (totals.py) the alert rules need, as outputs.py types; one more line when it
     restated windows (their prices differ from their last upload's) or held closed-month ones.
A failure at any step leaves the affected windows not final, so the next run redoes them.

pandas and the Azure SDKs are imported inside run_costs, so importing this module (shared/timers.py,
tests) costs nothing until a run starts.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.config import CostSettings
from shared.costs.clients import CostClients
from shared.costs.outputs import CostRunSummary, DeploymentTokens, SubscriptionSpend, WindowOutcome
from shared.costs.recompute import held_line, load_inputs, recompute, restatement_line
from shared.errors import UploadError
from shared.money import from_micros
from shared.timing import timed
from shared.windows import plan_windows, start_of_day, start_of_month

if TYPE_CHECKING:
    import pandas as pd
    from azure.monitor.query import LogsQueryClient

    from shared.costs.frame import PricedUsage

log = logging.getLogger(__name__)


class CostUploadError(UploadError):
    """Some windows did not upload; they stay not final and the next run redoes them. Carries the
    run's summary: the caller still alerts on the windows that did upload."""

    def __init__(self, summary: CostRunSummary, problems: list[str]) -> None:
        super().__init__(f"{len(summary.failed_windows)} cost windows failed to upload: " + "; ".join(problems))
        self.summary = summary


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
    started = time.monotonic()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    inputs = load_inputs(settings, clients)
    watermark = inputs.clients.progress.final_through()
    planned = plan_windows(
        now,
        window_minutes=settings.window_minutes,
        ingestion_delay=timedelta(minutes=settings.ingestion_delay_minutes),
        recompute_windows=settings.recompute_windows,
        final_through=watermark,
    )
    steps: dict[str, float] = {}
    recorded = inputs.clients.progress.windows(planned[0].window.start)
    done = recompute(
        settings, inputs, planned, recorded, closed_before=start_of_month(now), steps=steps, sleep=sleep
    )
    final_through = _final_through(done.outcomes, watermark)
    inputs.clients.progress.save(done.progress, final_through)

    summary = CostRunSummary(
        started_at=now,
        revision=done.revision,
        price_version=inputs.prices.version,
        windows=done.outcomes,
        rows_uploaded=done.upload.rows_uploaded,
        final_through=final_through,
        queries=done.usage.queries,
        query_splits=done.usage.splits,
        retries=done.usage.retries + done.upload.retries,
        restated_windows=len(done.restated),
    )
    with timed(steps, "totals"):
        _add_totals(summary, done.priced)
        summary.deployment_tokens = _deployment_tokens(done.priced)
        summary.spend = _spend(inputs.clients.query, settings, done.priced, now, planned[0].window.start)
    summary.step_seconds = steps
    summary.duration_seconds = time.monotonic() - started
    log.info(summary.line())
    if done.restated:
        log.info(restatement_line(done.restated, inputs.prices.version))
    if done.held:
        log.warning(held_line(done.held, inputs.prices.version))
    if done.upload.windows_failed:
        raise CostUploadError(summary, done.upload.problems)
    return summary


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
    from shared.costs.frame import USAGE_PRICED

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
    _add_provisioned_totals(summary, priced_rows)
    summary.unpriced_tokens = int(frame.loc[frame["Unpriced"], "TotalTokens"].sum()) if not frame.empty else 0
    summary.unpriced_models = priced.unpriced_models
    summary.cache_write_exposure_by_currency = dict(priced.cache_write_exposure)
    if not frame.empty:
        # Only per-token prices can have missed a cache discount; a PTU share has none to miss.
        unmetered = ~frame["CacheDiscountMetered"] & (frame["CostBasis"] == USAGE_PRICED)
        summary.cache_unmetered_prompt_tokens = int(frame.loc[unmetered, "PromptTokens"].sum())


def _add_provisioned_totals(summary: CostRunSummary, priced_rows: pd.DataFrame) -> None:
    """The PTU-hour part of the run's cost per currency, and of it what nobody called (the summary line)."""
    from shared.costs.ptu import ALLOCATED, UNUSED

    provisioned = priced_rows[priced_rows["CostBasis"].isin((ALLOCATED, UNUSED))]
    for currency, part in provisioned.groupby("Currency"):
        summary.provisioned_cost_by_currency[str(currency)] = from_micros(int(part["TotalCostMicros"].sum()))
        unused = part.loc[part["CostBasis"] == UNUSED, "TotalCostMicros"]
        summary.unused_provisioned_cost_by_currency[str(currency)] = from_micros(int(unused.sum()))


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
    from shared.costs.totals import daily_totals_of_frame, spend_to_date, stored_daily_totals

    month_start = start_of_month(now)
    daily = [daily_totals_of_frame(priced.frame)]
    if month_start < first_start:
        daily.append(
            stored_daily_totals(
                client, settings.workspace_id, month_start, first_start, "month-to-date cost totals query"
            )
        )
    return spend_to_date(daily, day_start=start_of_day(now), month_start=month_start)
