"""What one digest email says: notifications → a DigestView (shared/email/views.py) → shared/email/render.py.

Everything that knows findings, notifications and rules is here: the subject line, the counts, each
alert's badge, colour, kind, value and threshold text, its contributors and chart bars. email/ then
lays the view out as HTML, text and PNG without knowing what an alert is, so email/ needs nothing
from alerts/ (alerts/run.py is its only caller).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.alerts.findings import Finding, Notification, format_value
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


def render_digest(
    notifications: Sequence[Notification], *, rules_file: str, generated_at: datetime, dashboard_url: str = ""
) -> Digest:
    view = digest_view(notifications, rules_file=rules_file, generated_at=generated_at, dashboard_url=dashboard_url)
    return render(view)


def digest_view(
    notifications: Sequence[Notification], *, rules_file: str, generated_at: datetime, dashboard_url: str = ""
) -> DigestView:
    ordered = sorted(notifications, key=lambda n: n.order)
    return DigestView(
        subject=subject_line(ordered),
        counts=_counts(ordered),
        generated_at=f"{generated_at:%Y-%m-%d %H:%M} UTC",
        items=tuple(_item_view(notification) for notification in ordered),
        rules_file=rules_file,
        dashboard_url=dashboard_url,
    )


def subject_line(notifications: Sequence[Notification]) -> str:
    first = notifications[0]
    tag = "RESOLVED" if first.severity == "resolved" else first.severity.upper()
    more = f" (+{len(notifications) - 1} more)" if len(notifications) > 1 else ""
    return header_safe(f"[{tag}] {first.subject}{more}")


def _counts(notifications: Sequence[Notification]) -> str:
    parts = []
    for severity in ("critical", "warning", "resolved"):
        count = sum(1 for n in notifications if n.severity == severity)
        if count:
            parts.append(f"{count} {severity}")
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
    )
