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

# SubscriptionId, UserId and ApiId of a summary row that no caller made: a provisioned deployment's PTU cost in a
# window nobody called it (CostBasis "ptu_unused", shared/costs/ptu.py). It counts in every total, and is no
# subscription, user or API of its own: alert rules per subscription (user, API) leave it out.
NO_CONSUMER = ""


@dataclass(frozen=True)
class SubscriptionSpend:
    """Day- and month-to-date spend of one subscription in one currency, UTC days and months."""

    subscription_id: str  # NO_CONSUMER: unused provisioned capacity
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
    # "uploaded", "unchanged" (same content as the last upload), "empty", "failed", "held" (a closed
    # month's window whose prices alone changed: not uploaded, shared/costs/recompute.py), "changed" (a
    # dry-run reprice would upload it)
    status: str


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
    # The part of cost_by_currency that is provisioned deployments' PTU-hour cost (shared/costs/ptu.py), all of
    # it and the part nobody called (CostBasis ptu_allocated + ptu_unused, and ptu_unused).
    provisioned_cost_by_currency: dict[str, Decimal] = field(default_factory=dict)
    unused_provisioned_cost_by_currency: dict[str, Decimal] = field(default_factory=dict)
    unpriced_tokens: int = 0
    # Each as its price key, a provisioned one with the reason: "gpt-4o (..., ProvisionedManaged): no PTU-hour price".
    unpriced_models: tuple[str, ...] = ()
    # Prompt tokens of rows whose cache discount was not metered (priced at the input price).
    cache_unmetered_prompt_tokens: int = 0
    # Up to this much more per currency if the priced prompt tokens had been cache writes, which newer models
    # bill above input and APIM does not meter (frame.PricedUsage.cache_write_exposure): a bound, not a cost.
    cache_write_exposure_by_currency: dict[str, Decimal] = field(default_factory=dict)
    spend: list[SubscriptionSpend] = field(default_factory=list)
    # Per window x deployment, every window the run computed (empty windows have none).
    deployment_tokens: list[DeploymentTokens] = field(default_factory=list)
    final_through: datetime | None = None
    queries: int = 0
    query_splits: int = 0
    retries: int = 0
    # Uploaded windows whose prices differ from their last upload's (another price version, or models
    # priced now that were not): the run logs which in a line of its own.
    restated_windows: int = 0
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
                f"{format_money(amount, currency)} ("
                + _estimated_part(self.estimated_cost_by_currency.get(currency, Decimal(0)), amount, currency)
                + self._provisioned_part(currency)
                + ")"
                for currency, amount in sorted(self.cost_by_currency.items())
            )
            or "0"
        )
        # A provisioned deployment with no price is named even when nobody called it: it bills by the hour.
        unpriced = f"{self.unpriced_tokens} unpriced tokens" + (
            f" ({', '.join(self.unpriced_models)})" if self.unpriced_models else ""
        )
        by_status = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        through = f"{self.final_through:%Y-%m-%d %H:%M} UTC" if self.final_through else "none yet"
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.step_seconds.items())
        return (
            f"costs run: {len(self.windows)} windows {span} ({final} final, {len(self.windows) - final} "
            f"provisional; {by_status}); {self.rows_uploaded} rows uploaded (revision "
            f"{self.revision:%Y-%m-%dT%H:%M:%S.%fZ}, prices {self.price_version}); {self.restated_windows} windows "
            f"restated; tokens {tokens}; "
            f"cost {costs}; {unpriced}; {self.cache_unmetered_prompt_tokens} prompt tokens without a metered cache "
            f"discount (priced at input); {self._cache_write_part()}"
            f"{self.queries} queries ({self.query_splits} splits, "
            f"{self.retries} retries); final through {through}; {self.duration_seconds:.1f}s"
            + (f" ({steps})" if steps else "")
        )

    def _cache_write_part(self) -> str:
        """"cache writes not metered: up to 0.42 USD more; ": omitted when no priced model bills cache writes."""
        amounts = [
            format_money(amount, currency) for currency, amount in sorted(self.cache_write_exposure_by_currency.items())
        ]
        return f"cache writes not metered: up to {', '.join(amounts)} more; " if amounts else ""

    def _provisioned_part(self, currency: str) -> str:
        """", 8.00 USD on PTU-hours, 2.00 USD of it unused": omitted when the run priced no PTU-hours."""
        if currency not in self.provisioned_cost_by_currency:
            return ""
        unused = self.unused_provisioned_cost_by_currency.get(currency, Decimal(0))
        return (
            f", {format_money(self.provisioned_cost_by_currency[currency], currency)} on PTU-hours, "
            f"{format_money(unused, currency)} of it unused"
        )


def _estimated_part(estimated: Decimal, total: Decimal, currency: str) -> str:
    """"X USD, Y% on estimated tokens": how much of a cost rests on APIM's estimates."""
    share = estimated * 100 / total if total else Decimal(0)
    return f"{format_money(estimated, currency)}, {share:.1f}% on estimated tokens"
