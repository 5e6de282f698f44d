"""The digest email laid out: escaping, text part, inline PNG, screenshot (what it says: tests/alerts/test_digest.py;
its ACS delivery: tests/email/test_acs.py)."""

from __future__ import annotations

import email
import email.policy
import struct
import subprocess
import sys
import warnings
import zlib
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from shared.email.chart import bar_chart_png
from tests import ROOT
from tools.screenshot_email import HOSTILE_USER, find_chromium, inline_html, main, sample_message


def test_client_values_are_escaped_in_html_and_plain_in_text() -> None:
    message = sample_message()
    page, text = inline_html(message)
    assert HOSTILE_USER not in page and "onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page.replace('<img src="data:image/png', "")
    assert f"user {HOSTILE_USER}: $44.50 in hour 09:00–10:00 UTC" in text
    assert "\n" not in message["Subject"]


def test_a_digest_view_renders_without_anything_from_alerts() -> None:
    """email/ lays out plain views: strings, numbers and bars in, HTML, text and one PNG per chart out."""
    from decimal import Decimal

    from shared.email.render import render
    from shared.email.views import BarView, ChartView, ContributorView, DigestView, ItemView

    chart = ChartView("Cost per day", (BarView("11-26", Decimal(1)), BarView("11-27", Decimal("2.50"))), Decimal(2))
    item = ItemView(
        color="#b45309", badge="WARNING", kind_label="threshold", subject="all traffic: $2.50 today",
        scope="all traffic", summary="$2.50 today", sentences=("a <b>detail</b>",), has_figures=True,
        window="today", value="$2.50", threshold="$2.00", chart=chart,
        contributors=(ContributorView("user", "bob", "$2.50", "100"),), rule="daily", rule_description="",
    )  # fmt: skip
    view = DigestView("[WARNING] all traffic: $2.50 today", "1 warning", "2026-11-27 10:20 UTC", (item,), "r.json", "")
    digest = render(view)
    assert digest.subject == view.subject and len(digest.images) == 1
    cid, png = digest.images[0]
    assert f'src="cid:{cid}"' in digest.html and png.startswith(b"\x89PNG")
    assert "a &lt;b&gt;detail&lt;/b&gt;" in digest.html and "<td>11-26</td>" in digest.html
    assert "11-27 (highlighted)" in digest.html
    assert digest.text == (
        "AI gateway cost alerts, 2026-11-27 10:20 UTC: 1 warning\n\n"
        "[WARNING] all traffic: $2.50 today\n  a <b>detail</b>\n  Window:    today\n  Value:     $2.50\n"
        "  Threshold: $2.00\n  Top contributors:\n    user         bob  $2.50 (100%)\n  Cost per day:\n"
        "    11-26 1  11-27 2.5\n  Rule: daily in r.json\n\nChange or silence a rule in r.json.\n"
    )


def test_control_characters_never_reach_a_header() -> None:
    from shared.email.render import header_safe

    assert header_safe("team-a\r\nBcc: x@evil.test") == "team-a Bcc: x@evil.test"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_chart_png_decodes_and_highlights_the_last_bar() -> None:
    from decimal import Decimal

    png = bar_chart_png([Decimal(1), Decimal(0), Decimal(4)], width_px=30, height_px=10, reference=Decimal(2))
    assert _png_size(png) == (30, 10)
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    rows = zlib.decompress(idat)
    assert len(rows) == 10 * (1 + 30 * 3)
    bottom_row = rows[8 * 91 + 1 : 9 * 91]
    assert bottom_row[25 * 3 : 25 * 3 + 3] == bytes((196, 64, 48))  # last bar: highlighted colour


def test_rendered_email_screenshot_in_headless_chromium(tmp_path: Path) -> None:
    if find_chromium() is None:
        message = "CHROMIUM IS NOT INSTALLED: the email screenshot check did NOT run (apt-get install -y chromium)"
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    assert main(["--out", str(tmp_path)]) == 0
    png = (tmp_path / "alert-email.png").read_bytes()
    assert _png_size(png) == (760, 1900)
    assert len(png) > 20_000  # a rendered page, not a blank one


HOSTILE_NAME = "<script>alert(1)</script>"
QUOTES = "x\" onmouseover='alert(2)' y=\""
LONG_NAME = "team-" + "very-long-subscription-name-" * 40  # 1,125 characters
NOW_FOR_RENDER = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)


def _hostile_digest_message() -> EmailMessage:
    """A digest whose client-controlled values (user, subscription, rule text, chart labels,
    dashboard URL, rules file) carry markup, quotes for attributes, ampersands and a very long name."""
    from decimal import Decimal

    from shared.alerts.digest import render_digest
    from shared.alerts.findings import ChartBar, Contributor, Finding, Notification
    from shared.alerts.rules import Rule
    from shared.email.render import build_message

    rule = Rule(name="r&d-budget", kind="threshold", recipients="finops", description=f"for {HOSTILE_NAME} & co")
    finding = Finding(
        rule=rule, member=HOSTILE_NAME, scope_label=f"user {HOSTILE_NAME}", period_key="2026-11-27",
        window_label="today & <b>tomorrow</b>", level="warning", rank=1, severity="warning", value=Decimal(5),
        threshold=Decimal(1), unit="USD", summary="$5.00 today", detail=f"detail {QUOTES}",
        contributors=(Contributor("subscription", f"<b>{LONG_NAME}</b>", Decimal(5), Decimal(100)),
                      Contributor("user", QUOTES, Decimal(1), Decimal(20))),
        chart=(ChartBar(f"<i>{QUOTES}</i>", Decimal(1)), ChartBar("a&b", Decimal(5))), chart_title=QUOTES,
    )  # fmt: skip
    notification = Notification(
        kind="fired", key=finding.key, rule_name=rule.name, scope_label=finding.scope_label, period_key="2026-11-27",
        level="warning", severity="warning", finding=finding,
        subject=f"user {HOSTILE_NAME} {LONG_NAME}\r\nBcc: x@evil.test: $5.00 today",
    )  # fmt: skip
    digest = render_digest(
        [notification], rules_file="alerts&<rules>.json", generated_at=NOW_FOR_RENDER,
        dashboard_url=f"https://portal.azure.com/#x?a=1&b={QUOTES}<",
    )  # fmt: skip
    return build_message(digest, sender="alerts@example.com", recipients=["finops@example.com"], sent_at=NOW_FOR_RENDER)


def test_hostile_values_arrive_escaped_in_html_and_verbatim_in_text() -> None:
    message = _hostile_digest_message()
    # What a recipient's client parses: the message as sent, read back.
    received = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    page, text = inline_html(received)
    # No value becomes markup: no script element, no attribute broken out of its quotes.
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onmouseover='" not in page and "onmouseover=&#39;alert(2)&#39;" in page
    assert 'x" onmouseover' not in page and "x&#34; onmouseover" in page
    assert 'alt="x&#34; onmouseover=&#39;alert(2)&#39; y=&#34;"' in page  # an attribute value stays one value
    assert "<b>" not in page and "<i>" not in page and f"&lt;b&gt;{LONG_NAME}&lt;/b&gt;" in page
    assert "r&amp;d-budget" in page and "alerts&amp;&lt;rules&gt;.json" in page and "a&amp;b (highlighted)" in page
    assert "today &amp; &lt;b&gt;tomorrow&lt;/b&gt;" in page and "for &lt;script&gt;" in page
    assert 'href="https://portal.azure.com/#x?a=1&amp;b=x&#34; onmouseover=&#39;alert(2)&#39; y=&#34;&lt;"' in page
    # The only links and images are the template's own (the dashboard link, the one chart).
    assert page.count("<a ") == 1 and page.count("<img ") == 1
    # The text part is plain text: the values exactly as they are, no entities.
    assert f"<b>{LONG_NAME}</b>" in text and QUOTES in text and "Rule: r&d-budget in alerts&<rules>.json" in text
    assert "&lt;" not in text and "&amp;" not in text and "&#" not in text
    # The subject: no header injected, the long name folded and unfolded intact.
    subject = received["Subject"]
    assert "\n" not in subject and "\r" not in subject and received["Bcc"] is None
    assert subject == f"[WARNING] user {HOSTILE_NAME} {LONG_NAME} Bcc: x@evil.test: $5.00 today"
    assert received["To"] == "finops@example.com"


def test_jinja2_is_imported_on_the_first_render_not_at_import() -> None:
    code = (
        "import sys, shared.email.render, shared.alerts.digest, shared.alerts.run\n"
        "assert 'jinja2' not in sys.modules, 'imported at import time'\n"
        "from tools.screenshot_email import sample_message\n"
        "sample_message()\n"
        "assert 'jinja2' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_name_missing_from_the_template_context_fails_the_render() -> None:
    import jinja2

    from shared.email.render import _templates

    with pytest.raises(jinja2.UndefinedError, match="counts"):
        _templates().get_template("alert_digest.html").render(title="t")
