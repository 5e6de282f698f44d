"""Fuzz: any dimension value APIM hands over (a user, subscription, API or model name with quotes, line
breaks, HTML, encoded words, very long or not UTF-8) goes through the alert evaluation into an email whose
headers are exactly the expected ones, whose subject says what the alert says, and whose HTML shows the
value as escaped text; nothing raises."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from hypothesis import assume, example, given
from markupsafe import escape

from shared.alerts.data import AlertData, Ranges, traffic_frame, usage_frame
from shared.alerts.digest import render_digest
from shared.alerts.evaluate import Clock, evaluate
from shared.alerts.rules import parse_rules
from shared.alerts.run import _notification
from shared.alerts.state import AlertRecord
from shared.alerts.transitions import transition
from shared.email.render import build_message, header_safe, unicode_text
from tests.support.fuzz import hostile_text

NOW = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
RULES = parse_rules(
    json.dumps({
        "recipient_groups": {"ops": ["ops@example.com", "finops@example.com"]},
        "rules": [{"name": "user-cost", "kind": "threshold", "metric": "cost", "window": "day", "scope": "each:user",
                   "warning": 1}],
    }),
    source="alerts.json",
)  # fmt: skip
HEADERS = ["Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"]


def _alert_email(user: str, subscription: str) -> EmailMessage:
    # One usage row of the day, as the alert query returns it: the hostile values are APIM's dimensions.
    row = [NOW - timedelta(hours=1), "gpt-5.6-luna", "gpt-5.6-luna", subscription, user, "api", "USD", False, 3,
           1000, 5_000_000, 0, 0]  # fmt: skip
    data = AlertData(Ranges(NOW - timedelta(days=30), NOW - timedelta(days=30), NOW, NOW), usage_frame([row]),
                     traffic_frame([]))  # fmt: skip
    findings = [finding for finding in evaluate(RULES, data, Clock(NOW, 60)) if finding.firing]
    assert len(findings) == 1
    (finding,) = findings
    notification = _notification(transition(AlertRecord(finding.key, "user-cost", finding.member), finding, NOW),
                                 finding)  # fmt: skip
    digest = render_digest([notification], rules_file="alerts.json", generated_at=NOW)
    return build_message(digest, sender="alerts@example.com", recipients=RULES.recipient_groups["ops"], sent_at=NOW)


@given(hostile_text, hostile_text)
@example("ops\u2028Bcc: attacker@example.com", "team-a")  # a Unicode line break: refused by the email package
@example("=?utf-8?q?Bcc:_attacker@example.com?=", "team-a")  # an encoded word: read as other text before
@example("caf\udce9", "team-a")  # a non-UTF-8 byte as Python decodes it: the message could not be encoded
@example("<img src=x onerror=alert(1)>", '" onmouseover="x')
@example("u" * 3000, "team-a")
@example("\r\nBcc: attacker@example.com", "")  # ": " in the user: the HTML split the scope inside it
def test_any_dimension_value_yields_the_expected_headers_and_escaped_html(user: str, subscription: str) -> None:
    assume(user != "")  # no user dimension: no member of an each:user rule (evaluate.py)
    message = _alert_email(user, subscription)
    received = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert list(received.keys()) == HEADERS
    assert [address.addr_spec for address in received["To"].addresses] == ["ops@example.com", "finops@example.com"]
    assert str(received["From"]) == "alerts@example.com"
    assert received["Subject"] == header_safe(f"[WARNING] user {user}: $5.00 today, over the warning level $1.00")
    html_part = received.get_body(("html",))
    text_part = received.get_body(("plain",))
    assert html_part is not None and text_part is not None
    page, text = html_part.get_content(), text_part.get_content()
    printable = unicode_text(user).replace("\r\n", "\n").replace("\r", "\n")  # MIME text has one line end
    if any(char in printable for char in "<>&\"'"):
        assert str(escape(printable.strip())) in page
    assert "<img src=x" not in page.replace('<img src="cid:', "")
    assert printable.strip()[:50] in text


def test_header_safe_leaves_no_line_break_python_or_a_mail_client_would_split_on() -> None:
    value = "a\r\nb\x0bc\x0cd\x1ce\x1df\x1eg\x85h\u2028i\u2029j\x00k\udcffl"
    assert header_safe(value) == "a b c d e f g h i j k\ufffdl"
    assert len(header_safe(value).splitlines()) == 1
