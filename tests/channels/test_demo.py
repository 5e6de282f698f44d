"""`make run`'s demo, whole stack: the sample's demo budget alert lands in the outbox as an email and in the webhook
sink as a Teams card and a Slack message, all three with the same amount and the same delivery id."""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from standins.stack import Stack
from tests.support.stack import flush_metrics, run_timer

pytestmark = pytest.mark.slow

RULE = "demo-daily-budget"


def _demo_emails(outbox: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain",))
        if body is not None and f"Rule: {RULE} in " in str(body.get_content()):
            found.append(message)
    return found


def _email_value(message: EmailMessage) -> str:
    """The demo alert's Value line in the email's text part."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    [paragraph] = [p for p in str(body.get_content()).split("\n\n") if f"Rule: {RULE} in " in p]
    [value] = [line.split(":", 1)[1].strip() for line in paragraph.splitlines() if line.strip().startswith("Value:")]
    return value


def _posted(folder: Path, delivery_id: str) -> dict[str, Any]:
    [body] = [json.loads(path.read_bytes()) for path in sorted(folder.glob("*.json"))
              if not path.name.endswith(".headers.json") and delivery_id in path.read_text()]  # fmt: skip
    return dict(body)


def _card_value(card: dict[str, Any]) -> str:
    containers = [item for item in card["attachments"][0]["content"]["body"] if item["type"] == "Container"]
    for container in containers:
        facts = {fact["title"]: fact["value"] for item in container["items"] if item["type"] == "FactSet"
                 for fact in item["facts"]}  # fmt: skip
        if facts.get("Rule", "").startswith(f"{RULE} in "):
            return str(facts["Value"])
    raise AssertionError(f"no {RULE} item in the card")


def _slack_value(message: dict[str, Any]) -> str:
    for block in message["blocks"]:
        fields = [field["text"] for field in block.get("fields", [])]
        if any(field.startswith(f"Rule: {RULE} in ") for field in fields):
            [value] = [field.removeprefix("Value: ") for field in fields if field.startswith("Value: ")]
            return value
    raise AssertionError(f"no {RULE} item in the Slack message")


def test_the_demo_budget_alert_lands_as_email_teams_card_and_slack_message_with_the_same_amount(
    local_stack: Stack,
) -> None:
    outbox, webhooks = local_stack.info.outbox_dir, local_stack.data_dir / "webhooks"
    for _ in range(3):  # one traffic run costs more than the $0.05 demo budget; an earlier test may have run one
        if _demo_emails(outbox):
            break
        assert run_timer(local_stack, "traffic")["status"] == "Succeeded"
        flush_metrics(local_stack)
        assert run_timer(local_stack, "costs")["status"] == "Succeeded"
    message = _demo_emails(outbox)[-1]
    delivery_id = str(message["Message-ID"]).strip().strip("<>")
    card = _posted(webhooks / "teams" / "finops", delivery_id)
    slack = _posted(webhooks / "slack" / "finops", delivery_id)
    amount = _email_value(message)
    assert amount.startswith("$") and _card_value(card) == amount == _slack_value(slack)
    assert card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert not list((webhooks / "teams" / "finops").glob("*.problem"))  # Teams would post it
