"""Render a sample alert digest and screenshot it in headless Chromium (Debian's `chromium`).

    python -m tools.screenshot_email [--out .local/email-screenshot] [--eml path/to/message.eml]

Without --eml it builds a realistic digest from hand-made cost data (a critical budget crossing, a
spike, an unpriced model, a resolved notice; one user id is `<img src=x onerror=alert(1)>`). With
--eml it renders a message from the outbox. Writes <out>/alert-email.html (inline images as data:
URIs, as a mail client would show them), <out>/alert-email.txt (the text part) and
<out>/alert-email.png (the screenshot), and prints their paths.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.email.views import DigestView

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
HOSTILE_USER = "<img src=x onerror=alert(1)>"
# The rules file the sample email names: ALERT_RULES_FILE's default, which holds rules of these names.
RULES_FILE = "shared/alerts/alerts.sample.json"


def find_chromium() -> str | None:
    return next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)


def sample_message() -> EmailMessage:
    from shared.email.render import build_message, render

    return build_message(render(sample_view()), sender="alerts@example.com", recipients=["finops@example.com"],
                         sent_at=NOW)  # fmt: skip


def sample_view() -> DigestView:
    """The sample digest's view: what the email, the Teams card and the Slack message of it show."""
    from decimal import Decimal

    from shared.alerts.data import AlertData, Ranges, traffic_frame, usage_frame
    from shared.alerts.digest import digest_view
    from shared.alerts.evaluate import Clock, evaluate
    from shared.alerts.rules import parse_rules
    from shared.alerts.run import _notification
    from shared.alerts.state import AlertRecord
    from shared.alerts.transitions import transition
    from shared.money import to_micros

    rules = parse_rules(
        json.dumps({
            "currency": "USD",
            "recipient_groups": {"finops": ["finops@example.com"]},
            "rules": [
                {"name": "monthly-budget-per-subscription", "kind": "budget", "scope": "each:subscription",
                 "period": "month", "amount": 400, "forecast": False,
                 "description": "chargeback budget agreed with each team"},
                {"name": "user-cost-spike", "kind": "spike", "metric": "cost", "window": "hour", "scope": "each:user",
                 "factor_warning": 3, "factor_critical": 10, "min_value": 1},
                {"name": "unpriced-models", "kind": "unpriced", "scope": "each:model"},
            ],
        }),
        source=RULES_FILE,
    )  # fmt: skip

    def row(at: datetime, cost: str, tokens: int, sub: str, user: str, model: str, unpriced: bool = False) -> list[Any]:
        micros = to_micros(Decimal(cost))
        # A third of each row's tokens came from streamed calls, whose counts APIM estimates.
        return [at, model, model, sub, user, "inference-api", "" if unpriced else "USD", unpriced, 3, tokens, micros,
                tokens // 3, micros // 3]

    usage = []
    for day in range(14):
        at = NOW.replace(hour=9) - timedelta(days=day)
        usage += [row(at, str(12 + day % 5 * 3), 4_000_000, "team-a", "research-analyst-1", "gpt-5.6-sol"),
                  row(at, str(6 + day % 3), 9_000_000, "team-a", HOSTILE_USER, "gpt-5.6-luna"),
                  row(at, "2", 900_000, "team-b", "support-bot", "gpt-5.6-luna")]  # fmt: skip
    spike_at, unpriced_at = NOW.replace(hour=9, minute=30), NOW.replace(hour=8)
    usage += [row(spike_at, "38.5", 9_000_000, "team-a", HOSTILE_USER, "gpt-5.6-sol"),
              row(unpriced_at, "0", 125_000, "team-b", "support-bot", "summarizer-x", unpriced=True)]  # fmt: skip
    data = AlertData(Ranges(NOW - timedelta(days=30), NOW - timedelta(days=30), NOW, NOW), usage_frame(usage),
                     traffic_frame([]))  # fmt: skip
    findings = [f for f in evaluate(rules, data, Clock(NOW, 60)) if f.firing]
    notifications = [_notification(transition(AlertRecord(f.key, f.rule.name, f.member), f, NOW), f) for f in findings]
    ok = next(f for f in evaluate(rules, data, Clock(NOW, 60)) if f.key == "monthly-budget-per-subscription|team-b")
    was_open = AlertRecord(ok.key, ok.rule.name, ok.member, open=True, notified_period=ok.period_key)
    notifications.append(_notification(transition(was_open, ok, NOW), ok))
    return digest_view(notifications, rules_file=RULES_FILE, generated_at=NOW,
                       dashboard_url="https://portal.azure.com/#dashboard")  # fmt: skip


def inline_html(message: EmailMessage) -> tuple[str, str]:
    """The HTML part with cid: images replaced by data: URIs, and the text part."""
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    page = str(html_part.get_content())
    for part in message.walk():
        cid = part["Content-ID"]
        if cid and part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_payload(decode=True)).decode()  # type: ignore[arg-type]
            page = page.replace(f"cid:{str(cid).strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    return page, str(text_part.get_content())


def screenshot(chromium: str, html_file: Path, png_file: Path, width_px: int = 760, height_px: int = 1900) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--window-size={width_px},{height_px}", f"--screenshot={png_file}", html_file.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / ".local" / "email-screenshot")
    parser.add_argument("--eml", type=Path, default=None, help="render this outbox message instead of the sample")
    args = parser.parse_args(argv)
    if args.eml:
        message = email.message_from_bytes(args.eml.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
    else:
        message = sample_message()
    args.out.mkdir(parents=True, exist_ok=True)
    page, text = inline_html(message)
    html_file, text_file, png_file = (args.out / f"alert-email.{ext}" for ext in ("html", "txt", "png"))
    html_file.write_text(page, encoding="utf-8")
    text_file.write_text(f"Subject: {message['Subject']}\n\n{text}", encoding="utf-8")
    chromium = find_chromium()
    if chromium is None:
        print("error: chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    screenshot(chromium, html_file, png_file)
    print(f"subject:    {message['Subject']}\nhtml:       {html_file}\ntext:       {text_file}\nscreenshot: {png_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
