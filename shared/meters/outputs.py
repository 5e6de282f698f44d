"""What the bypass check hands on: per final window and deployment, the account's tokens beside the gateway's.

The one interface alerts/ (and shared/timers.py) read the check through. Stdlib only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from shared.windows import Window

Status = Literal["compared", "pending"]


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
        return (
            f"bypass check: {span}, {len(self.comparisons)} window x deployment pairs, {statuses['compared']} compared"
            f"{worst}{pending}; {self.reads} metrics reads ({self.retries} retries); {self.duration_seconds:.1f}s"
        )
