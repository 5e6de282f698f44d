"""The digest email: escaping, text part, inline PNG, screenshot (its ACS delivery: tests/email/test_acs.py)."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import pytest

from shared.email.chart import bar_chart_png
from tools.screenshot_email import HOSTILE_USER, find_chromium, inline_html, main, sample_message


def test_client_values_are_escaped_in_html_and_plain_in_text() -> None:
    message = sample_message()
    page, text = inline_html(message)
    assert HOSTILE_USER not in page and "onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page.replace('<img src="data:image/png', "")
    assert f"user {HOSTILE_USER}: $44.50 in hour 09:00–10:00 UTC" in text
    assert "Top contributors:" in text and "Rule: user-cost-spike in shared/alerts.json" in text
    assert message["Subject"].startswith("[WARNING] ") and "\n" not in message["Subject"]


def test_cost_alerts_say_how_much_rests_on_estimated_tokens() -> None:
    page, text = inline_html(sample_message())
    # The sample's rows have a third of their cost on streamed calls (APIM estimates those).
    note = "33.3% of this rests on estimated tokens: API Management estimates the token counts of streamed calls."
    assert note in text and note in page


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
