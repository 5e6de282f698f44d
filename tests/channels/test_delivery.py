"""Delivering to the webhook receivers (shared/channels/transports.py, post.py), over HTTPS to the local webhook
sink (standins/webhook_sink.py) as the receivers answer: a signature a receiver verifies with Standard Webhooks'
own library, retries with backoff on 429 / 5xx honouring Retry-After, no retry where it cannot help, and the URL
(a secret) never in an error."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.azure_retry import retry_after_seconds
from shared.channels.payloads import Delivery, NotificationRef
from shared.channels.post import RetryPolicy
from shared.channels.transports import WebhookChannel, secret_key
from shared.errors import DeliveryError
from standins._server import RunningHttpsService
from standins.tls import ensure_tls
from standins.webhook_sink import WebhookSinkConfig, WebhookSinkService, start_webhook_sink
from tests.support.loop import LoopThread
from tools.screenshot_email import sample_view

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
DELIVERY = Delivery(
    "alerts.run1.abc@example.com", "finops", sample_view(), (NotificationRef("r|", "2026-11", "80%", "fired"),)
)
Sink = RunningHttpsService[WebhookSinkService]


@pytest.fixture
def sink(loop_thread: LoopThread, tmp_path: Path) -> Iterator[RunningHttpsService[WebhookSinkService]]:
    ensure_tls(tmp_path / "tls")
    running = loop_thread.run(start_webhook_sink(WebhookSinkConfig(tmp_path / "webhooks", tmp_path / "tls")))
    yield running
    loop_thread.run(running.stop())


def channel(sink: Sink, kind: str, sleeps: list[float], **fields: object) -> WebhookChannel:
    return WebhookChannel(
        kind, f"ALERT_{kind.upper()}_FINOPS_URL", f"{sink.url}/{kind}/finops",
        secret_key(SECRET) if kind == "webhook" else None, str(sink.ca_path), sleep=sleeps.append, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_receiver_verifies_the_generic_webhook_with_the_standard_webhooks_library(
    sink: RunningHttpsService[WebhookSinkService],
) -> None:
    channel(sink, "webhook", []).send(DELIVERY)
    [received] = sink.service.received("webhook")
    assert received.path.read_bytes() == received.body  # kept as received, headers beside it
    headers = json.loads(received.path.with_name(received.path.name.replace(".json", ".headers.json")).read_text())
    assert Webhook(SECRET).verify(received.body, headers)["id"] == DELIVERY.id
    named = {name.lower(): value for name, value in headers.items()}  # header names are case-insensitive
    assert named["webhook-id"] == named["idempotency-key"] == DELIVERY.id
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(received.body.replace(b"finops", b"fin0ps"), headers)  # tampered on the way
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(received.body, headers)  # another secret


def test_teams_gets_202_and_slack_ok_and_both_are_kept_by_the_sink(sink: Sink) -> None:
    channel(sink, "teams", []).send(DELIVERY)
    channel(sink, "slack", []).send(DELIVERY)
    [teams], [slack] = sink.service.received("teams"), sink.service.received("slack")
    assert json.loads(teams.body)["attachments"][0]["content"]["type"] == "AdaptiveCard"
    assert not list(teams.path.parent.glob("*.problem"))  # the flow would post it
    assert json.loads(slack.body)["blocks"][0]["type"] == "header"
    assert teams.path.parent == sink.service.config.directory / "teams" / "finops"


def test_429_and_503_are_retried_waiting_retry_after_or_backing_off(sink: Sink) -> None:
    sleeps: list[float] = []
    sink.service.fail_next("slack", 429, retry_after="7", body="rate_limited")
    sink.service.fail_next("slack", 503)
    channel(sink, "slack", sleeps).send(DELIVERY)
    assert sleeps == [7.0, 2.0]  # Retry-After first; then the backoff of the second attempt (1 s doubled)
    assert len(sink.service.received("slack")) == 1

    sleeps.clear()
    sink.service.fail_next("teams", 500, count=3)
    failed = r"teams channel of group finops \(ALERT_TEAMS_FINOPS_URL\): HTTP 500 after 3"
    with pytest.raises(DeliveryError, match=failed):
        channel(sink, "teams", sleeps).send(DELIVERY)
    assert sleeps == [1.0, 2.0] and sink.service.received("teams") == []


def test_a_wait_past_the_run_or_a_final_answer_is_left_to_the_next_run(
    sink: RunningHttpsService[WebhookSinkService],
) -> None:
    sleeps: list[float] = []
    sink.service.fail_next("webhook", 429, retry_after="3600")
    with pytest.raises(DeliveryError, match="Retry-After 3600s is past this run"):
        channel(sink, "webhook", sleeps).send(DELIVERY)
    sink.service.fail_next("slack", 404, body="no_service")
    with pytest.raises(DeliveryError, match="HTTP 404: no_service") as error:
        channel(sink, "slack", sleeps).send(DELIVERY)
    assert sleeps == [] and sink.url not in str(error.value)  # the URL is a secret: the setting is named instead
    # A 200 that is not Slack's "ok" is no delivery.
    sink.service.fail_next("slack", 200, body="invalid_token")
    with pytest.raises(DeliveryError, match="'invalid_token', not \"ok\""):
        channel(sink, "slack", sleeps, policy=RetryPolicy(attempts=1)).send(DELIVERY)


def test_the_sink_refuses_what_slack_refuses(sink: RunningHttpsService[WebhookSinkService]) -> None:
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=str(sink.ca_path))
    for body, answer in ((b"not json", "invalid_payload"), (b"{}", "no_text"),
                         (json.dumps({"blocks": [{"type": "section"}] * 51}).encode(), "invalid_blocks")):  # fmt: skip
        request = urllib.request.Request(f"{sink.url}/slack/finops", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, context=context, timeout=10)
        assert (refused.value.code, refused.value.read().decode()) == (400, answer)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert retry_after_seconds({"Retry-After": "120"}, now) == 120.0
    assert retry_after_seconds({"Retry-After": "Fri, 27 Nov 2026 10:00:30 GMT"}, now) == 30.0
    assert retry_after_seconds({"Retry-After": "Fri, 27 Nov 2026 09:00:00 GMT"}, now) == 0.0  # already past
    assert retry_after_seconds({"Retry-After": "soon"}, now) is None and retry_after_seconds({}, now) is None
    assert now + timedelta(seconds=retry_after_seconds({"Retry-After": "5"}, now) or 0) > now


@pytest.mark.parametrize("secret", ["plain", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()])
def test_a_signing_secret_that_is_not_a_standard_webhooks_key_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        secret_key(secret)
