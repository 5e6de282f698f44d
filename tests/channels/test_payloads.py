"""What each receiver gets for one digest (shared/channels/payloads.py): the email's figures, in the shapes Teams
(message + Adaptive Card, read by Microsoft's Adaptive Cards library), Slack (Block Kit within its limits) and a
generic receiver take; text from clients never becomes markup."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from shared.channels.payloads import (
    ADAPTIVE_CARD_CONTENT_TYPE,
    MAX_CARD_ITEMS,
    SLACK_FIELD_CHARS,
    SLACK_HEADER_CHARS,
    SLACK_MAX_BLOCKS,
    SLACK_TEXT_CHARS,
    Delivery,
    NotificationRef,
    markdown_text,
    slack_message,
    teams_message,
    webhook_event,
)
from shared.email.render import render
from shared.email.views import DigestView
from tests.support.adaptive_card import card_problems
from tools.screenshot_email import HOSTILE_USER, sample_view

DELIVERY_ID = "alerts.0123abcd.9f8e7d6c5b4a@example.com"


@pytest.fixture(scope="module")
def view() -> DigestView:
    return sample_view()


def delivery(view: DigestView) -> Delivery:
    notification = NotificationRef("demo-daily-budget|", "2026-11-27", "100%", "fired")
    return Delivery(DELIVERY_ID, "finops", view, (notification,))


def texts(node: Any) -> list[str]:
    """Every string in a JSON document."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for value in node.values() for text in texts(value)]
    if isinstance(node, list):
        return [text for value in node for text in texts(value)]
    return []


def test_the_teams_message_is_an_adaptive_card_microsoft_s_library_takes(view: DigestView) -> None:
    message = teams_message(delivery(view))
    # The documented message shape: type message, one attachment of the Adaptive Card content type.
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD_CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"], card["$schema"]) == (
        "AdaptiveCard", "1.4", "http://adaptivecards.io/schemas/adaptive-card.json",
    )  # fmt: skip
    assert card["body"] and card["actions"][0]["url"] == "https://portal.azure.com/#dashboard"
    problems, version = card_problems(card)
    assert (problems, version) == ([], "1.4")


def test_the_card_check_catches_what_teams_would_not_take(view: DigestView) -> None:
    card = teams_message(delivery(view))["attachments"][0]["content"]
    card["body"][0]["weight"] = "Heavy"
    card["body"].append({"type": "Carousel2"})
    problems, _ = card_problems(card)
    assert any('"Heavy"' in problem for problem in problems) and any("Carousel2" in p for p in problems)


def test_teams_and_slack_carry_the_email_s_figures(view: DigestView) -> None:
    email_text = render(view).text
    teams, slack = texts(teams_message(delivery(view))), "\n".join(texts(slack_message(delivery(view))))
    teams_text = "\n".join(teams)
    for item in view.items:
        for figure in (item.value, item.threshold, item.window, item.badge):
            if item.has_figures or figure == item.badge:
                assert figure in email_text
                assert markdown_text(figure) in teams_text, figure
                assert figure in slack, figure
        for contributor in item.contributors:
            assert f"{contributor.value} ({contributor.share_percent}%)" in teams_text
            assert f"{contributor.value} ({contributor.share_percent}%)" in slack
    assert view.counts in teams_text and view.counts in slack
    assert DELIVERY_ID in teams_text and DELIVERY_ID in slack
    assert "$381.50" in teams  # a money figure reads exactly as in the email, in its own fact


def test_text_from_clients_is_no_markup_on_teams_or_slack(view: DigestView) -> None:
    hostile = "[pay here](https://evil.example) **now** <!channel>"
    item = dataclasses.replace(view.items[0], subject=f"user {hostile}: $5.00 today", scope=f"user {hostile}")
    hostile_view = dataclasses.replace(view, items=(item,), subject=f"[WARNING] user {hostile}: $5.00 today")
    card_text = "\n".join(texts(teams_message(delivery(hostile_view))))
    assert "[pay here](" not in card_text and r"\[pay here\](https://evil.example) \*\*now\*\*" in card_text
    assert markdown_text(HOSTILE_USER) in card_text and HOSTILE_USER not in card_text
    message = slack_message(delivery(hostile_view))
    # Slack: client text only in plain_text objects; the mrkdwn fallback has <, > and & escaped.
    kinds = {node["type"] for node in _text_objects(message["blocks"])}
    assert kinds == {"plain_text"}
    assert "<!channel>" not in message["text"] and "&lt;!channel&gt;" in message["text"]


def _text_objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") in ("plain_text", "mrkdwn") else []
        return found + [obj for value in node.values() for obj in _text_objects(value)]
    if isinstance(node, list):
        return [obj for value in node for obj in _text_objects(value)]
    return []


def test_a_large_digest_stays_within_slack_and_teams_limits(view: DigestView) -> None:
    long_item = dataclasses.replace(view.items[0], subject="x" * 5000, sentences=("y" * 4000,))
    big = dataclasses.replace(view, subject="s" * 400, items=tuple([long_item] * 40))
    message = slack_message(delivery(big))
    assert len(message["blocks"]) <= SLACK_MAX_BLOCKS
    assert len(message["blocks"][0]["text"]["text"]) <= SLACK_HEADER_CHARS
    sections = [block for block in message["blocks"] if block["type"] == "section"]
    assert all(len(block["text"]["text"]) <= SLACK_TEXT_CHARS for block in sections)
    assert all(len(field["text"]) <= SLACK_FIELD_CHARS and len(block["fields"]) <= 10
               for block in sections for field in block.get("fields", []))  # fmt: skip
    rest = f"... and {40 - MAX_CARD_ITEMS:,} more alerts in this digest (the email lists them all)"
    assert rest in "\n".join(texts(message))
    card = teams_message(delivery(big))
    assert rest in "\n".join(texts(card))
    assert len(json.dumps(card)) < 28 * 1024 * 4  # ten items of 9 KB of text each: the cap keeps it bounded


def test_the_generic_event_holds_every_figure_and_the_notifications(view: DigestView) -> None:
    event = webhook_event(delivery(view))
    assert (event["type"], event["id"], event["group"]) == ("alert.digest", DELIVERY_ID, "finops")
    assert event["notifications"] == [
        {"alert": "demo-daily-budget|", "period": "2026-11-27", "level": "100%", "kind": "fired"}
    ]
    assert [alert["value"] for alert in event["alerts"]] == [i.value if i.has_figures else None for i in view.items]
    first = event["alerts"][0]
    assert first["chart"]["bars"][-1] == {"label": "11-27", "value": "56.5"}
    assert first["contributors"][3]["name"] == HOSTILE_USER  # JSON carries it as data; the receiver escapes
    json.dumps(event)  # plain JSON values only
