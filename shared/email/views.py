"""What a digest email shows, as plain values: the hand-over from alerts/ (which decides what to say) to
render.py (which lays it out as HTML, text and PNG).

No findings or rules here, only strings, numbers and chart bars, so email/ needs nothing from alerts/.
Text fields are plain text, never markup: the HTML template escapes every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class BarView:
    label: str  # "11-27" or "10:00"
    value: Decimal


@dataclass(frozen=True)
class ChartView:
    """The inline chart of one alert: the PNG's bars, and the text shown around it."""

    title: str
    bars: tuple[BarView, ...]  # oldest first, at least one; the last is highlighted
    reference: Decimal | None  # a dashed line (the threshold) where a bar measures the same thing
    unit: str = ""  # of the bars: a currency code, "tokens" or "requests" (the y axis)
    x_label: str = ""  # what a bar is: "hour (UTC)", "day (UTC)"
    reference_label: str = "threshold"  # the dashed line's name on the chart ("budget", "threshold")

    @property
    def first_label(self) -> str:
        return self.bars[0].label

    @property
    def last_label(self) -> str:
        return self.bars[-1].label


@dataclass(frozen=True)
class ContributorView:
    dimension: str
    name: str
    value: str
    share_percent: str


@dataclass(frozen=True)
class ItemView:
    """One alert of the digest."""

    color: str
    badge: str
    kind_label: str
    subject: str  # the whole line, as the text part shows it; the HTML shows it as scope and summary
    scope: str
    summary: str
    sentences: tuple[str, ...]  # the finding's detail and its estimates note, as far as present
    # False when the alert has no current figures (its scope has no data any more, or it is pending
    # from an earlier period): the HTML then shows window, value and threshold as placeholders and
    # the text part leaves those lines out.
    has_figures: bool
    window: str
    value: str
    threshold: str
    chart: ChartView | None
    contributors: tuple[ContributorView, ...]
    rule: str
    rule_description: str
    # A line after this item for the alerts like it the digest leaves out ("and 4,980 more users at critical
    # under ...: $124,500.00 together"); "" for none.
    more: str = ""
    # The notification's short id (shared/alerts/findings.py notification_ref); "" for none.
    ref: str = ""


@dataclass(frozen=True)
class DigestView:
    """One email: its items in the order shown (the most severe first)."""

    subject: str  # already header-safe: it is also the page title
    counts: str  # "1 critical, 2 warning"
    generated_at: str  # "2026-11-27 10:20 UTC"
    items: tuple[ItemView, ...]
    rules_file: str  # where a reader changes or silences a rule
    dashboard_url: str  # "" for none
