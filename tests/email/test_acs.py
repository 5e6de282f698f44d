"""Communication Services email: the SDK-based transport against the ACS stand-in, over HTTPS with a
managed-identity token from the identity stand-in, as the app runs with ALERT_DELIVERY=acs."""

from __future__ import annotations

import base64
import copy
import email
import email.policy
import secrets
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken, TokenCredential
from azure.identity import ManagedIdentityCredential

from shared.email.acs import AcsEmailTransport, acs_operation_id, acs_request_body
from shared.errors import DeliveryError
from standins._server import free_port
from standins.acs_email import (
    ACS_AUDIENCE,
    VALIDATE_MESSAGE_ID,
    AcsRequestError,
    RunningAcsEmail,
    validate_message,
)
from standins.identity import TokenSigner
from tests.support.acs import SENDER, Identity
from tools.screenshot_email import HOSTILE_USER, sample_message

RECIPIENT = "finops@example.com"
GA_API_VERSION = "2025-09-01"


@pytest.fixture
def acs(make_acs: Callable[..., RunningAcsEmail]) -> RunningAcsEmail:
    return make_acs()


def _transport(acs: RunningAcsEmail, credential: TokenCredential | None = None, **options: Any) -> AcsEmailTransport:
    return AcsEmailTransport(acs.url, SENDER, credential or ManagedIdentityCredential(), str(acs.ca_path), **options)


def _read(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _inline_images(message: EmailMessage) -> dict[str, bytes]:
    images = {}
    for part in message.walk():
        if part["Content-ID"]:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            images[str(part["Content-ID"]).strip("<>")] = payload
    return images


def test_send_writes_one_email_with_subject_text_html_and_inline_image(acs: RunningAcsEmail) -> None:
    message = sample_message()
    _transport(acs).send(message, [RECIPIENT])

    [stored] = acs.service.messages()
    sent = _read(stored)
    # A long subject is folded right after "Subject:"; CPython's parser keeps that fold's space.
    assert sent["Subject"].lstrip() == message["Subject"]
    assert sent["From"] == SENDER and sent["To"] == RECIPIENT and sent["X-Envelope-To"] == RECIPIENT
    assert sent["Auto-Submitted"] == "auto-generated"  # a custom header travels in the body's headers
    text, html = sent.get_body(("plain",)), sent.get_body(("html",))
    assert text is not None and html is not None
    assert f"user {HOSTILE_USER}: $44.50" in text.get_content()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html.get_content() and HOSTILE_USER not in html.get_content()
    images = _inline_images(sent)
    assert images == _inline_images(message) and images  # the same PNG bytes under the same Content-IDs
    assert all(f"cid:{cid}" in html.get_content() for cid in images)
    # The SDK named the operation after the message and used the GA api-version.
    [operation] = acs.service.operations.values()
    assert operation.id == acs_operation_id(message) and operation.api_version == GA_API_VERSION
    assert operation.polls_left == 0  # polled through Running to Succeeded


def test_a_retried_message_is_one_email(acs: RunningAcsEmail) -> None:
    message = sample_message()
    transport = _transport(acs)
    transport.send(message, [RECIPIENT])
    transport.send(message, [RECIPIENT])  # e.g. the first answer was lost: same Operation-Id, same body
    assert len(acs.service.messages()) == 1 and len(acs.service.operations) == 1
    transport.send(sample_message(), [RECIPIENT])  # another message is another email
    assert len(acs.service.messages()) == 2


def test_an_operation_id_reused_for_another_request_is_refused(acs: RunningAcsEmail) -> None:
    first = sample_message()
    other = copy.deepcopy(first)
    other.replace_header("Subject", "something else")  # same Message-ID, so same Operation-Id
    transport = _transport(acs)
    transport.send(first, [RECIPIENT])
    with pytest.raises(DeliveryError, match=r"HTTP 400 BadRequest: Operation-Id .* different request"):
        transport.send(other, [RECIPIENT])
    assert len(acs.service.messages()) == 1


def test_throttling_429_waits_retry_after_then_succeeds(acs: RunningAcsEmail) -> None:
    acs.service.refuse_next_send(429, retry_after_seconds=2)
    started = time.monotonic()
    _transport(acs).send(sample_message(), [RECIPIENT])
    assert time.monotonic() - started >= 2.0  # azure-core's RetryPolicy honoured Retry-After
    assert len(acs.service.messages()) == 1


def test_a_503_on_send_is_retried_by_the_sdk(acs: RunningAcsEmail) -> None:
    acs.service.refuse_next_send(503)
    _transport(acs).send(sample_message(), [RECIPIENT])
    assert len(acs.service.messages()) == 1


def test_a_failed_operation_raises_naming_the_error(acs: RunningAcsEmail) -> None:
    acs.service.fail_next_operation()
    message = sample_message()
    with pytest.raises(DeliveryError) as caught:
        _transport(acs).send(message, [RECIPIENT])
    assert str(caught.value) == (
        f"Communication Services email operation {acs_operation_id(message)} Failed: "
        "EmailDropped: Email was dropped after several attempts to deliver."
    )
    assert acs.service.messages() == []


def test_an_operation_still_running_at_the_deadline_is_an_error(make_acs: Callable[..., RunningAcsEmail]) -> None:
    acs = make_acs(running_polls=100)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"still Running after 1.5 s; it may still be sent"):
        _transport(acs, timeout_seconds=1.5).send(sample_message(), [RECIPIENT])
    assert time.monotonic() - started < 5


class _StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.mark.parametrize(
    ("token_for", "reason"),
    [
        (lambda secret: "", "no bearer token"),
        (lambda secret: TokenSigner(secrets.token_hex(32)).issue(ACS_AUDIENCE)[0], "signature is invalid"),
        (lambda secret: TokenSigner(secret).issue("https://monitor.azure.com")[0], "is not Communication Services"),
    ],
    ids=["empty", "foreign", "wrong-audience"],
)
def test_a_request_without_a_valid_token_is_401(
    acs: RunningAcsEmail, identity: Identity, token_for: Callable[[str], str], reason: str
) -> None:
    credential = _StaticToken(token_for(identity.secret))
    with pytest.raises(DeliveryError, match=rf"HTTP 401 Unauthorized: .*{reason}"):
        _transport(acs, credential).send(sample_message(), [RECIPIENT])  # type: ignore[arg-type]
    assert acs.service.messages() == []


def test_raw_rest_shape_auth_and_api_version(acs: RunningAcsEmail, identity: Identity) -> None:
    body = acs_request_body(sample_message(), SENDER, [RECIPIENT])
    token = TokenSigner(identity.secret).issue(ACS_AUDIENCE + "/")[0]  # what the SDK's scope yields

    def call(method: str, url: str, params: dict[str, str], token: str = token) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        json_body = body if method == "POST" else None
        return requests.request(method, url, params=params, json=json_body, headers=headers,
                                verify=str(acs.ca_path), timeout=10)  # fmt: skip

    send = f"{acs.url}/emails:send"
    unauthenticated = call("POST", send, {"api-version": GA_API_VERSION}, token="")
    assert unauthenticated.status_code == 401 and "WWW-Authenticate" in unauthenticated.headers
    for params, code in (({}, "MissingApiVersionParameter"), ({"api-version": "2021-10-01-preview"}, "Unsupported")):
        refused = call("POST", send, params)
        assert refused.status_code == 400 and refused.json()["error"]["code"].startswith(code)
        assert refused.headers["x-ms-error-code"] == refused.json()["error"]["code"]
    accepted = call("POST", send, {"api-version": GA_API_VERSION})
    assert accepted.status_code == 202
    operation_id = accepted.json()["id"]
    assert accepted.json() == {"id": operation_id, "status": "Running"}  # a service-made id without Operation-Id
    monitor = accepted.headers["Operation-Location"]
    assert monitor == f"{acs.url}/emails/operations/{operation_id}?api-version={GA_API_VERSION}"
    assert accepted.headers["Retry-After"] == "1"
    polls = [call("GET", monitor, {}) for _ in range(2)]
    assert [poll.json() for poll in polls] == [
        {"id": operation_id, "status": "Running"},
        {"id": operation_id, "status": "Succeeded"},
    ]
    assert "Retry-After" in polls[0].headers and "Retry-After" not in polls[1].headers
    unknown = call("GET", f"{acs.url}/emails/operations/{uuid.uuid4()}", {"api-version": GA_API_VERSION})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"


def test_connection_failures_are_delivery_errors(acs: RunningAcsEmail) -> None:
    closed = AcsEmailTransport(f"https://127.0.0.1:{free_port()}", SENDER, _StaticToken("t"), str(acs.ca_path))  # type: ignore[arg-type]
    with pytest.raises(DeliveryError, match="ServiceRequestError"):
        closed.send(sample_message(), [RECIPIENT])
    plain_http = AcsEmailTransport(acs.url.replace("https", "http"), SENDER, _StaticToken("t"))  # type: ignore[arg-type]
    with pytest.raises(DeliveryError, match="non-TLS"):  # azure-core never sends a token over http
        plain_http.send(sample_message(), [RECIPIENT])


def _valid_body() -> dict[str, Any]:
    return {
        "senderAddress": SENDER,
        "recipients": {"to": [{"address": RECIPIENT}]},
        "content": {"subject": "s", "plainText": "t", "html": "<p>h</p>"},
        "attachments": [
            {"name": "a.png", "contentType": "image/png", "contentInBase64": base64.b64encode(b"x").decode(),
             "contentId": "chart0"},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (lambda b: b.pop("senderAddress"), "BadRequest", "senderAddress is required"),
        (lambda b: b.update(senderAddress="alerts@elsewhere.test"), "DomainNotLinked", "has not been linked"),
        (lambda b: b["recipients"].update(to=[]), "BadRequest", "recipients.to is required"),
        (lambda b: b["recipients"]["to"][0].update(address="not-an-address"), "BadRequest", "not a valid email"),
        (lambda b: b["recipients"].update(bcc=[{"address": f"u{i}@x.test"} for i in range(50)]), "BadRequest",
         "at most 50"),
        (lambda b: b["content"].pop("subject"), "BadRequest", "content.subject is required"),
        (lambda b: b.update(headers={"X-Evil": "a\r\nBcc: x@y.test"}), "BadRequest", "single-line"),
        (lambda b: b["attachments"][0].update(contentInBase64="***"), "BadRequest", "not valid base64"),
        (lambda b: b["attachments"].append(dict(b["attachments"][0])), "BadRequest", "is a duplicate"),
    ],
    ids=["no-sender", "unlinked-domain", "no-to", "bad-address", "too-many", "no-subject", "header-newline",
         "bad-base64", "duplicate-content-id"],
)  # fmt: skip
def test_invalid_messages_are_400(change: Callable[[dict[str, Any]], Any], code: str, message: str) -> None:
    body = _valid_body()
    change(body)
    with pytest.raises(AcsRequestError) as caught:
        validate_message(body, GA_API_VERSION, ("contoso.test",), ignore_duplicate_content_ids=False)
    assert (caught.value.status, caught.value.code) == (400, code) and message in caught.value.message


def test_content_id_needs_an_api_version_that_has_it_and_duplicates_can_be_allowed() -> None:
    with pytest.raises(AcsRequestError, match="not part of api-version 2023-03-31"):
        validate_message(_valid_body(), "2023-03-31", ("contoso.test",), ignore_duplicate_content_ids=False)
    body = _valid_body()
    body["attachments"].append(dict(body["attachments"][0]))
    validate_message(body, GA_API_VERSION, ("contoso.test",), ignore_duplicate_content_ids=True)


# -- a later attempt at an email that may be out (a run ended between acceptance and its state write) -----------


def test_the_email_reaches_recipients_under_its_own_message_id(acs: RunningAcsEmail) -> None:
    message = sample_message()
    _transport(acs).send(message, [RECIPIENT])
    [stored] = acs.service.messages()
    assert _read(stored)["Message-ID"] == message["Message-ID"]  # what a resend carries too, as over SMTP


def test_a_later_attempt_after_one_that_went_out_sends_nothing(acs: RunningAcsEmail) -> None:
    message, transport = sample_message(), _transport(acs)
    transport.send(message, [RECIPIENT])  # attempt 1 went out; its run ended before recording it
    transport.send(message, [RECIPIENT], attempt=2)  # the next run's attempt reads attempt 1's operation first
    assert len(acs.service.messages()) == 1
    assert list(acs.service.operations) == [acs_operation_id(message)]


def test_a_later_attempt_after_a_failed_one_is_sent_as_an_operation_of_its_own(acs: RunningAcsEmail) -> None:
    message, transport = sample_message(), _transport(acs)
    acs.service.fail_next_operation()
    with pytest.raises(DeliveryError, match="Failed: EmailDropped"):
        transport.send(message, [RECIPIENT])
    transport.send(message, [RECIPIENT], attempt=2)
    assert len(acs.service.messages()) == 1
    # A failed operation's id is never reused (a changed request under it would be a 400).
    assert list(acs.service.operations) == [acs_operation_id(message), acs_operation_id(message, 2)]
    assert acs_operation_id(message, 2) != acs_operation_id(message)


def test_a_later_attempt_after_one_that_never_reached_the_service_sends(acs: RunningAcsEmail) -> None:
    message = sample_message()
    _transport(acs).send(message, [RECIPIENT], attempt=3)  # attempts 1 and 2 ended before their POST: 404 each
    assert len(acs.service.messages()) == 1 and list(acs.service.operations) == [acs_operation_id(message, 3)]


def test_a_later_attempt_waits_for_an_earlier_one_still_running(make_acs: Callable[..., RunningAcsEmail]) -> None:
    acs = make_acs(running_polls=2)  # each status read says Running twice (Retry-After 1 s), then Succeeded
    message = sample_message()
    with pytest.raises(DeliveryError, match=r"still Running after 0\.5 s; it may still be sent"):
        _transport(acs, timeout_seconds=0.5).send(message, [RECIPIENT])
    started = time.monotonic()
    _transport(acs).send(message, [RECIPIENT], attempt=2)
    assert time.monotonic() - started >= 1.0  # waited out the service's Retry-After
    assert len(acs.service.messages()) == 1 and len(acs.service.operations) == 1


def test_the_stand_in_keeps_a_valid_message_id_replaces_an_invalid_one_and_can_refuse_both_ways(
    acs: RunningAcsEmail, identity: Identity
) -> None:
    """learn.microsoft.com/azure/communication-services/concepts/email/email-headers: the customer's internet
    message ID is used when valid (<guid@domain.com>), else removed and made by the service; with
    x-ms-acsemail-validate-message-id: true an invalid or duplicate one is a Bad Request."""
    token = TokenSigner(identity.secret).issue(ACS_AUDIENCE + "/")[0]

    def post(headers: dict[str, str]) -> requests.Response:
        body = _valid_body() | {"headers": headers}
        return requests.post(f"{acs.url}/emails:send", params={"api-version": GA_API_VERSION}, json=body,
                             headers={"Authorization": f"Bearer {token}"}, verify=str(acs.ca_path),
                             timeout=10)  # fmt: skip

    assert post({"Message-ID": "<alerts.run-1@contoso.test>"}).status_code == 202
    assert post({"Message-ID": "alerts.run-2@contoso.test"}).status_code == 202  # no angle brackets: replaced
    kept, replaced = (_read(path)["Message-ID"] for path in acs.service.messages())
    assert kept == "<alerts.run-1@contoso.test>" and replaced != "alerts.run-2@contoso.test"
    validate = {VALIDATE_MESSAGE_ID: "true"}
    for message_id, reason in (("<guid.domain>", "not a valid"), ("<alerts.run-1@contoso.test>", "duplicate")):
        refused = post({"Message-ID": message_id, **validate})
        assert refused.status_code == 400 and reason in refused.json()["error"]["message"]
    assert post({"Message-ID": "<alerts.run-3@contoso.test>", **validate}).status_code == 202
    assert len(acs.service.messages()) == 3
