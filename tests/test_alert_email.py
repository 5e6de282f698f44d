"""The digest email: escaping, text part, inline PNG, Communication Services request (local fake), screenshot."""

from __future__ import annotations

import json
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared.email_chart import bar_chart_png
from shared.email_delivery import AcsEmailTransport, EmailDeliveryError, acs_request_body
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
    from shared.email_render import header_safe

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


class _FakeAcs(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []  # noqa: RUF012 - shared by the test's handler instances
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(400 if type(self).fail else 202)
        self.send_header("Operation-Location", f"http://127.0.0.1:{self.server.server_port}/emails/operations/1")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"id": "1", "status": "Running"}).encode())

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"id": "1", "status": "Succeeded"}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_acs() -> Iterator[str]:
    _FakeAcs.requests, _FakeAcs.fail = [], False
    server = HTTPServer(("127.0.0.1", 0), _FakeAcs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_communication_services_request_against_a_local_fake(fake_acs: str) -> None:
    """Only a local fake: the real service cannot be reached from here (request shape per its REST docs)."""
    credential = SimpleNamespace(get_token=lambda scope: SimpleNamespace(token=f"token-for-{scope}"))
    transport = AcsEmailTransport(fake_acs, "DoNotReply@contoso.test", credential, sleep=lambda _: None)  # type: ignore[arg-type]
    message = sample_message()
    transport.send(message, ["finops@example.com"])
    [request] = _FakeAcs.requests
    assert request["path"] == "/emails:send?api-version=2024-07-01-preview"
    assert request["headers"]["Authorization"] == "Bearer token-for-https://communication.azure.com/.default"
    body = request["body"]
    assert body["senderAddress"] == "DoNotReply@contoso.test"
    assert body["recipients"] == {"to": [{"address": "finops@example.com"}]}
    assert body["content"]["subject"] == message["Subject"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in body["content"]["html"]
    assert all(a["contentType"] == "image/png" and a["contentId"] in body["content"]["html"]
               for a in body["attachments"])  # fmt: skip
    assert body == acs_request_body(message, "DoNotReply@contoso.test", ["finops@example.com"])
    _FakeAcs.fail = True
    with pytest.raises(EmailDeliveryError, match="HTTP 400"):
        transport.send(message, ["finops@example.com"])


def test_rendered_email_screenshot_in_headless_chromium(tmp_path: Path) -> None:
    if find_chromium() is None:
        message = "CHROMIUM IS NOT INSTALLED: the email screenshot check did NOT run (apt-get install -y chromium)"
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    assert main(["--out", str(tmp_path)]) == 0
    png = (tmp_path / "alert-email.png").read_bytes()
    assert _png_size(png) == (760, 1900)
    assert len(png) > 20_000  # a rendered page, not a blank one
