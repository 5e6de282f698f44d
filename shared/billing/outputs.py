"""What the bill check hands on: per model account and settled UTC day, our cost beside the billed cost.

The one interface alerts/ (and shared/timers.py) read the bill check through. Stdlib only besides shared/money.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from shared.money import format_money

Status = Literal["compared", "pending"]
# The meter groups a day is compared in, as Azure's meters bill them ("all": the account's whole day).
GROUPS = ("input", "cached_input", "output", "provisioned", "other")
ALL = "all"
# The likely causes a comparison can name (LikelyCause in BillReconciliation_CL).
UNPRICED = "unpriced tokens"
UNMETERED = "tokens the gateway did not meter (bypass or lost metrics)"
CACHE = "cache tokens billed differently"
PRICE = "discount/price differs"
NONE = ""


class _Gap:
    """The bill against our cost, for a day or one of its meter groups."""

    our_cost: Decimal
    billed_cost: Decimal

    @property
    def gap_cost(self) -> Decimal:
        return self.billed_cost - self.our_cost

    @property
    def gap_percent(self) -> Decimal | None:
        """The bill over our cost, in percent of ours (None when we have no cost)."""
        return self.gap_cost * 100 / self.our_cost if self.our_cost else None


@dataclass(frozen=True)
class GroupFigures(_Gap):
    """One meter group of one account and day: our figures and the bill's."""

    group: str
    our_cost: Decimal
    billed_cost: Decimal
    our_tokens: int
    billed_tokens: int  # the billed quantity in tokens (0 where the meter bills no tokens: PTU-hours)


    @property
    def list_price_per_1m(self) -> Decimal | None:
        """What our price table charged per million tokens of this group (None without tokens)."""
        return self.our_cost * 1_000_000 / self.our_tokens if self.our_tokens else None

    @property
    def billed_price_per_1m(self) -> Decimal | None:
        return self.billed_cost * 1_000_000 / self.billed_tokens if self.billed_tokens else None


@dataclass(frozen=True)
class DayComparison(_Gap):
    """One model account's UTC day: our cost (the summaries) against Azure's actual cost (Cost Management)."""

    day: datetime
    account: str  # the account's resource id
    status: Status  # "pending": Cost Management could not be read; nothing about the bill is known
    currency: str
    our_cost: Decimal
    billed_cost: Decimal
    unpriced_tokens: int  # our tokens with no price that day (in no cost)
    cause: str  # one of the causes above; NONE when the bill is not read or matches
    detail: str  # the evidence in words, for the email and the workbook
    groups: tuple[GroupFigures, ...] = ()
    revision: datetime | None = None  # of the row that holds it in BillReconciliation_CL
    restated: bool = False  # this check wrote a new revision of a day it had compared before

    @property
    def account_name(self) -> str:
        return self.account.rstrip("/").rpartition("/")[2]



@dataclass
class BillReport:
    """What one bill check found; `enabled` False when no accounts are configured. `queried` False when Cost
    Management was not due this run: the comparisons are then the latest ones written (the table)."""

    enabled: bool
    queried: bool = False
    days: list[datetime] = field(default_factory=list)  # the settled days looked at
    comparisons: list[DayComparison] = field(default_factory=list)
    pending_reasons: list[str] = field(default_factory=list)  # why Cost Management could not be read
    revisions_written: int = 0
    requests: int = 0  # Cost Management requests made
    retries: int = 0
    next_check: datetime | None = None  # when Cost Management is due again (not queried this run)
    duration_seconds: float = 0.0

    @property
    def pending(self) -> bool:
        return bool(self.pending_reasons) or any(item.status == "pending" for item in self.comparisons)

    def line(self) -> str:
        if not self.enabled:
            return "bill check: off (COST_MODEL_ACCOUNTS is empty: no model account to check against the bill)"
        span = "no settled days"
        if self.days:
            first, last = min(self.days), max(self.days)
            span = f"settled days {first:%Y-%m-%d}–{last:%Y-%m-%d} UTC"
            if first == last:
                span = f"settled day {first:%Y-%m-%d} UTC"
        statuses = Counter(item.status for item in self.comparisons)
        compared = [item for item in self.comparisons if item.status == "compared" and item.gap_percent is not None]
        worst = max(compared, key=lambda item: abs(item.gap_cost), default=None)
        largest = (
            f"; largest gap {format_money(worst.gap_cost, worst.currency)} ({worst.gap_percent:+.1f}%, "
            f"{worst.account_name} {worst.day:%Y-%m-%d}: billed {format_money(worst.billed_cost, worst.currency)}, "
            f"ours {format_money(worst.our_cost, worst.currency)}" + (f"; likely {worst.cause}" if worst.cause else "")
            + ")"
            if worst is not None and worst.gap_cost
            else ""
        )
        source = (
            f"{self.requests} Cost Management requests ({self.retries} retries), {self.revisions_written} revisions "
            "written"
            if self.queried
            else "Cost Management not due" + (f" until {self.next_check:%Y-%m-%d %H:%M} UTC" if self.next_check else "")
            + " (latest comparisons shown)"
        )
        pending = (
            f"; PENDING {statuses['pending'] or len(self.days)} (not compared, retried next run): "
            + "; ".join(self.pending_reasons)
            if self.pending_reasons
            else ""
        )
        return (
            f"bill check: {span}, {len(self.comparisons)} account x day comparisons, {statuses['compared']} compared"
            f"{largest}{pending}; {source}; {self.duration_seconds:.1f}s"
        )
