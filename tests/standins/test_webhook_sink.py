"""The webhook sink stand-in (standins/webhook_sink.py) answers as the receivers do and keeps what it accepted.

Slack's refusals and the retry faults are exercised through the channels in tests/channels/test_delivery.py."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from standins._server import RunningHttpsService
from standins.tls import ensure_tls
from standins.webhook_sink import WebhookSinkConfig, WebhookSinkService, sink_settings, start_webhook_sink
from tests.support.loop import LoopThread


@pytest.fixture
def sink(loop_thread: LoopThread, tmp_path: Path) -> Iterator[RunningHttpsService[WebhookSinkService]]:
    ensure_tls(tmp_path / "tls")
    running = loop_thread.run(start_webhook_sink(WebhookSinkConfig(tmp_path / "webhooks", tmp_path / "tls")))
    yield running
    loop_thread.run(running.stop())


def post(sink: RunningHttpsService[WebhookSinkService], path: str, body: bytes) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(sink.ca_path))
    request = urllib.request.Request(f"{sink.url}{path}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_teams_takes_any_json_with_202_and_notes_a_message_teams_would_not_post(
    sink: RunningHttpsService[WebhookSinkService],
) -> None:
    assert post(sink, "/teams/ops", json.dumps({"text": "hello"}).encode()) == (202, "")
    [received] = sink.service.received("teams")
    problem = received.path.with_name(received.path.name.replace(".json", ".problem"))
    assert problem.read_text() == "no attachments: the flow posts no card\n"
    assert received.path.parent == sink.service.config.directory / "teams" / "ops"
    assert post(sink, "/teams/ops", b"<html>") == (400, "")


def test_a_fault_answers_without_keeping_anything_and_unknown_routes_are_404(
    sink: RunningHttpsService[WebhookSinkService],
) -> None:
    sink.service.fail_next("webhook", 503)
    assert post(sink, "/webhook/ops", b"{}") == (503, "")
    assert post(sink, "/webhook/ops", b"{}") == (200, "")
    assert len(sink.service.received("webhook")) == 1
    assert post(sink, "/pager/ops", b"{}") == (404, "")
    assert post(sink, "/slack/a%20b", b"{}") == (404, "no_service")  # a name the sink does not serve


def test_the_sample_settings_are_pointed_at_the_running_sink() -> None:
    values = {"A": "https://127.0.0.1:7806/teams/finops", "B": "https://hooks.slack.com/x", "C": ""}
    assert sink_settings(values, "https://127.0.0.1:7806/", "https://127.0.0.1:40123/") == {
        "A": "https://127.0.0.1:40123/teams/finops"
    }
