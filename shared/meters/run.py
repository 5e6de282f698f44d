"""The bypass check after a costs run: each final window's tokens per deployment, account against gateway.

One check:
  1. takes the costs run's final windows that did not fail (their gateway side is what the summaries hold)
     and its tokens per window x deployment (CostRunSummary.deployment_tokens: no second query);
  2. reads each account's ProcessedPromptTokens + GeneratedTokens for the same windows, split by deployment
     (shared/meters/read.py), within one time budget for all accounts;
  3. sets them side by side: one WindowComparison per window x deployment either side saw; an account that
     could not be read leaves every pair of the run pending (a deployment cannot be placed in an account
     without the account's answer), named in the log line;
  4. writes what it found to MeterComparison_CL (table.py): each pair, compared or pending, and each final window
     without a pair, as a new revision only when it differs from the latest one; so the pending state is in the
     table and the workbook, not only in the log line;
  5. logs one line and returns the BypassReport the alert rules of kind `bypass` judge.
Windows are compared only once final: the costs run waits COST_INGESTION_DELAY_MINUTES after a window's
end, which covers the minutes platform metrics, like APIM's token metrics, take to arrive. The same final
windows come back in the next runs (COST_RECOMPUTE_WINDOWS), so a pending pair is compared then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.config import MeterSettings
from shared.costs.outputs import CostRunSummary, DeploymentTokens
from shared.errors import AzureServiceError
from shared.logs.revisions import next_revision
from shared.meters.outputs import Allowance, BypassReport, WindowComparison
from shared.meters.read import AccountTokens, Budget, ServicePending, read_account_tokens
from shared.meters.table import ComparisonStore, LogsComparisons, rows_of, to_write
from shared.windows import Window

if TYPE_CHECKING:
    from azure.mgmt.monitor import MonitorManagementClient

    from shared.azure_clients import ModelAccount

log = logging.getLogger(__name__)


@dataclass
class MeterClients:
    """The metrics client per subscription (one ARM client serves every account of a subscription) and the table
    the comparisons are kept in."""

    client_for: Callable[[str], MonitorManagementClient]
    table: ComparisonStore


def build_clients(settings: MeterSettings) -> MeterClients:
    access = settings.azure
    credential = access.credential()
    built: dict[str, MonitorManagementClient] = {}

    def client_for(subscription_id: str) -> MonitorManagementClient:
        if subscription_id not in built:
            built[subscription_id] = access.monitor_client(
                settings.resource_manager_endpoint, subscription_id, credential
            )
        return built[subscription_id]

    table = LogsComparisons(
        settings,
        access.logs_query_client(settings.query_endpoint, credential),
        access.logs_ingestion_client(settings.ingestion_endpoint, credential),
    )
    return MeterClients(client_for, table)


def check_bypass(
    settings: MeterSettings,
    cost_summary: CostRunSummary,
    *,
    allowance: Allowance | None = None,
    clients: MeterClients | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BypassReport:
    """One bypass check (see the module docstring). `allowance`: the strictest `bypass` rule's, written beside
    each comparison (None: no such rule). Never raises for the accounts' metrics nor for the table: what could
    not be read is pending in the report (and its line), what could not be written is named in the line."""
    if not settings.model_accounts:
        report = BypassReport(enabled=False)
        log.info(report.line())
        return report
    started = clock()
    windows = sorted(
        outcome.window for outcome in cost_summary.windows if outcome.final and outcome.status != "failed"
    )
    report = BypassReport(enabled=True, windows=windows)
    gateway = _gateway_tokens(cost_summary.deployment_tokens, windows)
    if not windows:
        report.duration_seconds = clock() - started
        log.info(report.line())
        return report
    clients = clients or build_clients(settings)
    budget = Budget(settings.budget_seconds, settings.attempts, settings.retry_delay_seconds, sleep, clock)
    accounts: dict[tuple[datetime, str], tuple[AccountTokens, str]] = {}
    for account in settings.model_accounts:
        try:
            found, reads, retries = _read(clients, account, windows, settings.window_minutes, budget)
        except ServicePending as pending:
            report.pending_reasons.append(pending.reason)
            report.reads += pending.retries + 1
            report.retries += pending.retries
            continue
        report.reads += reads
        report.retries += retries
        for key, tokens in found.items():
            accounts.setdefault(key, (tokens, account.resource_id))
    report.comparisons = _compare(windows, gateway, accounts, pending=bool(report.pending_reasons))
    _keep(clients.table, report, allowance, wall_clock())
    report.duration_seconds = clock() - started
    if report.pending_reasons or report.table_problem:
        log.warning(report.line())
    else:
        log.info(report.line())
    return report


def _keep(table: ComparisonStore, report: BypassReport, allowance: Allowance | None, now: datetime) -> None:
    """Write what the report says that MeterComparison_CL does not say yet (shared/meters/table.py)."""
    try:
        latest = table.latest(report.windows)
    except AzureServiceError as error:
        report.table_problem = f"the latest comparisons could not be read: {error}"
        return
    rows = to_write(rows_of(report, allowance), latest, next_revision(now, (row.revision for row in latest.values())))
    problems = table.write(rows) if rows else []
    if problems:
        report.table_problem = "; ".join(problems)
    else:
        report.rows_written = len(rows)


def _read(
    clients: MeterClients, account: ModelAccount, windows: Sequence[Window], window_minutes: int, budget: Budget
) -> tuple[dict[tuple[datetime, str], AccountTokens], int, int]:
    # One span from the first to the last window: the run's final windows are consecutive.
    client = clients.client_for(account.subscription_id)
    return read_account_tokens(client, account, windows[0].start, windows[-1].end, window_minutes, budget)


def _gateway_tokens(
    rows: Iterable[DeploymentTokens], windows: Sequence[Window]
) -> dict[tuple[datetime, str], DeploymentTokens]:
    """The gateway's tokens per (window start, deployment folded), final windows only; names differing only in
    case are one Azure deployment (its names are case-insensitive), so they are added up."""
    starts = {window.start for window in windows}
    found: dict[tuple[datetime, str], DeploymentTokens] = {}
    for row in rows:
        if row.window_start not in starts:
            continue
        key = (row.window_start, row.deployment.casefold())
        before = found.get(key)
        found[key] = (
            row
            if before is None
            else DeploymentTokens(
                row.window_start,
                before.deployment,
                before.total_tokens + row.total_tokens,
                before.estimated_tokens + row.estimated_tokens,
            )
        )
    return found


def _compare(
    windows: Sequence[Window],
    gateway: dict[tuple[datetime, str], DeploymentTokens],
    accounts: dict[tuple[datetime, str], tuple[AccountTokens, str]],
    *,
    pending: bool,
) -> list[WindowComparison]:
    by_start = {window.start: window for window in windows}
    comparisons = []
    for key in sorted(set(gateway) | set(accounts)):
        start, _ = key
        ours = gateway.get(key)
        theirs = accounts.get(key)
        tokens, account = theirs if theirs is not None else (None, "")
        comparisons.append(
            WindowComparison(
                window=by_start[start],
                deployment=ours.deployment if ours is not None else tokens.deployment if tokens else key[1],
                account=account,
                status="pending" if pending else "compared",
                gateway_tokens=ours.total_tokens if ours is not None else 0,
                gateway_estimated_tokens=ours.estimated_tokens if ours is not None else 0,
                account_prompt_tokens=0 if pending or tokens is None else tokens.prompt_tokens,
                account_generated_tokens=0 if pending or tokens is None else tokens.generated_tokens,
            )
        )
    return comparisons
