"""What evaluating a rule yields: one Finding per rule x scope member, firing or not.

Stdlib only, shared by the evaluation (pandas), the state store and the digest (neither needs pandas).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from shared.alerts.rules import Rule
from shared.money import display_money, is_currency

Severity = Literal["critical", "warning", "ok"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "resolved": 2, "ok": 3}


def format_value(value: Decimal, unit: str) -> str:
    if is_currency(unit):
        return display_money(value, unit)
    if unit == "%":
        return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_EVEN)}%"
    return f"{int(value):,} {unit}"


@dataclass(frozen=True)
class Contributor:
    dimension: str  # "model", "user", "subscription"
    name: str  # client-controlled for users and subscriptions: escape before showing
    value: Decimal
    share_percent: Decimal


@dataclass(frozen=True)
class ChartBar:
    label: str  # "11-27" or "10:00"
    value: Decimal


@dataclass(frozen=True)
class Finding:
    rule: Rule
    member: str  # the scope member ("" for all traffic or a fixed scope)
    scope_label: str  # "subscription team-a", "all traffic", "model gpt-4o"
    period_key: str  # what a notification is once per: "2026-11-27", "2026-11", "2026-11-27T10"
    window_label: str  # "today (2026-11-27 UTC)"
    level: str  # "" when not firing; "warning", "critical", "80%", "forecast", ...
    rank: int  # higher is worse; a higher rank in the same period notifies again
    severity: Severity
    value: Decimal
    threshold: Decimal | None
    unit: str  # a currency code, "tokens", "requests" or "%"
    summary: str  # "$412.50 today, 103% of $400.00 budget"
    detail: str = ""
    contributors: tuple[Contributor, ...] = ()
    chart: tuple[ChartBar, ...] = ()
    chart_title: str = ""
    # Cost and token findings: the share of the value that rests on tokens APIM estimated (streamed
    # calls); None where it does not apply or is unknown.
    estimated_percent: Decimal | None = None
    # Could not be judged this run (a bypass comparison whose account metrics were not read): its alert
    # state stays as it is, neither fired nor resolved (shared/alerts/run.py holds it).
    pending: bool = False

    @property
    def estimated_note(self) -> str:
        """The sentence the email shows about estimates, or ""."""
        if self.estimated_percent is None:
            return ""
        return (
            f"{self.estimated_percent}% of this rests on estimated tokens: API Management estimates the token "
            "counts of streamed calls."
        )

    @property
    def firing(self) -> bool:
        return bool(self.level)

    @property
    def key(self) -> str:
        """The alert's identity across runs and periods: rule x scope member."""
        return f"{self.rule.name}|{self.member}"


@dataclass(frozen=True)
class Notification:
    """One line of a digest: something fired, escalated or resolved."""

    kind: Literal["fired", "escalated", "resolved"]
    key: str
    rule_name: str
    scope_label: str
    period_key: str
    level: str
    severity: Severity | Literal["resolved"]
    subject: str  # the subject-line fragment: "subscription team-a: $412.50 today, 103% of $400 budget"
    # The current evaluation of the key; None when its scope has no data any more, or for a
    # notification pending from an earlier period (then the subject says what it was).
    finding: Finding | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (SEVERITY_ORDER[self.severity], self.subject)

    @property
    def ref(self) -> str:
        return notification_ref(self.key, self.period_key, self.level, self.kind)


def notification_ref(key: str, period_key: str, level: str, kind: str) -> str:
    """A short id of one notification: rule x scope member x period x level reached (fired and escalated alike),
    or its resolve. Every email carrying it shows it, so a reader can quote it and a check can count the emails
    each notification reached (bench/soak: exactly one). A hash, so hostile scope values (even undecodable bytes)
    never reach it."""
    reached = "resolved" if kind == "resolved" else level
    return hashlib.sha256("\x1f".join((key, period_key, reached)).encode("utf-8", "surrogatepass")).hexdigest()[:16]
