"""The digest email laid out: escaping, text part, inline PNG, screenshot (what it says: tests/alerts/test_digest.py;
its ACS delivery: tests/email/test_acs.py)."""

from __future__ import annotations

import email
import email.policy
import io
import struct
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from shared.email.chart import bar_chart_png, value_text
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
    assert "a &lt;b&gt;detail&lt;/b&gt;" in digest.html
    assert 'width="640" height="240" alt="Cost per day, 11-26 to 11-27 (highlighted)"' in digest.html
    assert _png_size(png) == (640, 240)
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


def _pixels(png: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def _count(image: Any, color: tuple[int, int, int], box: tuple[int, int, int, int] | None = None) -> int:
    data = (image.crop(box) if box else image).tobytes()
    return sum(1 for at in range(0, len(data), 3) if tuple(data[at : at + 3]) == color)


LATEST_RGB, BAR_RGB = (0xC4, 0x40, 0x30), (0x78, 0x90, 0xB0)  # chart.py LATEST, BAR


def test_chart_png_has_its_size_the_last_bar_highlighted_and_the_threshold_line() -> None:
    from decimal import Decimal

    labels = ["11-25", "11-26", "11-27"]
    png = bar_chart_png(labels, [Decimal(1), Decimal(0), Decimal(4)], unit="USD", x_label="day (UTC)",
                        reference=Decimal(2), width_px=300, height_px=160)  # fmt: skip
    assert _png_size(png) == (300, 160)
    image = _pixels(png)
    # The last bar (right third) in the highlight colour, the first (left third) in the plain one, no other.
    assert _count(image, LATEST_RGB, (200, 0, 300, 160)) > 100 and _count(image, LATEST_RGB, (0, 0, 200, 160)) == 0
    assert _count(image, BAR_RGB, (0, 0, 150, 160)) > 50
    # The dashed threshold line runs across the plot: one row dark in most of its columns (no text is that wide).
    def dark(x: int, y: int) -> bool:
        return max(image.getpixel((x, y))) < 100

    assert max(sum(dark(x, y) for x in range(70, 290)) for y in range(5, 120)) > 100


def test_chart_png_draws_its_labels() -> None:
    """Axis labels, value labels and the line's name are drawn: changing any of them changes the image."""
    from decimal import Decimal

    def chart(**overrides: Any) -> bytes:
        args: dict[str, Any] = {"unit": "USD", "x_label": "day (UTC)", "reference": Decimal(2)}
        args.update(overrides)
        values = args.pop("values", [Decimal(1), Decimal(3)])
        return bar_chart_png(["11-26", "11-27"], values, **args)

    base = chart()
    assert chart(x_label="hour (UTC)") != base
    assert chart(reference_label="budget") != base
    assert chart(unit="EUR") != base  # the y axis and the values name the currency
    assert chart(values=[Decimal(1), Decimal("3.01")]) != base  # the value label, same bar height to the pixel
    with pytest.raises(ValueError, match="2 labels for 3 values"):
        chart(values=[Decimal(1)] * 3)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (Decimal("12.5"), "USD", "$12.50"), (Decimal("0.004"), "USD", "<$0.01"), (Decimal(0), "USD", "0"),
        (Decimal("1234.5"), "USD", "$1.2k"), (Decimal("2500000"), "tokens", "2.5M"), (Decimal(950), "tokens", "950"),
        (Decimal("3.5"), "CHF", "3.50 CHF"), (Decimal(45_000), "CHF", "45.0k CHF"), (Decimal(7), "JPY", "¥7"),
    ],
)  # fmt: skip
def test_value_labels_are_short_and_say_the_currency(value: Decimal, unit: str, text: str) -> None:
    assert value_text(value, unit) == text


def test_charts_past_the_first_dozen_are_told_in_figures() -> None:
    from decimal import Decimal

    from shared.email.render import CHARTS_PER_EMAIL, render
    from shared.email.views import BarView, ChartView, DigestView, ItemView

    chart = ChartView("cost per day", (BarView("11-26", Decimal(1)), BarView("11-27", Decimal("2.50"))), None,
                      unit="USD", x_label="day (UTC)")  # fmt: skip
    items = tuple(
        ItemView(color="#b45309", badge="WARNING", kind_label="threshold", subject=f"user u{index}: $2.50 today",
                 scope=f"user u{index}", summary="$2.50 today", sentences=(), has_figures=True, window="today",
                 value="$2.50", threshold="$2.00", chart=chart, contributors=(), rule="daily", rule_description="")
        for index in range(CHARTS_PER_EMAIL + 2)
    )  # fmt: skip
    digest = render(DigestView("[WARNING] x", "14 warning", "2026-11-27 10:20 UTC", items, "r.json", ""))
    assert len(digest.images) == CHARTS_PER_EMAIL
    assert digest.html.count('src="cid:') == CHARTS_PER_EMAIL
    assert digest.html.count("cost per day: 11-26 1  11-27 2.5</div>") == 2
    assert digest.text.count("  cost per day:\n    11-26 1  11-27 2.5") == CHARTS_PER_EMAIL + 2


def test_rendered_email_screenshot_in_headless_chromium(tmp_path: Path) -> None:
    if find_chromium() is None:
        message = "CHROMIUM IS NOT INSTALLED: the email screenshot check did NOT run (apt-get install -y chromium)"
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    assert main(["--out", str(tmp_path)]) == 0
    png = (tmp_path / "alert-email.png").read_bytes()
    print(f"alert email screenshot: {tmp_path / 'alert-email.png'}")
    assert _png_size(png) == (760, 1900)
    assert len(png) > 20_000  # a rendered page, not a blank one
    # The sample's charts are on the page, drawn at their size: each 640 x 240 PNG, the fired bar highlighted.
    message = sample_message()
    charts = [part.get_payload(decode=True) for part in message.walk() if part.get_content_type() == "image/png"]
    assert len(charts) == 3 and all(_png_size(chart) == (640, 240) for chart in charts)  # type: ignore[arg-type]
    page, _ = inline_html(message)
    assert page.count('width="640" height="240" alt="cost per') == 2 and 'alt="tokens per day' in page
    assert _count(_pixels(png), LATEST_RGB) > 2_000  # highlighted bars visible in the screenshot


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
    # An attribute value stays one value.
    assert 'alt="x&#34; onmouseover=&#39;alert(2)&#39; y=&#34;, &lt;i&gt;x&#34; onmouseover=' in page
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
