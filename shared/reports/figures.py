"""A chargeback report's figures: one period's cost per team (APIM subscription), user, model and deployment type,
beside the period before it, the callers that moved most, the estimated and unpriced shares and the bill check.

One query (shared/logs/kql/report-cost-by-caller.kql) reads both periods from the cost summaries' latest complete
revision, summed as integer micro-units per caller (subscription x user x model x deployment type x currency): every
figure here is a sum of those integers, so a period's total is its windows' total to the micro-unit. A period is
final once the costs progress watermark passed its end and none of its rows is of a window not final yet; before
that it is provisional (the run says so, and sends the final report once it is). The bill check's status comes from
its latest comparisons (BillReconciliation_CL, shared/billing/run.latest_comparisons): days compared, pending and not
settled yet.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from shared.errors import AppError
from shared.logs.kql import load_query
from shared.logs.query import query_table
from shared.reports.plan import Period

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

log = logging.getLogger(__name__)

QUERY_FILE = "report-cost-by-caller.kql"
QUERY_COLUMNS = (
    "Current", "SubscriptionId", "UserId", "Model", "DeploymentType", "Currency", "CostMicros", "EstimatedCostMicros",
    "TotalTokens", "UnpricedTokens", "Requests", "NotFinalRows", "Windows",
)  # fmt: skip
SERVER_TIMEOUT_SECONDS = 120  # two months of callers; bounded within the costs timer as the FOCUS export's
Status = Literal["provisional", "final"]
NO_SUBSCRIPTION = "(provisioned, not called)"  # a ptu_unused row: the PTU-hours nobody called, of no team
NO_VALUE = "(none)"


@dataclass(frozen=True, order=True)
class CallerKey:
    subscription: str
    user: str
    model: str
    deployment_type: str
    currency: str  # "" for unpriced usage (no cost)

    @property
    def label(self) -> str:
        return f"{self.subscription} / {self.user} / {self.model}"


@dataclass
class Amounts:
    cost_micros: int = 0
    previous_micros: int = 0
    estimated_micros: int = 0
    tokens: int = 0
    unpriced_tokens: int = 0
    requests: int = 0

    def add(self, other: Amounts) -> None:
        for name in ("cost_micros", "previous_micros", "estimated_micros", "tokens", "unpriced_tokens", "requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def change_micros(self) -> int:
        return self.cost_micros - self.previous_micros

    @property
    def change_percent(self) -> Decimal | None:
        """The change in percent of the previous period's cost; None when there was none."""
        if not self.previous_micros:
            return None
        return round(Decimal(self.change_micros) * 100 / Decimal(self.previous_micros), 1)


@dataclass(frozen=True)
class Line:
    member: str
    currency: str
    amounts: Amounts


@dataclass(frozen=True)
class BillStatus:
    days: int  # in the period
    compared: int  # days with a comparison (an account's day counts once per account)
    pending: int  # days Cost Management could not be read for yet
    our_micros_by_currency: Mapping[str, int] = field(default_factory=dict)  # of the compared days
    billed_micros_by_currency: Mapping[str, int] = field(default_factory=dict)
    problem: str = ""  # the comparisons could not be read

    @property
    def not_settled(self) -> int:
        return max(0, self.days - self.compared - self.pending)


@dataclass(frozen=True)
class ReportFigures:
    period: Period
    status: Status
    callers: Mapping[CallerKey, Amounts]  # both periods' figures per caller
    windows: int  # distinct windows of the period with rows
    bill: BillStatus

    def totals(self) -> list[Line]:
        """Per currency ("" unpriced usage: tokens, no cost)."""
        return self.breakdown(lambda key: "all")

    def breakdown(self, member: Callable[[CallerKey], str]) -> list[Line]:
        """The callers grouped by `member`, per currency, the largest cost first."""
        grouped: dict[tuple[str, str], Amounts] = defaultdict(Amounts)
        for key, amounts in self.callers.items():
            grouped[(member(key), key.currency)].add(amounts)
        lines = [Line(name, currency, amounts) for (name, currency), amounts in grouped.items()]
        return sorted(lines, key=lambda line: (line.currency == "", -line.amounts.cost_micros, line.member))

    def movers(self, count: int) -> list[Line]:
        """The `count` callers whose cost changed most (either way), largest change first; unchanged ones are not."""
        moved = [(key, amounts) for key, amounts in self.callers.items() if amounts.change_micros]
        lines = [Line(key.label, key.currency, amounts) for key, amounts in moved]
        return sorted(lines, key=lambda line: (-abs(line.amounts.change_micros), line.member))[:count]

    def estimated_share(self, currency: str) -> Decimal | None:
        total = next((line.amounts for line in self.totals() if line.currency == currency), None)
        if total is None or not total.cost_micros:
            return None
        return round(Decimal(total.estimated_micros) * 100 / Decimal(total.cost_micros), 1)

    def unpriced_share(self) -> Decimal | None:
        """Unpriced tokens in percent of the period's tokens (their cost is unknown, not 0)."""
        tokens = sum(amounts.tokens for key, amounts in self.callers.items())
        unpriced = sum(amounts.unpriced_tokens for amounts in self.callers.values())
        return round(Decimal(unpriced) * 100 / Decimal(tokens), 1) if tokens else None


def _subscription(key: CallerKey) -> str:
    return key.subscription


def _user(key: CallerKey) -> str:
    return key.user


def _model(key: CallerKey) -> str:
    return key.model


def _deployment_type(key: CallerKey) -> str:
    return key.deployment_type


# The breakdowns, in the report's order: their title and what of a caller they group by.
DIMENSIONS: tuple[tuple[str, Callable[[CallerKey], str]], ...] = (
    ("Team (APIM subscription)", _subscription),
    ("User", _user),
    ("Model", _model),
    ("Deployment type", _deployment_type),
)


def read_figures(
    client: LogsQueryClient,
    workspace_id: str,
    period: Period,
    final_through: datetime | None,
    *,
    bill: Callable[[Sequence[datetime]], BillStatus] | None = None,
) -> ReportFigures | None:
    """The period's figures, or None when it has no cost rows at all (nothing to charge back). Raises QueryError."""
    previous = period.previous()
    text = load_query(
        QUERY_FILE, {"previous_start": previous.start, "current_start": period.start, "end_time": period.end}
    )
    # Summaries carry TimeGenerated = their revision time, after their window: ask up to now.
    rows = query_table(
        client, workspace_id, f"chargeback report {period.key}: cost per caller", text,
        (previous.start, max(period.end, datetime.now(UTC))), QUERY_COLUMNS,
        server_timeout_seconds=SERVER_TIMEOUT_SECONDS,
    )  # fmt: skip
    found = [dict(zip(QUERY_COLUMNS, row, strict=True)) for row in rows]
    current = [row for row in found if _true(row["Current"])]
    if not current:
        return None
    callers: dict[CallerKey, Amounts] = defaultdict(Amounts)
    for row in found:
        key = CallerKey(
            str(row["SubscriptionId"] or "") or NO_SUBSCRIPTION, str(row["UserId"] or "") or NO_VALUE,
            str(row["Model"] or "") or NO_VALUE, str(row["DeploymentType"] or "") or "(unknown)",
            str(row["Currency"] or ""),
        )  # fmt: skip
        cost = int(row["CostMicros"] or 0)
        if _true(row["Current"]):
            callers[key].add(
                Amounts(cost, 0, int(row["EstimatedCostMicros"] or 0), int(row["TotalTokens"] or 0),
                        int(row["UnpricedTokens"] or 0), int(row["Requests"] or 0))
            )  # fmt: skip
        else:
            callers[key].add(Amounts(previous_micros=cost))
    final = (
        final_through is not None
        and final_through >= period.end
        and not any(int(row["NotFinalRows"] or 0) for row in current)
    )
    days = [period.start + timedelta(days=offset) for offset in range((period.end - period.start).days)]
    return ReportFigures(
        period=period,
        status="final" if final else "provisional",
        callers=dict(callers),
        windows=max(int(row["Windows"] or 0) for row in current),
        bill=(bill or (lambda _days: BillStatus(len(_days), 0, 0, problem="no bill check")))(days),
    )


def bill_status(client: LogsQueryClient, workspace_id: str, days: Sequence[datetime]) -> BillStatus:
    """The bill check's latest comparisons of the days; a read that fails is a status too (never the report's end)."""
    from shared.billing.run import latest_comparisons
    from shared.money import to_micros

    try:
        comparisons = latest_comparisons(client, workspace_id, days)
    except AppError as error:
        log.warning("chargeback report: the bill check's comparisons could not be read: %s", error)
        return BillStatus(len(days), 0, 0, problem=str(error))
    our: dict[str, int] = defaultdict(int)
    billed: dict[str, int] = defaultdict(int)
    for item in comparisons.values():
        if item.status == "compared" and item.currency:  # a day with neither our cost nor a bill has no currency
            our[item.currency] += to_micros(item.our_cost)
            billed[item.currency] += to_micros(item.billed_cost)
    # One comparison per account and day: a day is compared when every account's is, pending when any is pending.
    pending_days = {day for (day, _), item in comparisons.items() if item.status == "pending"}
    compared_days = {day for (day, _), item in comparisons.items()} - pending_days
    return BillStatus(len(days), len(compared_days), len(pending_days), dict(our), dict(billed))


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
