"""Deliver an alert email through Azure Communication Services Email, with the official SDK.

azure-communication-email (1.1.0 read for this; paths below are inside that wheel) does what a
hand-written client got wrong or had to re-implement:
- token scope: `https://communication.azure.com//.default`, double slash included
  (azure/communication/email/_shared/auth_policy_utils.py); ManagedIdentityCredential turns it
  into the resource `https://communication.azure.com/`;
- api-version: the GA `2025-09-01` by default (_api_versions.py DEFAULT_VERSION), the first
  stable version whose EmailAttachment has `contentId` (inline images): Azure/azure-rest-api-specs
  specification/communication/data-plane/Email/stable/2025-09-01/CommunicationServicesEmail.json;
- the request: POST {endpoint}/emails:send?api-version=..., JSON body with the REST field names,
  `Operation-Id` header from the `operation_id` keyword, `x-ms-client-request-id` from azure-core's
  RequestIdPolicy (_operations/_operations.py build_email_send_request, _client.py);
- the long-running operation: 202 + `Operation-Location`, then GET that URL until `status` is
  Succeeded / Failed / Canceled (azure/core/polling/base_polling.py, final-state-via
  azure-async-operation); a Failed status raises HttpResponseError carrying the body's `error`;
- Retry-After: the poller waits what the service's Retry-After says, `polling_interval` only when
  there is none (base_polling.py _extract_delay); azure-core's RetryPolicy retries a POST answered
  with a Retry-After (429), or 500/503/504, waiting Retry-After when given, else backing off
  (azure/core/pipeline/policies/_retry.py is_retry, _is_method_retryable). The SDK sends no
  Repeatability-* headers, which the ACS docs say its SDKs send (1.1.0 has none).

Idempotency: the Operation-Id ("This is the ID provided by the customer to identify the long running
operation", the 2025-09-01 spec) is derived from the message's Message-ID and the caller's attempt
number, so the SDK's own POST retries of one attempt name the same operation: Azure's REST guidelines
make a repeated Operation-Id with an identical request a retry of that operation, and a different
request with it a 400 (microsoft/api-guidelines azure/Guidelines.md #lro-operation-id-unique-except-
retries). Across runs the alert state keeps an email's Message-ID until it is marked sent
(shared/alerts/run.py); a later attempt at it (a run that ended after handing it over and before
recording it) first reads the earlier attempts' operations (GET /emails/operations/{id}, the spec's
Email_GetSendResult): Succeeded (a Running one is waited for) means the email went out, and nothing is
sent again; not found (404) or Failed, and it is sent under the next attempt's own Operation-Id (a
failed operation's id is never reused for a changed request). That closes the duplicate on this
transport as long as the service keeps the earlier operation (its retention is not documented; when
it is gone, the email is sent once more, with the same Message-ID). The Message-ID itself travels as a
custom header, which ACS puts on the email when it is a valid RFC 2822 id (learn.microsoft.com/azure/
communication-services/concepts/email/email-headers: an invalid one is replaced by the service's own),
so recipients see one id for every attempt, as over SMTP. The repeatability headers
(Repeatability-Request-ID / -First-Sent, learn.microsoft.com/rest/api/communication/repeatable-requests)
are not used: the service tracks them for 5 minutes and refuses older ones with 412, and alert runs are
15 minutes apart; the 2025-09-01 spec has the Operation-Id instead.

Every failure raises DeliveryError; the caller keeps the notifications pending.
The SDK is imported inside send() (cold start).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from shared.errors import DeliveryError

if TYPE_CHECKING:
    from azure.communication.email import EmailClient
    from azure.core.credentials import TokenCredential
    from azure.core.exceptions import AzureError

SERVICE = "Communication Services email"
# The GA version azure-communication-email 1.1.0 defaults to, pinned so the operation reads speak the same.
API_VERSION = "2025-09-01"
# A later attempt reads at most this many earlier attempts' operations (an outage can pile attempts up).
LOOKBACK_ATTEMPTS = 8
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcsEmailTransport:
    endpoint: str  # https://<resource>.<geo>.communication.azure.com
    sender: str  # a MailFrom address of a domain connected to the resource
    credential: TokenCredential
    ca_bundle: str | None = None  # extra CAs (the local stand-ins'); None: the system store
    # The whole send (POST, its retries, polling) gives up after this; the message stays pending.
    timeout_seconds: float = 120.0
    # Only between polls the service sends no Retry-After for (it sends one while running).
    polling_interval_seconds: float = 5.0

    def send(self, message: EmailMessage, recipients: Sequence[str], *, attempt: int = 1) -> None:
        from azure.communication.email import EmailClient
        from azure.core.exceptions import AzureError

        body = acs_request_body(message, self.sender, recipients)
        operation_id = acs_operation_id(message, attempt)
        deadline = time.monotonic() + self.timeout_seconds
        client = EmailClient(
            self.endpoint,
            self.credential,
            api_version=API_VERSION,
            connection_verify=self.ca_bundle or True,
            polling_interval=self.polling_interval_seconds,
            # RetryPolicy's absolute timeout over the POST and its retries (checked before each try).
            timeout=self.timeout_seconds,
            connection_timeout=min(self.timeout_seconds, 30.0),
            read_timeout=min(self.timeout_seconds, 60.0),
        )
        try:
            with client:
                if attempt > 1 and self._sent_before(client, message, attempt, deadline):
                    return
                poller = client.begin_send(body, operation_id=operation_id)
                # result(timeout) returns when the wait ends, done or not; failures raise here.
                poller.result(timeout=max(0.0, deadline - time.monotonic()))
                if not poller.done():
                    raise DeliveryError(
                        f"{SERVICE} operation {operation_id} still {poller.status()} after "
                        f"{self.timeout_seconds:g} s; it may still be sent"
                    )
                if poller.status().lower() != "succeeded":
                    raise DeliveryError(f"{SERVICE} operation {operation_id} ended {poller.status()}")
        except AzureError as error:
            raise delivery_error(error, operation_id) from error


    def _sent_before(self, client: EmailClient, message: EmailMessage, attempt: int, deadline: float) -> bool:
        """Whether an earlier attempt at this email succeeded at the service (newest first; a running one is
        waited for until the deadline)."""
        for earlier in range(attempt - 1, max(0, attempt - 1 - LOOKBACK_ATTEMPTS), -1):
            operation_id = acs_operation_id(message, earlier)
            status = self._final_status(client, operation_id, deadline)
            if status == "succeeded":
                log.info("%s: %s went out with attempt %d (operation %s); not sent again",
                         SERVICE, message["Message-ID"], earlier, operation_id)  # fmt: skip
                return True
        return False

    def _final_status(self, client: EmailClient, operation_id: str, deadline: float) -> str:
        """The operation's terminal status in lower case; "" when the service has no such operation (404)."""
        from azure.core.rest import HttpRequest

        while True:
            request = HttpRequest("GET", f"/emails/operations/{operation_id}", params={"api-version": API_VERSION})
            response = client.send_request(request)
            if response.status_code == 404:
                return ""
            response.raise_for_status()  # anything else unexpected: DeliveryError, tried again by the next run
            status = str(response.json().get("status", "")).lower()
            if status not in ("notstarted", "running"):
                return status
            wait_seconds = float(response.headers.get("retry-after") or self.polling_interval_seconds)
            if time.monotonic() + wait_seconds > deadline:
                raise DeliveryError(
                    f"{SERVICE} operation {operation_id} (an earlier attempt) still {status} after "
                    f"{self.timeout_seconds:g} s; it may still be sent"
                )
            time.sleep(wait_seconds)


def acs_operation_id(message: EmailMessage, attempt: int = 1) -> str:
    """The Operation-Id of one attempt at a message (a GUID, as the API wants): the same for the SDK's retries of
    that attempt, its own for every attempt."""
    name = f"mid:{message['Message-ID']}" + (f"#{attempt}" if attempt > 1 else "")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def delivery_error(error: AzureError, operation_id: str) -> DeliveryError:
    """One message per failure: HTTP status and ACS error code/message, or the operation's end state."""
    from azure.core.exceptions import HttpResponseError

    if not isinstance(error, HttpResponseError) or error.response is None:
        # No answer from the service: connection refused, TLS, token acquisition, timeouts.
        return DeliveryError(f"{SERVICE}: {type(error).__name__}: {error}")
    response = error.response
    detail = _error_detail(response.text())
    state = detail.get("status", "")
    if state.lower() in ("failed", "canceled"):
        # The status monitor (or a retried POST's answer) says the operation itself ended badly.
        return DeliveryError(
            f"{SERVICE} operation {operation_id} {state}: {detail.get('code', '?')}: {detail.get('message', '')}"
        )
    return DeliveryError(
        f"{SERVICE}: HTTP {response.status_code} {detail.get('code', error.reason or '')}: "
        f"{detail.get('message', '')}".rstrip(": ")
    )


def _error_detail(text: str) -> dict[str, str]:
    """status plus the ErrorDetail code/message of an ACS body ({"error": {...}}), as far as present."""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return {"message": text[:300]}
    if not isinstance(body, dict):
        return {}
    error = body.get("error")
    detail = {key: str(error[key]) for key in ("code", "message") if isinstance(error, dict) and key in error}
    if "status" in body:
        detail["status"] = str(body["status"])
    return detail


def acs_request_body(message: EmailMessage, sender: str, recipients: Sequence[str]) -> dict[str, Any]:
    """The emails:send body (REST field names, which the SDK sends as given) for a built digest."""
    text = html = ""
    attachments = []
    for part in message.walk():
        kind = part.get_content_type()
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if kind == "text/plain" and not text:
            text = payload.decode(part.get_content_charset() or "utf-8")
        elif kind == "text/html" and not html:
            html = payload.decode(part.get_content_charset() or "utf-8")
        else:
            attachment = {
                "name": part.get_filename() or "attachment",
                "contentType": kind,
                "contentInBase64": base64.b64encode(payload).decode(),
            }
            if part["Content-ID"]:
                # Inline image: the html refers to it as cid:<contentId>.
                attachment["contentId"] = str(part["Content-ID"]).strip("<>")
            attachments.append(attachment)
    body: dict[str, Any] = {
        "senderAddress": sender,
        "recipients": {"to": [{"address": address} for address in recipients]},
        "content": {"subject": str(message["Subject"]), "plainText": text, "html": html},
        # The email's own Message-ID, which ACS keeps when valid: every attempt reaches recipients as one email.
        "headers": {"Auto-Submitted": "auto-generated"}
        | ({"Message-ID": str(message["Message-ID"])} if message["Message-ID"] else {}),
    }
    if attachments:
        body["attachments"] = attachments
    return body
