"""A digest email laid out: one DigestView (shared/email/views.py) → HTML, text and inline PNG charts.

What the digest says is decided by shared/alerts/digest.py; this module only lays it out. Parts:
text/plain and text/html (shared/email/templates/*.html, Jinja2) in multipart/alternative, inside
multipart/related with one inline PNG chart per alert (Content-ID), because mail clients block SVG
and remote images. The templates are rendered with autoescaping on and nothing marked safe, so every
value is escaped by the engine rather than by hand at each use (user ids, subscription names, API ids
and models come from clients: a user id `<img src=x onerror=alert(1)>` shows as that text).
StrictUndefined: a name missing from the context fails the render instead of mailing a blank. The
text part is plain text, never escaped. Headers get no line breaks from values.
Jinja2 is imported on the first render (cold start); the rest is stdlib.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from typing import TYPE_CHECKING

from shared.email.chart import bar_chart_png
from shared.email.views import ChartView, DigestView, ItemView

if TYPE_CHECKING:
    import jinja2

# Every character Python's str.splitlines() breaks on is a control character or one of \x85, \u2028,
# \u2029; the email package refuses a header holding any of them (so one in a user id failed the digest).
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# What a plain subject is not read back as: an encoded word is decoded, and the email package folds a
# quote or backslash run so that the subject gains a leading space.
_MISREAD = re.compile(r'=\?|["\\]')
# The inline chart's size; the template's <img> states the same (alert_item.html).
CHART_WIDTH_PX, CHART_HEIGHT_PX = 640, 240
# Charts drawn per email, for its first (most severe) items; the rest show their bars' latest figures as text,
# as the text part does. A labelled chart costs ~30 KB and 40-90 ms of CPU (matplotlib): the alert benchmark's
# digest of 60 charted items took 4-7 s more and grew from 264 KiB to ~2 MB with a chart for each.
CHARTS_PER_EMAIL = 12


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
    html: str
    images: tuple[tuple[str, bytes], ...]  # (content id without <>, PNG bytes)


def header_safe(value: str) -> str:
    """No CR/LF, other line breaks or control characters in a header value (no header injection), and text
    that UTF-8 can carry."""
    return _CONTROL.sub(" ", unicode_text(value)).strip()


def unicode_text(value: str) -> str:
    """A lone surrogate (a dimension value that was not UTF-8, as Python decodes one) as U+FFFD: no part of
    an email can encode it, and it must not cost the whole digest."""
    return _LONE_SURROGATE.sub("\ufffd", value)


class _FoldedHeader(str):
    """A header value folded so that it reads back as written. Plain ASCII is folded at its spaces (the
    email package's own folding put a long subject's first word on a continuation line, and the reader got
    a leading space); anything else goes as RFC 2047 encoded words throughout, so text shaped like an
    encoded word ("=?utf-8?q?...?=" in a user id) is not decoded into other text by the reader. Its str()
    is the value; only the wire differs."""

    def __new__(cls, name: str, value: str) -> _FoldedHeader:
        header = super().__new__(cls, value)
        header.name = name
        return header

    name: str

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # copies keep the name (transports copy)
        return self.name, str(self)

    def fold(self, *, policy: email.policy.Policy) -> str:
        import email.header

        # A word longer than a line cannot be folded plainly: it would start a continuation line, read back
        # with a leading space; encoded words split anywhere.
        plain = str(self).isascii() and not _MISREAD.search(self) and max(map(len, self.split(" "))) <= 60
        encoded = email.header.Header(
            str(self), "us-ascii" if plain else "utf-8", header_name=self.name, maxlinelen=policy.max_line_length
        )
        return f"{self.name}: {encoded.encode(linesep=policy.linesep)}{policy.linesep}"


def render(view: DigestView) -> Digest:
    cids: list[str] = []
    images: list[tuple[str, bytes]] = []
    for index, item in enumerate(view.items):
        cid = ""
        if item.chart is not None and len(images) < CHARTS_PER_EMAIL:
            cid = make_msgid(idstring=f"chart{index}", domain="alerts.local")[1:-1]
            images.append((cid, _chart_png(item.chart)))
        cids.append(cid)
    page = (
        _templates()
        .get_template("alert_digest.html")
        .render(
            title=view.subject,
            counts=view.counts,
            generated_at=view.generated_at,
            items=[(item, cid, _chart_figures(item.chart)) for item, cid in zip(view.items, cids, strict=True)],
            rules_file=view.rules_file,
            dashboard_url=view.dashboard_url,
            chart_width_px=CHART_WIDTH_PX,
            chart_height_px=CHART_HEIGHT_PX,
        )
    )
    text = "\n\n".join(
        [
            f"AI gateway cost alerts, {view.generated_at}: {view.counts}",
            *(text for item in view.items for text in _item_text(item, view.rules_file)),
            f"Change or silence a rule in {view.rules_file}.",
        ]
        + ([f"Dashboard: {view.dashboard_url}"] if view.dashboard_url else [])
    )
    return Digest(view.subject, text + "\n", page, tuple(images))


def _chart_png(chart: ChartView) -> bytes:
    return bar_chart_png(
        [bar.label for bar in chart.bars],
        [bar.value for bar in chart.bars],
        unit=chart.unit,
        x_label=chart.x_label,
        reference=chart.reference,
        reference_label=chart.reference_label,
        width_px=CHART_WIDTH_PX,
        height_px=CHART_HEIGHT_PX,
    )


def render_page(template: str, **context: object) -> str:
    """Another email's page from templates/ (the chargeback report, shared/reports/), with the digest's environment:
    autoescaped, StrictUndefined."""
    return _templates().get_template(template).render(**context)


def message_id_for(unique: str, sender: str) -> str:
    """An RFC 5322 Message-ID, "<unique@the sender's domain>": `unique` must be unique for all time (a run id)."""
    return f"<{unique}@{_domain(sender)}>"


def build_message(
    digest: Digest, *, sender: str, recipients: Sequence[str], sent_at: datetime, message_id: str = ""
) -> EmailMessage:
    """The email; `message_id` names it (every attempt to send one email carries the same), else a new one."""
    message = EmailMessage()
    subject = header_safe(digest.subject)
    message["Subject"] = _FoldedHeader("Subject", subject)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id or make_msgid(domain=_domain(sender))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to alerts
    message.set_content(unicode_text(digest.text))
    message.add_alternative(unicode_text(digest.html), subtype="html")
    html_part = next(part for part in message.iter_parts() if part.get_content_type() == "text/html")
    for cid, png in digest.images:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", filename=f"{cid.split('@')[0]}.png")
    return message


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "alerts.local"


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


def _chart_figures(chart: ChartView | None) -> str:
    """The chart's latest seven bars as text ("11-26 1  11-27 2.5"); the PNG shows them all."""
    if chart is None:
        return ""
    return "  ".join(f"{bar.label} {bar.value.normalize():f}" for bar in chart.bars[-7:])


def _item_text(item: ItemView, rules_file: str) -> list[str]:
    """The item's paragraph, and the line for the alerts like it left out, if any."""
    lines = [f"[{item.badge}] {item.subject}"]
    if item.has_figures:
        lines += [f"  {sentence}" for sentence in item.sentences]
        lines += [f"  Window:    {item.window}", f"  Value:     {item.value}", f"  Threshold: {item.threshold}"]
        if item.contributors:
            lines.append("  Top contributors:")
            lines += [f"    {c.dimension:<12} {c.name}  {c.value} ({c.share_percent}%)" for c in item.contributors]
        if item.chart is not None:
            lines.append(f"  {item.chart.title}:")
            lines.append("    " + _chart_figures(item.chart))
    lines.append(f"  Rule: {item.rule} in {rules_file}")
    if item.ref:
        lines.append(f"  Ref:  {item.ref}")
    return ["\n".join(lines), *([f"... {item.more}"] if item.more else [])]
