"""The alert digest email: one message per recipient group and run, highest severity first.

Parts: text/plain and text/html (shared/email/templates/*.html, Jinja2) in multipart/alternative,
inside multipart/related with one inline PNG chart per alert (Content-ID), because mail clients
block SVG and remote images. The templates are rendered with autoescaping on and nothing marked
safe, so every value is escaped by the engine rather than by hand at each use (user ids,
subscription names, API ids and models come from clients: a user id `<img src=x onerror=alert(1)>`
shows as that text). StrictUndefined: a name missing from the context fails the render instead of
mailing a blank. The text part is plain text, never escaped. Headers get no line breaks from values.
Jinja2 is imported on the first render (cold start); the rest is stdlib.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from typing import TYPE_CHECKING

from shared.alerts.findings import Finding, Notification, format_value
from shared.email.chart import bar_chart_png

if TYPE_CHECKING:
    import jinja2

COLORS = {"critical": "#b91c1c", "warning": "#b45309", "resolved": "#15803d", "ok": "#15803d"}
KIND_LABELS = {
    "threshold": "threshold",
    "budget": "budget",
    "spike": "spike against the usual",
    "unpriced": "unpriced usage",
    "no_metrics": "pipeline health: token metrics missing",
    "reconciliation": "pipeline health: reconciliation",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
    html: str
    images: tuple[tuple[str, bytes], ...]  # (content id without <>, PNG bytes)


@dataclass(frozen=True)
class ChartView:
    """The inline chart of one alert as the HTML shows it."""

    cid: str  # the image part's Content-ID, without <>
    title: str
    first_label: str
    last_label: str


@dataclass(frozen=True)
class ContributorView:
    dimension: str
    name: str
    value: str
    share_percent: str


@dataclass(frozen=True)
class ItemView:
    """One alert of the digest, every field plain text: the template escapes them all."""

    color: str
    badge: str
    kind_label: str
    scope: str
    summary: str
    sentences: tuple[str, ...]  # the finding's detail and its estimates note, as far as present
    window: str
    value: str
    threshold: str
    chart: ChartView | None
    contributors: tuple[ContributorView, ...]
    rule: str
    rule_description: str


def header_safe(value: str) -> str:
    """No CR/LF or other control characters in a header value (no header injection)."""
    return _CONTROL.sub(" ", value).strip()


def subject_line(notifications: Sequence[Notification]) -> str:
    first = notifications[0]
    tag = "RESOLVED" if first.severity == "resolved" else first.severity.upper()
    more = f" (+{len(notifications) - 1} more)" if len(notifications) > 1 else ""
    return header_safe(f"[{tag}] {first.subject}{more}")


def render_digest(
    notifications: Sequence[Notification], *, rules_file: str, generated_at: datetime, dashboard_url: str = ""
) -> Digest:
    ordered = sorted(notifications, key=lambda n: n.order)
    items: list[ItemView] = []
    items_text: list[str] = []
    images: list[tuple[str, bytes]] = []
    for index, notification in enumerate(ordered):
        cid = ""
        finding = notification.finding
        if finding is not None and finding.chart and notification.severity != "resolved":
            cid = make_msgid(idstring=f"chart{index}", domain="alerts.local")[1:-1]
            reference = finding.threshold if _same_granularity(finding) else None
            images.append((cid, bar_chart_png([bar.value for bar in finding.chart], reference=reference)))
        items.append(_item_view(notification, cid))
        items_text.append(_item_text(notification, rules_file))
    counts = _counts(ordered)
    stamp = f"{generated_at:%Y-%m-%d %H:%M} UTC"
    page = (
        _templates()
        .get_template("alert_digest.html")
        .render(
            title=subject_line(ordered),
            counts=counts,
            generated_at=stamp,
            items=items,
            rules_file=rules_file,
            dashboard_url=dashboard_url,
        )
    )
    text = "\n\n".join(
        [f"AI gateway cost alerts, {stamp}: {counts}", *items_text, f"Change or silence a rule in {rules_file}."]
        + ([f"Dashboard: {dashboard_url}"] if dashboard_url else [])
    )
    return Digest(subject_line(ordered), text + "\n", page, tuple(images))


def build_message(digest: Digest, *, sender: str, recipients: Sequence[str], sent_at: datetime) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "alerts.local")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to alerts
    message.set_content(digest.text)
    message.add_alternative(digest.html, subtype="html")
    html_part = next(part for part in message.iter_parts() if part.get_content_type() == "text/html")
    for cid, png in digest.images:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", filename=f"{cid.split('@')[0]}.png")
    return message


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


def _item_view(notification: Notification, cid: str) -> ItemView:
    finding = notification.finding
    value, threshold = _value_text(finding)
    scope, _, summary = notification.subject.partition(": ")
    chart, contributors, sentences = None, [], []
    if finding is not None:
        if cid:
            chart = ChartView(cid, finding.chart_title, finding.chart[0].label, finding.chart[-1].label)
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
        scope=scope,
        summary=summary,
        sentences=tuple(sentences),
        window=finding.window_label if finding is not None else notification.period_key,
        value=value,
        threshold=threshold,
        chart=chart,
        contributors=tuple(contributors),
        rule=notification.rule_name,
        rule_description=rule.description if rule is not None else "",
    )


@cache
def _templates() -> jinja2.Environment:
    """The template environment, built on the first render (Jinja2 is not imported at cold start)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("shared.email", "templates"),
        # Escape in every template (.html and any other): values are never trusted markup.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,  # the page ends with a newline, as the template file does
    )


def _item_text(notification: Notification, rules_file: str) -> str:
    finding = notification.finding
    value, threshold = _value_text(finding)
    lines = [f"[{_badge(notification)}] {notification.subject}"]
    if finding is not None:
        lines += [f"  {sentence}" for sentence in (finding.detail, finding.estimated_note) if sentence]
        lines += [f"  Window:    {finding.window_label}", f"  Value:     {value}", f"  Threshold: {threshold}"]
        if finding.contributors:
            lines.append("  Top contributors:")
            lines += [
                f"    {c.dimension:<12} {c.name}  {format_value(c.value, finding.unit)} ({c.share_percent}%)"
                for c in finding.contributors
            ]
        if finding.chart and notification.severity != "resolved":
            lines.append(f"  {finding.chart_title}:")
            lines.append("    " + "  ".join(f"{bar.label} {bar.value.normalize():f}" for bar in finding.chart[-7:]))
    lines.append(f"  Rule: {notification.rule_name} in {rules_file}")
    return "\n".join(lines)
