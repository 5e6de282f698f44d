"""One digest (shared/email/views.py DigestView, the email's own view) laid out for each webhook receiver.

- Teams: a Workflows webhook ("Post to a channel when a webhook request is received") takes a message whose
  attachments hold an Adaptive Card: {"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": {AdaptiveCard}}]}
  (learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook,
  the same payload the Workflows template takes: support.microsoft.com "Create incoming webhooks with Workflows
  for Microsoft Teams"). Card version 1.4 (what Teams renders for webhook cards), `msteams.width: Full`.
  TextBlock text is Markdown to Teams, so text from clients (user ids, API ids) has its Markdown characters
  escaped and cannot become a link or formatting.
- Slack: an incoming webhook takes {"text": fallback, "blocks": [Block Kit]}
  (api.slack.com/messaging/webhooks). Text from clients goes in plain_text objects (no formatting, no links);
  the fallback `text` is mrkdwn, so &, < and > are escaped there (api.slack.com/reference/surfaces/formatting
  #escaping). Limits honoured (api.slack.com/reference/block-kit/blocks): at most 50 blocks, a header's text
  150 characters, a section's 3000, at most 10 fields of 2000 each.
- Generic webhook: our own JSON (type "alert.digest"), every figure the email shows as text plus the chart bars.
A card shows at most MAX_CARD_ITEMS alerts, then one line for the rest (the counts at the top count them all):
a Teams card message is limited to about 28 KB and a Slack message to 50 blocks, and the email has them all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.email.views import DigestView, ItemView

MAX_CARD_ITEMS = 10
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_VERSION = "1.4"
_CARD_STYLE = {"#b91c1c": "attention", "#b45309": "warning", "#15803d": "good"}  # digest.COLORS -> container
_CARD_COLOR = {"attention": "Attention", "warning": "Warning", "good": "Good"}
# What makes Markdown out of text (emphasis, links, code, headings, HTML-like tags), escaped with CommonMark's
# backslash; digits, '.', '%', '$' and '(' stay as they are, so figures read exactly as in the email.
_MARKDOWN = re.compile(r"([\\`*_\[\]#<>~|])")
_BULLET_START = re.compile(r"^([-+])(\s)", re.M)
_NUMBER_START = re.compile(r"^(\d+)\.(\s)", re.M)
SLACK_MAX_BLOCKS = 50
SLACK_HEADER_CHARS = 150
SLACK_TEXT_CHARS = 3000
SLACK_FIELD_CHARS = 2000


@dataclass(frozen=True)
class NotificationRef:
    """One notification a delivery carries: its alert (rule x scope member), period, level and kind."""

    alert: str
    period: str
    level: str
    kind: str


@dataclass(frozen=True)
class Delivery:
    """What a channel delivers: the digest's view and its id (the email's Message-ID without <>, kept for every
    attempt at the same notifications), the recipient group and the notifications it carries."""

    id: str
    group: str
    view: DigestView
    notifications: tuple[NotificationRef, ...] = ()


def _shown(items: Sequence[ItemView]) -> tuple[Sequence[ItemView], int]:
    return items[:MAX_CARD_ITEMS], max(0, len(items) - MAX_CARD_ITEMS)


def _rest_line(rest: int) -> str:
    return f"... and {rest:,} more alerts in this digest (the email lists them all)"


def _facts(item: ItemView, rules_file: str) -> list[tuple[str, str]]:
    facts = [("Window", item.window), ("Value", item.value), ("Threshold", item.threshold)] if item.has_figures else []
    return [*facts, ("Rule", f"{item.rule} in {rules_file}")]


def _contributor_lines(item: ItemView) -> list[str]:
    return [f"{c.dimension} {c.name}: {c.value} ({c.share_percent}%)" for c in item.contributors]


def _chart_line(item: ItemView) -> str:
    if item.chart is None:
        return ""
    bars = "  ".join(f"{bar.label} {bar.value.normalize():f}" for bar in item.chart.bars[-7:])
    return f"{item.chart.title}: {bars}"


# --- Teams -----------------------------------------------------------------------------------------------------


def markdown_text(value: str) -> str:
    """Text from anywhere shown as itself in a Markdown TextBlock: no emphasis, link, code or list from it."""
    escaped = _BULLET_START.sub(r"\\\1\2", _MARKDOWN.sub(r"\\\1", value))
    return _NUMBER_START.sub(r"\1\\.\2", escaped)


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": markdown_text(text), "wrap": True, **style}


def _card_item(item: ItemView, rules_file: str) -> dict[str, Any]:
    style = _CARD_STYLE.get(item.color, "emphasis")
    body: list[dict[str, Any]] = [
        _text_block(f"{item.badge} · {item.kind_label}", weight="Bolder", color=_CARD_COLOR.get(style, "Default")),
        _text_block(item.subject, weight="Bolder", spacing="Small"),
        *(_text_block(sentence, spacing="Small") for sentence in item.sentences),
        {
            "type": "FactSet",
            "facts": [{"title": title, "value": markdown_text(value)} for title, value in _facts(item, rules_file)],
        },
    ]
    if item.contributors:
        body.append(_text_block("Top contributors", weight="Bolder", spacing="Small"))
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": markdown_text(f"{c.dimension} {c.name}"), "value": f"{c.value} ({c.share_percent}%)"}
                    for c in item.contributors
                ],
            }
        )
    if item.chart is not None:
        body.append(_text_block(_chart_line(item), isSubtle=True, spacing="Small"))
    if item.more:
        body.append(_text_block(item.more, isSubtle=True, spacing="Small"))
    return {"type": "Container", "style": style, "bleed": False, "spacing": "Medium", "items": body}


def adaptive_card(delivery: Delivery) -> dict[str, Any]:
    """The Adaptive Card of a digest (the `content` of the Teams message's attachment)."""
    view = delivery.view
    shown, rest = _shown(view.items)
    body: list[dict[str, Any]] = [
        _text_block(view.subject, weight="Bolder", size="Medium"),
        _text_block(f"AI gateway cost alerts, {view.generated_at}: {view.counts}", isSubtle=True, spacing="None"),
        *(_card_item(item, view.rules_file) for item in shown),
    ]
    if rest:
        body.append(_text_block(_rest_line(rest), isSubtle=True))
    footer = f"Change or silence a rule in {view.rules_file}. Delivery {delivery.id}"
    body.append(_text_block(footer, isSubtle=True, size="Small"))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if view.dashboard_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the cost dashboard", "url": view.dashboard_url}]
    return card


def teams_message(delivery: Delivery) -> dict[str, Any]:
    attachment = {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": adaptive_card(delivery)}
    return {"type": "message", "attachments": [attachment]}


# --- Slack -----------------------------------------------------------------------------------------------------


def slack_escape(value: str) -> str:
    """mrkdwn text as itself: Slack asks for &, < and > to be escaped as HTML entities, and nothing else."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "plain_text", "text": text or " ", "emoji": False}


def _slack_item(item: ItemView, rules_file: str) -> list[dict[str, Any]]:
    lines = [f"{item.badge} · {item.kind_label}", item.subject, *item.sentences]
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": _plain("\n".join(lines), SLACK_TEXT_CHARS),
            "fields": [_plain(f"{title}: {value}", SLACK_FIELD_CHARS) for title, value in _facts(item, rules_file)],
        }
    ]
    extra = []
    if item.contributors:
        extra.append("Top contributors:\n" + "\n".join(_contributor_lines(item)))
    if item.chart is not None:
        extra.append(_chart_line(item))
    if item.more:
        extra.append(item.more)
    if extra:
        blocks.append({"type": "section", "text": _plain("\n".join(extra), SLACK_TEXT_CHARS)})
    blocks.append({"type": "divider"})
    return blocks


def slack_message(delivery: Delivery) -> dict[str, Any]:
    view = delivery.view
    shown, rest = _shown(view.items)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(view.subject, SLACK_HEADER_CHARS)},
        {"type": "context", "elements": [_plain(f"AI gateway cost alerts, {view.generated_at}: {view.counts}", 2000)]},
    ]
    for item in shown:
        blocks += _slack_item(item, view.rules_file)
    footer = [_plain(f"Change or silence a rule in {view.rules_file}. Delivery {delivery.id}", 2000)]
    if rest:
        footer.insert(0, _plain(_rest_line(rest), 2000))
    if view.dashboard_url:
        footer.append(_plain(f"Dashboard: {view.dashboard_url}", 2000))
    blocks.append({"type": "context", "elements": footer})
    assert len(blocks) <= SLACK_MAX_BLOCKS  # MAX_CARD_ITEMS x 3 + 3
    # `text` is what notifications and clients without Block Kit show.
    return {"text": slack_escape(f"{view.subject}: {view.counts}"), "blocks": blocks}


# --- generic webhook -------------------------------------------------------------------------------------------


def webhook_event(delivery: Delivery) -> dict[str, Any]:
    """Our own JSON for a generic receiver: every figure of the email, as the email shows it."""
    view = delivery.view
    return {
        "type": "alert.digest",
        "id": delivery.id,
        "group": delivery.group,
        "subject": view.subject,
        "counts": view.counts,
        "generated_at": view.generated_at,
        "rules_file": view.rules_file,
        "dashboard_url": view.dashboard_url,
        "notifications": [
            {"alert": ref.alert, "period": ref.period, "level": ref.level, "kind": ref.kind}
            for ref in delivery.notifications
        ],
        "alerts": [_webhook_item(item) for item in view.items],
    }


def _webhook_item(item: ItemView) -> dict[str, Any]:
    return {
        "badge": item.badge,
        "kind": item.kind_label,
        "subject": item.subject,
        "scope": item.scope,
        "summary": item.summary,
        "sentences": list(item.sentences),
        "window": item.window if item.has_figures else None,
        "value": item.value if item.has_figures else None,
        "threshold": item.threshold if item.has_figures else None,
        "contributors": [
            {"dimension": c.dimension, "name": c.name, "value": c.value, "share_percent": c.share_percent}
            for c in item.contributors
        ],
        "chart": None
        if item.chart is None
        else {
            "title": item.chart.title,
            "bars": [{"label": bar.label, "value": f"{bar.value.normalize():f}"} for bar in item.chart.bars],
            "reference": None if item.chart.reference is None else f"{item.chart.reference.normalize():f}",
        },
        "rule": item.rule,
        "rule_description": item.rule_description,
        "more": item.more,
    }
