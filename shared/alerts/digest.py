"""What one digest email says: notifications → a DigestView (shared/email/views.py) → shared/email/render.py.

Everything that knows findings, notifications and rules is here: the subject line, the counts, each
alert's badge, colour, kind, value and threshold text, its contributors and chart bars. email/ then
lays the view out as HTML, text and PNG without knowing what an alert is, so email/ needs nothing
from alerts/ (alerts/run.py is its only caller).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from shared.alerts.findings import SEVERITY_ORDER, Finding, Notification, format_value
from shared.email.render import Digest, header_safe, render
from shared.email.views import BarView, ChartView, ContributorView, DigestView, ItemView

COLORS = {"critical": "#b91c1c", "warning": "#b45309", "resolved": "#15803d", "ok": "#15803d"}
KIND_LABELS = {
    "threshold": "threshold",
    "budget": "budget",
    "spike": "spike against the usual",
    "unpriced": "unpriced usage",
    "no_metrics": "pipeline health: token metrics missing",
    "reconciliation": "pipeline health: reconciliation",
    "bypass": "traffic that bypassed the gateway",
    "bill_gap": "our cost against the bill (Cost Management)",
}
# A digest shows at most this many alerts of one rule and level (the largest first) and says how many more there
# are in one line: 5,000 users over a threshold at once make a readable email, not a 5,000-item one. Every one of
# them is in the alert state all the same (shared/alerts/run.py marks the whole digest sent).
TOP_PER_RULE_AND_LEVEL = 20


def render_digest(
    notifications: Sequence[Notification], *, rules_file: str, generated_at: datetime, dashboard_url: str = ""
) -> Digest:
    view = digest_view(notifications, rules_file=rules_file, generated_at=generated_at, dashboard_url=dashboard_url)
    return render(view)


def digest_view(
    notifications: Sequence[Notification], *, rules_file: str, generated_at: datetime, dashboard_url: str = ""
) -> DigestView:
    items: list[ItemView] = []
    shown: list[Notification] = []
    for group in _groups(notifications):
        top, rest = group[:TOP_PER_RULE_AND_LEVEL], group[TOP_PER_RULE_AND_LEVEL:]
        views = [_item_view(notification) for notification in top]
        if rest:
            views[-1] = replace(views[-1], more=_more_line(group, rest))
        items += views
        shown += top
    return DigestView(
        subject=subject_line(shown, len(notifications)),
        counts=_counts(notifications),
        generated_at=f"{generated_at:%Y-%m-%d %H:%M} UTC",
        items=tuple(items),
        rules_file=rules_file,
        dashboard_url=dashboard_url,
    )


def _groups(notifications: Sequence[Notification]) -> list[list[Notification]]:
    """The notifications by rule and level, the most severe groups first (then by rule, the higher level first).
    A group over the cap is ordered by value, the largest first, so its top ones are shown; others by subject."""
    groups: dict[tuple[int, str, str], list[Notification]] = {}
    for notification in sorted(notifications, key=lambda n: n.order):
        key = (SEVERITY_ORDER[notification.severity], notification.rule_name, notification.level)
        groups.setdefault(key, []).append(notification)
    for group in groups.values():
        if len(group) > TOP_PER_RULE_AND_LEVEL:
            group.sort(key=_value_key)
    return [groups[key] for key in sorted(groups, key=lambda key: (key[0], key[1], -_rank(groups[key]), key[2]))]


def _value_key(notification: Notification) -> tuple[bool, Decimal]:
    finding = notification.finding
    return (finding is None, -(finding.value if finding is not None else Decimal(0)))


def _rank(group: Sequence[Notification]) -> int:
    return max((n.finding.rank for n in group if n.finding is not None), default=0)


def _more_line(group: Sequence[Notification], rest: Sequence[Notification]) -> str:
    """The one line for a group's alerts past the cap: how many, and their value together where one adds up."""
    first = rest[0]
    rule = next((n.finding.rule for n in group if n.finding is not None), None)  # a cleared scope has no finding
    noun = f"{rule.scope.dimension}s" if rule is not None and rule.scope.each else "alerts"
    where = "resolved" if first.severity == "resolved" else f"at {first.level or first.severity}"
    line = f"and {len(rest):,} more {noun} {where} under {first.rule_name}"
    findings = [n.finding for n in rest]
    units = {finding.unit for finding in findings if finding is not None}
    if first.severity != "resolved" and None not in findings and len(units) == 1 and units != {"%"}:
        total = sum((finding.value for finding in findings if finding is not None), Decimal(0))
        line += f": {format_value(total, units.pop())} together"
    return line


def subject_line(notifications: Sequence[Notification], total: int | None = None) -> str:
    """The subject: the first notification as the digest orders them, and how many more (of `total`, default all
    given)."""
    first = notifications[0]
    count = len(notifications) if total is None else total
    tag = "RESOLVED" if first.severity == "resolved" else first.severity.upper()
    more = f" (+{count - 1:,} more)" if count > 1 else ""
    return header_safe(f"[{tag}] {first.subject}{more}")


def _counts(notifications: Sequence[Notification]) -> str:
    parts = []
    for severity in ("critical", "warning", "resolved"):
        count = sum(1 for n in notifications if n.severity == severity)
        if count:
            parts.append(f"{count:,} {severity}")
    return ", ".join(parts)


def _same_granularity(finding: Finding) -> bool:
    """A threshold line on the chart only when a bar measures the same thing as the threshold."""
    return finding.rule.kind in ("threshold", "budget") and finding.rule.period in ("hour", "day")


def _badge(notification: Notification) -> str:
    if notification.severity == "resolved":
        return "RESOLVED"
    level = notification.level
    suffix = "" if level in ("warning", "critical", "") else f" · {level}"
    return f"{notification.severity.upper()}{suffix}" + (" · ESCALATED" if notification.kind == "escalated" else "")


def _value_text(finding: Finding | None) -> tuple[str, str]:
    if finding is None:
        return "-", "-"
    threshold = "-" if finding.threshold is None else format_value(finding.threshold, finding.unit)
    if finding.rule.kind == "budget" and finding.threshold is not None:
        threshold = f"{threshold} budget ({', '.join(f'{p.normalize():f}%' for p in finding.rule.percents)})"
    if finding.rule.kind == "spike" and finding.threshold is not None:
        threshold = f"{finding.threshold}× the baseline"
    return format_value(finding.value, finding.unit), threshold


def _chart_view(notification: Notification) -> ChartView | None:
    """The chart of a firing alert; a resolved one is told in words only."""
    finding = notification.finding
    if finding is None or not finding.chart or notification.severity == "resolved":
        return None
    return ChartView(
        title=finding.chart_title,
        bars=tuple(BarView(bar.label, bar.value) for bar in finding.chart),
        reference=finding.threshold if _same_granularity(finding) else None,
        unit=finding.unit,
        x_label="hour (UTC)" if finding.rule.period == "hour" else "day (UTC)",
        reference_label="budget" if finding.rule.kind == "budget" else "threshold",
    )


def _item_view(notification: Notification) -> ItemView:
    finding = notification.finding
    value, threshold = _value_text(finding)
    # The subject is "<scope>: <summary>"; split after the known scope, since a member (a user id) may itself
    # hold ": ", which moved part of it into the summary.
    scope = notification.scope_label
    if notification.subject.startswith(scope + ": "):
        summary = notification.subject[len(scope) + 2 :]
    else:
        scope, _, summary = notification.subject.partition(": ")
    contributors: list[ContributorView] = []
    sentences: list[str] = []
    if finding is not None:
        contributors = [
            ContributorView(c.dimension, c.name, format_value(c.value, finding.unit), str(c.share_percent))
            for c in finding.contributors
        ]
        sentences = [sentence for sentence in (finding.detail, finding.estimated_note) if sentence]
    rule = finding.rule if finding is not None else None
    return ItemView(
        color=COLORS[notification.severity],
        badge=_badge(notification),
        kind_label=KIND_LABELS.get(rule.kind if rule is not None else "", "alert"),
        subject=notification.subject,
        scope=scope,
        summary=summary,
        sentences=tuple(sentences),
        has_figures=finding is not None,
        window=finding.window_label if finding is not None else notification.period_key,
        value=value,
        threshold=threshold,
        chart=_chart_view(notification),
        contributors=tuple(contributors),
        rule=notification.rule_name,
        rule_description=rule.description if rule is not None else "",
        ref=notification.ref,
    )
