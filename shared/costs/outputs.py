"""What a costs run hands on: the one interface alerts/ (and shared/timers.py) read costs through.

CostRunSummary is what a run did, for its log line and the caller; SubscriptionSpend is the day-
and month-to-date spend per subscription the alert rules use (shared/costs/totals.py computes it,
shared/alerts/evaluate.py reads it). Stdlib only besides shared/windows.py and the money helpers,
so importing it drags in neither pandas nor the Azure SDKs nor the rest of the costs run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from shared.money import format_money
from shared.windows import Window


@dataclass(frozen=True)
class SubscriptionSpend:
    """Day- and month-to-date spend of one subscription in one currency, UTC days and months."""

    subscription_id: str
    currency: str  # "" when the tokens are all of unpriced models (no currency to add them in)
    day_start: datetime
    month_start: datetime
    day_cost: Decimal
    month_cost: Decimal
    day_tokens: int
    month_tokens: int
    day_unpriced_tokens: int
    month_unpriced_tokens: int


@dataclass(frozen=True)
class WindowOutcome:
    """What a run did with one planned window."""

    window: Window
    final: bool
    rows: int
    status: str  # "uploaded", "unchanged" (same content as the last upload), "empty", "failed"


@dataclass(frozen=True)
class DeploymentTokens:
    """What the gateway metered for one deployment in one window of the run (the bypass check's gateway side)."""

    window_start: datetime
    deployment: str
    total_tokens: int
    estimated_tokens: int  # the part APIM estimated (streamed calls)


@dataclass
class CostRunSummary:
    """What a costs run did, and the spend to date it computed for the alert rules."""

    started_at: datetime
    revision: datetime
    price_version: str
    windows: list[WindowOutcome] = field(default_factory=list)
    rows_uploaded: int = 0
    tokens: dict[str, int] = field(default_factory=dict)  # summed over every window computed
    cost_by_currency: dict[str, Decimal] = field(default_factory=dict)  # of the summary rows
    # The part of cost_by_currency that rests on tokens APIM estimated (streamed calls).
    estimated_cost_by_currency: dict[str, Decimal] = field(default_factory=dict)
    unpriced_tokens: int = 0
    unpriced_models: tuple[str, ...] = ()
    # Prompt tokens of rows whose cache discount was not metered (priced at the input price).
    cache_unmetered_prompt_tokens: int = 0
    spend: list[SubscriptionSpend] = field(default_factory=list)
    # Per window x deployment, every window the run computed (empty windows have none).
    deployment_tokens: list[DeploymentTokens] = field(default_factory=list)
    final_through: datetime | None = None
    queries: int = 0
    query_splits: int = 0
    retries: int = 0
    duration_seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)  # query, pricing, upload, totals

    @property
    def failed_windows(self) -> list[Window]:
        return [outcome.window for outcome in self.windows if outcome.status == "failed"]

    def line(self) -> str:
        statuses = Counter(outcome.status for outcome in self.windows)
        final = sum(outcome.final for outcome in self.windows)
        span = (
            f"{self.windows[0].window.start:%Y-%m-%d %H:%M}–{self.windows[-1].window.end:%Y-%m-%d %H:%M} UTC"
            if self.windows
            else "no windows"
        )
        tokens = " ".join(f"{name}={value}" for name, value in self.tokens.items())
        costs = (
            ", ".join(
                format_money(amount, currency)
                + _estimated_part(self.estimated_cost_by_currency.get(currency, Decimal(0)), amount, currency)
                for currency, amount in sorted(self.cost_by_currency.items())
            )
            or "0"
        )
        unpriced = (
            f"{self.unpriced_tokens} unpriced tokens ({', '.join(self.unpriced_models)})"
            if self.unpriced_tokens
            else "0 unpriced tokens"
        )
        by_status = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        through = f"{self.final_through:%Y-%m-%d %H:%M} UTC" if self.final_through else "none yet"
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.step_seconds.items())
        return (
            f"costs run: {len(self.windows)} windows {span} ({final} final, {len(self.windows) - final} "
            f"provisional; {by_status}); {self.rows_uploaded} rows uploaded (revision "
            f"{self.revision:%Y-%m-%dT%H:%M:%S.%fZ}, prices {self.price_version}); tokens {tokens}; "
            f"cost {costs}; {unpriced}; {self.cache_unmetered_prompt_tokens} prompt tokens without a metered cache "
            f"discount (priced at input); {self.queries} queries ({self.query_splits} splits, "
            f"{self.retries} retries); final through {through}; {self.duration_seconds:.1f}s"
            + (f" ({steps})" if steps else "")
        )


def _estimated_part(estimated: Decimal, total: Decimal, currency: str) -> str:
    """" (X USD, Y% on estimated tokens)": how much of a cost rests on APIM's estimates."""
    share = estimated * 100 / total if total else Decimal(0)
    return f" ({format_money(estimated, currency)}, {share:.1f}% on estimated tokens)"
