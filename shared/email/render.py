"""The alert digest email: one message per recipient group and run, highest severity first.

Parts: text/plain and text/html (shared/email/templates/*.html, string.Template) in
multipart/alternative, inside multipart/related with one inline PNG chart per alert (Content-ID),
because mail clients block SVG and remote images. Every value substituted into the HTML is
escaped here (user ids, subscription names, API ids and models come from clients: a user id
`<img src=x onerror=alert(1)>` shows as that text). Headers get no line breaks from values.
Stdlib only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from string import Template

from shared.alerts.findings import Finding, Notification, format_value
from shared.email.chart import bar_chart_png

TEMPLATES = Path(__file__).parent / "templates"
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
    items_html, items_text, images = [], [], []
    for index, notification in enumerate(ordered):
        cid = ""
        finding = notification.finding
        if finding is not None and finding.chart and notification.severity != "resolved":
            cid = make_msgid(idstring=f"chart{index}", domain="alerts.local")[1:-1]
            reference = finding.threshold if _same_granularity(finding) else None
            images.append((cid, bar_chart_png([bar.value for bar in finding.chart], reference=reference)))
        items_html.append(_item_html(notification, cid, rules_file))
        items_text.append(_item_text(notification, rules_file))
    counts = _counts(ordered)
    stamp = f"{generated_at:%Y-%m-%d %H:%M} UTC"
    footer_lines = [
        "One email per run and recipient group; each alert is mailed once per rule, scope, period and level.",
        f"Change or silence a rule in {html.escape(rules_file)}.",
    ]
    if dashboard_url:
        url = html.escape(dashboard_url, quote=True)
        footer_lines.append(f'Dashboard: <a href="{url}" style="color:#1d4ed8;">{url}</a>')
    page = Template((TEMPLATES / "alert_digest.html").read_text(encoding="utf-8")).substitute(
        title=html.escape(subject_line(ordered)),
        preheader=html.escape(counts),
        generated_at=html.escape(stamp),
        heading=html.escape(counts),
        items="\n".join(items_html),
        footer="<br>".join(footer_lines),
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


def _item_html(notification: Notification, cid: str, rules_file: str) -> str:
    finding = notification.finding
    value, threshold = _value_text(finding)
    scope, _, summary = notification.subject.partition(": ")
    detail = ""
    if finding is not None:
        for sentence in (finding.detail, finding.estimated_note):
            if sentence:
                detail += f'<div style="margin-top:6px;font-size:14px;color:#374151;">{html.escape(sentence)}</div>'
    chart = ""
    if cid and finding is not None:
        first, last = finding.chart[0].label, finding.chart[-1].label
        chart = (
            f'<div style="margin-top:14px;font-size:13px;color:#374151;">{html.escape(finding.chart_title)}</div>'
            f'<img src="cid:{html.escape(cid, quote=True)}" width="480" height="120" '
            f'alt="{html.escape(finding.chart_title, quote=True)}" style="display:block;max-width:100%;'
            f'border:1px solid #e5e7eb;margin-top:4px;">'
            f'<table role="presentation" width="480" cellpadding="0" cellspacing="0" style="max-width:100%;'
            f'font-size:11px;color:#6b7280;"><tr><td>{html.escape(first)}</td>'
            f'<td align="right">{html.escape(last)} (highlighted)</td></tr></table>'
        )
    contributors = ""
    if finding is not None and finding.contributors:
        rows = "".join(
            f'<tr><td style="padding:2px 12px 2px 0;color:#6b7280;">{html.escape(c.dimension)}</td>'
            f'<td style="padding:2px 12px 2px 0;word-break:break-all;">{html.escape(c.name)}</td>'
            f'<td align="right" style="padding:2px 12px 2px 0;">{html.escape(format_value(c.value, finding.unit))}</td>'
            f'<td align="right" style="padding:2px 0;color:#6b7280;">{c.share_percent}%</td></tr>'
            for c in finding.contributors
        )
        contributors = (
            '<div style="margin-top:14px;font-size:13px;color:#374151;">Top contributors in this window</div>'
            f'<table role="presentation" cellpadding="0" cellspacing="0" style="font-size:13px;line-height:1.5;">'
            f"{rows}</table>"
        )
    rule = finding.rule if finding is not None else None
    description = f" &middot; {html.escape(rule.description)}" if rule is not None and rule.description else ""
    kind = rule.kind if rule is not None else ""
    return Template((TEMPLATES / "alert_item.html").read_text(encoding="utf-8")).substitute(
        color=COLORS[notification.severity],
        badge=html.escape(_badge(notification)),
        kind_label=html.escape(KIND_LABELS.get(kind, "alert")),
        scope=html.escape(scope),
        summary=html.escape(summary),
        detail=detail,
        window=html.escape(finding.window_label if finding else notification.period_key),
        value=html.escape(value),
        threshold=html.escape(threshold),
        chart=chart,
        contributors=contributors,
        rule=html.escape(notification.rule_name),
        rules_file=html.escape(rules_file),
        rule_description=description,
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
