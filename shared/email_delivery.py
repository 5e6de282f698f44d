"""Deliver an alert email: an SMTP relay, or Azure Communication Services Email with managed identity.

SMTP (smtplib): STARTTLS then AUTH, as Azure Communication Services SMTP, Office 365 and SendGrid
want it; the server certificate is checked against the system store plus an optional CA bundle
(the local stand-ins' CA). Locally the stack's SMTP outbox stand-in receives it (.eml files).

Azure Communication Services Email: its REST API (POST {endpoint}/emails:send), a bearer token
for https://communication.azure.com/.default from the app's managed identity, then the operation
is polled until it succeeded or failed. Inline images go as attachments with a contentId. The
Operation-Id header is derived from the message id, so a retried request is not sent twice.

Any failure raises EmailDeliveryError; the caller keeps the notifications pending.
Stdlib at import.
"""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

ACS_SCOPE = "https://communication.azure.com/.default"
# Inline attachments (contentId) need this api-version; unverified against Azure from here.
ACS_API_VERSION = "2024-07-01-preview"


class EmailDeliveryError(RuntimeError):
    """The message was not accepted; nothing is marked sent."""


class Transport(Protocol):
    def send(self, message: EmailMessage, recipients: Sequence[str]) -> None: ...


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    ca_bundle: str | None = None
    timeout_seconds: float = 30.0

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=tls_context(self.ca_bundle))
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(message, to_addrs=list(recipients))
        except (OSError, smtplib.SMTPException) as error:
            raise EmailDeliveryError(f"SMTP {self.host}:{self.port}: {type(error).__name__}: {error}") from error
        if refused:
            # Some recipients got it: retrying would mail them twice, so only report the rest.
            raise EmailDeliveryError(f"SMTP {self.host}:{self.port} refused recipients {sorted(refused)}")


@dataclass(frozen=True)
class AcsEmailTransport:
    endpoint: str  # https://<resource>.<region>.communication.azure.com
    sender: str  # a verified MailFrom address of the connected domain
    credential: TokenCredential
    ca_bundle: str | None = None
    timeout_seconds: float = 30.0
    poll_seconds: float = 2.0
    max_polls: int = 30
    sleep: Callable[[float], None] = time.sleep

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> None:
        body = acs_request_body(message, self.sender, recipients)
        operation_id = str(uuid.uuid5(uuid.NAMESPACE_URL, str(message["Message-ID"])))
        url = f"{self.endpoint.rstrip('/')}/emails:send?api-version={ACS_API_VERSION}"
        status, headers, payload = self._call("POST", url, body, {"Operation-Id": operation_id})
        if status != 202:
            raise EmailDeliveryError(f"Communication Services email: HTTP {status}: {payload!r}")
        location = headers.get("Operation-Location") or headers.get("operation-location")
        for _ in range(self.max_polls):
            state = str(payload.get("status", "")) if isinstance(payload, dict) else ""
            if state == "Succeeded":
                return
            if state in ("Failed", "Canceled"):
                raise EmailDeliveryError(f"Communication Services email {state}: {payload.get('error')}")
            if not location:
                raise EmailDeliveryError("Communication Services email: no Operation-Location to poll")
            self.sleep(self.poll_seconds)
            status, _, payload = self._call("GET", location, None, {})
        raise EmailDeliveryError(f"Communication Services email still {payload.get('status')!r} after polling")

    def _call(
        self, method: str, url: str, body: dict[str, Any] | None, extra: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        token = self.credential.get_token(ACS_SCOPE).token
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **extra},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout_seconds, context=tls_context(self.ca_bundle)
            ) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else {}
        except urllib.error.HTTPError as error:
            raise EmailDeliveryError(
                f"Communication Services email: HTTP {error.code}: {error.read()[:500]!r}"
            ) from error
        except (OSError, ValueError) as error:
            raise EmailDeliveryError(f"Communication Services email: {type(error).__name__}: {error}") from error


def acs_request_body(message: EmailMessage, sender: str, recipients: Sequence[str]) -> dict[str, Any]:
    """The emails:send body for a message built by shared.email_render.build_message."""
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
                attachment["contentId"] = str(part["Content-ID"]).strip("<>")
            attachments.append(attachment)
    body: dict[str, Any] = {
        "senderAddress": sender,
        "recipients": {"to": [{"address": address} for address in recipients]},
        "content": {"subject": str(message["Subject"]), "plainText": text, "html": html},
        "headers": {"Auto-Submitted": "auto-generated"},
    }
    if attachments:
        body["attachments"] = attachments
    return body
