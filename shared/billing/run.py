"""The bill check after a costs run: each model account's settled UTC days, our cost against Azure's bill.

One check:
  1. the settled days: the last BILL_CHECK_DAYS UTC days whose end is BILL_CHECK_SETTLE_HOURS ago;
  2. the latest comparison of each (bill-reconciliation-latest.kql); Cost Management is read only when due:
     BILL_CHECK_INTERVAL_HOURS after the last complete read, or at once for a settled day not compared yet;
     when not due, the latest comparisons are what the check hands on (so alerts neither resolve nor refire);
  3. when due: the accounts' deployments (ARM, shared/costs/deployments.py), our cost per account, day and
     meter group (ours.py), the bill per scope (query.py, within the check's budget), compared (compare.py);
  4. a comparison whose figures or cause differ from its latest revision is written as a new revision to
     BillReconciliation_CL (every meter group and the account's whole day, "all"); one the same is not:
     a late billing row restates its day once;
  5. a scope whose bill could not be read leaves its days pending: a settled day never compared gets a row
     with Status "pending" (the workbook shows it), the log line says PENDING and why, no alert fires or
     resolves on it, and the next costs run tries again;
  6. logs one line and returns the BillReport the alert rules of kind `bill_gap` judge.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.azure_retry import Budget, ServicePending
from shared.billing.compare import all_group, compare_day
from shared.billing.outputs import ALL, BillReport, DayComparison, GroupFigures
from shared.billing.query import BilledRow, read_billed, scope_of
from shared.billing.state import LastCheckStore, TableLastCheck
from shared.config import BillSettings
from shared.logs.revisions import RevisionTable, as_instant, next_revision, read_latest, row_text, write_revision
from shared.windows import start_of_day

if TYPE_CHECKING:
    from azure.mgmt.costmanagement import CostManagementClient
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient

    from shared.azure_clients import ModelAccount
    from shared.costs.deployments import DeploymentDiscovery

log = logging.getLogger(__name__)

LATEST_FILE = "bill-reconciliation-latest.kql"
LATEST_COLUMNS = (
    "Day", "Account", "MeterGroup", "Status", "Revision", "Currency", "OurCost", "BilledCost", "GapCost",
    "GapPercent", "OurTokens", "BilledTokens", "ListPricePer1M", "BilledPricePer1M", "UnpricedTokens", "LikelyCause",
    "Detail", "Scope",
)  # fmt: skip
_MICRO = Decimal("0.000001")


@dataclass
class BillClients:
    query: LogsQueryClient
    ingestion: LogsIngestionClient
    cost: Callable[[], CostManagementClient]
    discovery: DeploymentDiscovery
    state: LastCheckStore


def build_clients(settings: BillSettings) -> BillClients:
    from shared.costs.deployments import ArmDeploymentDiscovery

    access = settings.azure
    credential = access.credential()
    built: list[CostManagementClient] = []

    def cost() -> CostManagementClient:
        if not built:
            built.append(access.cost_management_client(settings.resource_manager_endpoint, credential))
        return built[0]

    return BillClients(
        query=access.logs_query_client(settings.query_endpoint, credential),
        ingestion=access.logs_ingestion_client(settings.ingestion_endpoint, credential),
        cost=cost,
        discovery=ArmDeploymentDiscovery(
            settings.model_accounts,
            lambda subscription: access.cognitive_services_client(
                settings.resource_manager_endpoint, subscription, credential
            ),
        ),
        state=TableLastCheck(access.state_table(settings, "bill check state", credential), settings.workspace_id),
    )


def settled_days(now: datetime, settle_hours: float, days: int) -> list[datetime]:
    """The last `days` UTC days that ended at least `settle_hours` ago, oldest first."""
    last = start_of_day(now - timedelta(hours=settle_hours)) - timedelta(days=1)
    return [last - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def check_bill(
    settings: BillSettings,
    *,
    now: datetime | None = None,
    clients: BillClients | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BillReport:
    """One bill check (see the module docstring). Cost Management's failures never raise: they are pending in the
    report; a failure of our own side (the summaries query, ARM discovery) raises, like the costs run's."""
    if not settings.model_accounts:
        report = BillReport(enabled=False)
        log.info(report.line())
        return report
    started = clock()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    days = settled_days(now, settings.settle_hours, settings.days)
    report = BillReport(enabled=True, days=days)
    clients = clients or build_clients(settings)
    latest = latest_comparisons(clients.query, settings.workspace_id, days)
    accounts = {account.resource_id.casefold(): account for account in settings.model_accounts}
    last_check = clients.state.last_check()
    uncompared = [
        (day, key) for day in days for key in accounts if (latest.get((day, key)) or _PENDING).status != "compared"
    ]
    if last_check is not None and now - last_check < timedelta(hours=settings.interval_hours) and not uncompared:
        report.comparisons = [latest[(day, key)] for day in days for key in accounts]
        report.next_check = last_check + timedelta(hours=settings.interval_hours)
    else:
        _check(settings, clients, report, latest, accounts, now, Budget(
            settings.budget_seconds, settings.attempts, settings.retry_delay_seconds, sleep, clock
        ))  # fmt: skip
    report.duration_seconds = clock() - started
    (log.warning if report.pending_reasons else log.info)(report.line())
    return report


_PENDING = DayComparison(datetime.min.replace(tzinfo=UTC), "", "pending", "", Decimal(0), Decimal(0), 0, "", "")


def _check(
    settings: BillSettings,
    clients: BillClients,
    report: BillReport,
    latest: Mapping[tuple[datetime, str], DayComparison],
    accounts: Mapping[str, ModelAccount],
    now: datetime,
    budget: Budget,
) -> None:
    from shared.billing.ours import read_our_days

    report.queried = True
    days = report.days
    discovered = clients.discovery.deployments()
    account_of = {item.name.casefold(): item.source for item in discovered if item.source.casefold() in accounts}
    ours, _ = read_our_days(clients.query, settings.workspace_id, days[0], days[-1], account_of)
    by_scope: dict[str, list[ModelAccount]] = defaultdict(list)
    for account in accounts.values():
        by_scope[scope_of(account, settings.scope)].append(account)
    billed: dict[tuple[datetime, str], list[BilledRow]] = defaultdict(list)
    pending_accounts: dict[str, str] = {}
    for scope, members in sorted(by_scope.items()):
        try:
            rows, attempted = read_billed(clients.cost(), scope, members, days[0], days[-1], budget)
        except ServicePending as pending:
            report.pending_reasons.append(pending.reason)
            report.requests += pending.retries + 1
            report.retries += pending.retries
            pending_accounts.update({account.resource_id.casefold(): scope for account in members})
            continue
        report.requests += attempted.requests
        report.retries += attempted.retries
        for row in rows:
            billed[(row.day, row.resource_id)].append(row)
    revision = next_revision(now, (item.revision for item in latest.values()))
    written: list[tuple[DayComparison, str]] = []
    for day in days:
        for key, account in sorted(accounts.items()):
            before = latest.get((day, key))
            scope = scope_of(account, settings.scope)
            if key in pending_accounts:
                if before is not None and before.status == "compared":
                    report.comparisons.append(before)  # the bill of that day as last read stands
                    continue
                item = DayComparison(day, account.resource_id, "pending", "", Decimal(0), Decimal(0), 0, "",
                                     "Cost Management could not be read: " + "; ".join(report.pending_reasons),
                                     revision=revision)  # fmt: skip
                report.comparisons.append(item)
                if before is None:
                    written.append((item, scope))
                continue
            item = compare_day(day, account.resource_id, ours.get((day, key)), billed.get((day, key), ()))
            if before is not None and before.status == "compared" and _same(before, item):
                report.comparisons.append(before)
                continue
            item = replace(item, revision=revision, restated=before is not None and before.status == "compared")
            report.comparisons.append(item)
            written.append((item, scope))
    if written and not _upload(settings, clients, written):
        report.pending_reasons.append("the comparisons could not be written to BillReconciliation_CL (next run)")
        return
    report.revisions_written = len(written)
    if not report.pending_reasons:
        clients.state.save(now)


def _same(before: DayComparison, after: DayComparison) -> bool:
    """Whether a fresh comparison says what the latest revision says (figures to the micro-unit, and cause)."""

    def figures(item: DayComparison) -> tuple[Any, ...]:
        groups = sorted(
            (group.group, _micro(group.our_cost), _micro(group.billed_cost), group.our_tokens, group.billed_tokens)
            for group in item.groups
            if group.our_cost or group.billed_cost or group.our_tokens or group.billed_tokens
        )
        return (_micro(item.our_cost), _micro(item.billed_cost), item.cause, tuple(groups))

    return figures(before) == figures(after)


def _micro(amount: Decimal) -> Decimal:
    return amount.quantize(_MICRO)


def latest_comparisons(
    client: LogsQueryClient, workspace_id: str, days: Sequence[datetime]
) -> dict[tuple[datetime, str], DayComparison]:
    """The latest revision of each (day, account folded), its groups attached (the bill check; the chargeback
    report, shared/reports/, for its period's bill status)."""
    rows = read_latest(
        client, workspace_id, "bill check: latest comparisons", LATEST_FILE, days[0], days[-1] + timedelta(days=1),
        LATEST_COLUMNS,
    )  # fmt: skip
    found: dict[tuple[datetime, str], DayComparison] = {}
    groups: dict[tuple[datetime, str], list[GroupFigures]] = defaultdict(list)
    for row in rows:
        key = (_as_datetime(row["Day"]), str(row["Account"]).casefold())
        if row["MeterGroup"] == ALL:
            found[key] = DayComparison(
                day=key[0], account=str(row["Account"]), status="pending" if row["Status"] == "pending" else "compared",
                currency=str(row["Currency"] or ""), our_cost=_decimal(row["OurCost"]),
                billed_cost=_decimal(row["BilledCost"]), unpriced_tokens=int(row["UnpricedTokens"] or 0),
                cause=str(row["LikelyCause"] or ""), detail=str(row["Detail"] or ""),
                revision=_as_datetime(row["Revision"], day=False),
            )  # fmt: skip
        else:
            groups[key].append(
                GroupFigures(str(row["MeterGroup"]), _decimal(row["OurCost"]), _decimal(row["BilledCost"]),
                             int(row["OurTokens"] or 0), int(row["BilledTokens"] or 0))
            )  # fmt: skip
    return {key: replace(item, groups=tuple(groups.get(key, ()))) for key, item in found.items()}


def _upload(settings: BillSettings, clients: BillClients, written: Sequence[tuple[DayComparison, str]]) -> bool:
    by_day: dict[datetime, list[str]] = defaultdict(list)
    for item, scope in written:
        by_day[item.day].extend(_records(item, scope))
    table = RevisionTable(
        "bill comparison", settings.ingestion_rule_id, settings.ingestion_stream, settings.upload_attempts,
        settings.retry_delay_seconds,
    )  # fmt: skip
    return not write_revision(clients.ingestion, table, by_day)


def _records(item: DayComparison, scope: str) -> list[str]:
    """The comparison's rows: the account's whole day ("all") and each meter group, as JSON texts."""
    rows = []
    revision = item.revision or datetime.now(UTC)
    for group in (all_group(item), *item.groups) if item.status == "compared" else (all_group(item),):
        whole = group.group == ALL
        rows.append(
            row_text(
                {
                    "TimeGenerated": revision,
                    "Day": item.day,
                    "Account": item.account,
                    "MeterGroup": group.group,
                    "Status": item.status,
                    "Revision": revision,
                    "Currency": item.currency,
                    "OurCost": float(group.our_cost),
                    "BilledCost": float(group.billed_cost),
                    "GapCost": float(group.gap_cost),
                    "GapPercent": None if group.gap_percent is None else float(round(group.gap_percent, 4)),
                    "OurTokens": group.our_tokens,
                    "BilledTokens": group.billed_tokens,
                    "ListPricePer1M": _price(group.list_price_per_1m),
                    "BilledPricePer1M": _price(group.billed_price_per_1m),
                    "UnpricedTokens": item.unpriced_tokens if whole else 0,
                    "LikelyCause": item.cause if whole else "",
                    "Detail": item.detail if whole else "",
                    "Scope": scope,
                }
            )
        )
    return rows


def _price(value: Decimal | None) -> float | None:
    return None if value is None else float(round(value, 6))


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(_MICRO) if value is not None else Decimal(0)


def _as_datetime(value: Any, *, day: bool = True) -> datetime:
    moment = as_instant(value)
    return start_of_day(moment) if day else moment
