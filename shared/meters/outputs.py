"""What the bypass check hands on: per final window and deployment, the account's tokens beside the gateway's.

The one interface alerts/ (and shared/timers.py) read the check through. Stdlib only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from shared.windows import Window

Status = Literal["compared", "pending"]
# How MeterComparison_CL states a pair: a compared pair no account published tokens for is "unpublished".
Outcome = Literal["compared", "pending", "unpublished"]


@dataclass(frozen=True)
class WindowComparison:
    """One deployment in one final cost window: the model account's meters against the gateway's metrics."""

    window: Window
    deployment: str  # as the gateway names it (or the account, when the gateway saw none of it)
    account: str  # the account's resource id ("" when no account reported the deployment)
    status: Status  # "pending": the account's metrics could not be read; nothing below the gateway's is known
    gateway_tokens: int  # APIM's Total Tokens, estimates included
    gateway_estimated_tokens: int  # the part APIM estimated (streamed calls)
    account_prompt_tokens: int = 0  # ProcessedPromptTokens
    account_generated_tokens: int = 0  # GeneratedTokens

    @property
    def account_tokens(self) -> int:
        return self.account_prompt_tokens + self.account_generated_tokens

    @property
    def gap_tokens(self) -> int:
        """Tokens the account processed that the gateway did not meter (negative: the gateway metered more)."""
        return self.account_tokens - self.gateway_tokens

    @property
    def gateway_exact_tokens(self) -> int:
        return self.gateway_tokens - self.gateway_estimated_tokens

    @property
    def outcome(self) -> Outcome:
        """"unpublished": the accounts were read, but none published tokens of this deployment in this window
        while the gateway metered some (its metrics are not out yet, or it is in no account of COST_MODEL_ACCOUNTS).
        Judged like any compared pair (the account shows nothing beyond the gateway: no bypass), told apart in
        MeterComparison_CL so a reader does not take the missing metrics for a matching figure."""
        if self.status == "pending":
            return "pending"
        return "unpublished" if not self.account and self.gateway_tokens else "compared"


@dataclass(frozen=True)
class Allowance:
    """Tokens the gateway may miss in a window before it is a bypass: a share of its exact tokens (plain calls,
    metered from the response's usage) plus a share of its estimated ones (streamed calls): the `bypass` rule's
    tolerance_percent and stream_tolerance_percent (shared/alerts/rules.py)."""

    exact_percent: Decimal
    estimated_percent: Decimal

    def tokens(self, comparison: WindowComparison) -> Decimal:
        exact = Decimal(comparison.gateway_exact_tokens) * self.exact_percent
        return (exact + Decimal(comparison.gateway_estimated_tokens) * self.estimated_percent) / 100

    @staticmethod
    def strictest(allowances: list[Allowance]) -> Allowance | None:
        """The smallest of each share (several `bypass` rules: the one that fires first); None for none."""
        if not allowances:
            return None
        return Allowance(min(a.exact_percent for a in allowances), min(a.estimated_percent for a in allowances))


@dataclass
class BypassReport:
    """What one bypass check found; `enabled` False when no accounts are configured."""

    enabled: bool
    windows: list[Window] = field(default_factory=list)  # the costs run's final windows, compared or not
    comparisons: list[WindowComparison] = field(default_factory=list)
    # Why comparisons are pending, one line per account that could not be read ("" when none).
    pending_reasons: list[str] = field(default_factory=list)
    reads: int = 0  # metrics requests made
    retries: int = 0
    duration_seconds: float = 0.0
    rows_written: int = 0  # MeterComparison_CL rows written this run (new revisions)
    table_problem: str = ""  # why the comparisons could not be read back or written ("": they were)

    @property
    def pending(self) -> bool:
        return any(item.status == "pending" for item in self.comparisons) or bool(self.pending_reasons)

    def line(self) -> str:
        if not self.enabled:
            return "bypass check: off (COST_MODEL_ACCOUNTS is empty: no account metrics to compare)"
        statuses = Counter(item.status for item in self.comparisons)
        windows = sorted(self.windows or {item.window for item in self.comparisons})
        span = "no final windows"
        if windows:
            plural = "s" if len(windows) != 1 else ""
            first, last = windows[0].start, windows[-1].end
            span = f"{len(windows)} final window{plural} {first:%Y-%m-%d %H:%M}–{last:%Y-%m-%d %H:%M} UTC"
        compared = [item for item in self.comparisons if item.status == "compared"]
        largest = max(compared, key=lambda item: item.gap_tokens, default=None)
        worst = (
            f"; largest gap {largest.gap_tokens} tokens ({largest.deployment}, {largest.window.start:%H:%M} UTC: "
            f"account {largest.account_tokens}, gateway {largest.gateway_tokens})"
            if largest is not None and largest.gap_tokens > 0
            else ""
        )
        pending = (
            f"; PENDING {statuses['pending']} (not compared, retried next run): " + "; ".join(self.pending_reasons)
            if self.pending
            else ""
        )
        table = (
            f"; MeterComparison_CL NOT WRITTEN (written by the next run): {self.table_problem}"
            if self.table_problem
            else f"; {self.rows_written} comparison rows written"
        )
        return (
            f"bypass check: {span}, {len(self.comparisons)} window x deployment pairs, {statuses['compared']} compared"
            f"{worst}{pending}; {self.reads} metrics reads ({self.retries} retries){table}; "
            f"{self.duration_seconds:.1f}s"
        )
