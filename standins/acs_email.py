"""Azure Communication Services Email stand-in: the REST API azure-communication-email speaks, over HTTPS.

The contract (Azure/azure-rest-api-specs specification/communication/data-plane/Email/stable/
2025-09-01/CommunicationServicesEmail.json and its examples/):
- ``POST /emails:send?api-version=V`` with an optional ``Operation-Id`` (uuid) header and an
  EmailMessage body -> 202, body EmailSendResult ``{"id", "status": "Running"}``, headers
  ``Operation-Location`` (the status monitor, api-version included) and ``retry-after`` (seconds);
- ``GET /emails/operations/{id}?api-version=V`` -> 200 ``{"id", "status"}`` plus ``retry-after``
  while not terminal; ``{"id", "status": "Failed", "error": {"code", "message"}}`` when failed;
- errors: ErrorResponse ``{"error": {"code", "message"}}`` with a matching ``x-ms-error-code``.
Where the spec is silent the stand-in follows the Azure REST API guidelines (microsoft/api-guidelines
azure/Guidelines.md): missing / unknown api-version is 400 MissingApiVersionParameter /
UnsupportedApiVersionValue (#versioning-api-version-*); an Operation-Id already used is a retry
of that operation when the request is identical, else 400 (#lro-operation-id-unique-except-retries);
the status monitor sends Retry-After while running (#lro-status-monitor-retry-after).

Stricter, never kinder, than Azure: a bearer token from the identity stand-in for the ACS
audience is required (401 otherwise); the sender's domain must be one configured as linked;
the body is validated against the spec's required fields, ACS's documented limits (50
recipients, 10 MB request) and duplicate contentIds (400 unless the request sets
x-ms-acsemail-ignore-duplicate-content-id: learn.microsoft.com/azure/communication-services/
concepts/email/email-headers). Exact error codes of ACS's 400s are not published; the status
is what clients act on.

Each accepted, not failed, operation writes one ``.eml`` to the outbox, named and written like
the SMTP stand-in's (standins.mail), so ``.local/outbox`` reads the same whichever delivery ran:
From/To/Cc/Subject, the custom headers, text + html alternatives, inline images (Content-ID =
contentId) and attachments, plus ``X-Envelope-To`` (Bcc included) and ``X-ACS-Operation-Id``.
A ``Message-ID`` custom header is the email's when it is an RFC 2822 id (``<left@right>``); an invalid
one is replaced by the service's own, and with ``x-ms-acsemail-validate-message-id: true`` an invalid or
already used one is a 400 (learn.microsoft.com/azure/communication-services/concepts/email/email-headers).

Fault hooks for tests (in-process): ``refuse_next_send(429, retry_after_seconds=2)`` answers the
next POST with that status, and ``fail_next_operation(code, message)`` lets the next accepted
operation end Failed (nothing written). Injected faults (standins/chaos.py, point ``acs.send``, kinds
500 / 503; ``--chaos FILE``) answer a send the same way, with the spec's ErrorResponse body.

CLI: ``python -m standins.acs_email --outbox .local/outbox --tls-dir .local/tls --sender-domain
localhost --identity-secret S`` prints ``READY https://127.0.0.1:<port>``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import re
import sys
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from aiohttp import web

from standins._server import RunningHttpsService, serve_cli, start_https_service
from standins.bearer import add_identity_secret_argument, bearer_auth_middleware, identity_secret
from standins.chaos import add_chaos_argument, chaos_from
from standins.identity import TokenSigner
from standins.mail import eml_file_name, write_atomically

# The versions azure-communication-email 1.1.0 knows (azure/communication/email/_api_versions.py);
# each has a spec under specification/communication/data-plane/Email/. Anything else: 400.
API_VERSIONS = ("2023-03-31", "2024-07-01-preview", "2025-09-01")
# EmailAttachment.contentId (inline attachments) is absent from the 2023-03-31 spec.
INLINE_ATTACHMENT_API_VERSIONS = frozenset({"2024-07-01-preview", "2025-09-01"})
# What the SDK's fixed scope https://communication.azure.com//.default becomes as a resource.
ACS_AUDIENCE = "https://communication.azure.com"
# ACS service limits (learn.microsoft.com/azure/communication-services/concepts/service-limits#email):
# a request, attachments included, up to 10 MB; up to 50 recipients over To, Cc and Bcc.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
MAX_RECIPIENTS = 50
SEND_PATH = "/emails:send"
OPERATIONS_PATH = "/emails/operations"
IGNORE_DUPLICATE_CONTENT_ID = "x-ms-acsemail-ignore-duplicate-content-id"
VALIDATE_MESSAGE_ID = "x-ms-acsemail-validate-message-id"
# The docs' examples: <guid@domain.com> and <...-NVZOA======@microsoft.com> valid; guid@domain.com, <guid> and
# <guid.domain> invalid.
_MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
# Headers the service sets itself; a custom header with one of these names is not copied.
_OWN_HEADERS = frozenset({"from", "to", "cc", "bcc", "subject", "content-type", "mime-version"})


@dataclass(frozen=True)
class AcsEmailConfig:
    outbox_dir: Path
    tls_dir: Path
    identity_secret: str
    # Domains linked to the resource: a senderAddress elsewhere is refused as by Azure.
    sender_domains: tuple[str, ...]
    # Azure's examples say 20 / 100 s; locally a second keeps runs quick with the same protocol.
    retry_after_seconds: int = 1
    running_polls: int = 1  # status GETs answered Running before the terminal status
    chaos_file: Path | None = None  # fault injection (standins/chaos.py); None: none


@dataclass(frozen=True)
class Refusal:
    """A scripted (or injected) answer to one POST, instead of processing it."""

    status: int
    code: str
    message: str
    retry_after_seconds: int | None = None

    @classmethod
    def of(
        cls, status: int, *, retry_after_seconds: int | None = None, code: str = "", message: str = ""
    ) -> Refusal:
        default_code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
        return cls(
            status,
            code or default_code.get(status, f"Http{status}"),
            message or f"Refused by the stand-in's fault hook (HTTP {status}).",
            retry_after_seconds,
        )


@dataclass
class _Operation:
    id: str
    fingerprint: str  # sha256 of the canonical request: an identical retry has the same
    api_version: str
    polls_left: int
    error: dict[str, str] | None = None  # set: the operation ends Failed


class AcsRequestError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={"x-ms-error-code": code, **(headers or {})},
    )


def _auth_error(reason: str) -> dict[str, Any]:
    # ACS's 401 body is not in the spec (ErrorResponse is); the code here is the stand-in's choice.
    return {"error": {"code": "Unauthorized", "message": f"Denied by the authentication policy: {reason}"}}


def _protected(path: str) -> Callable[[str], dict[str, Any]] | None:
    return _auth_error if path == SEND_PATH or path.startswith(OPERATIONS_PATH) else None


def _audience_ok(audience: str) -> bool:
    return audience.rstrip("/") == ACS_AUDIENCE


class AcsEmailService:
    """The operations, the outbox and the fault hooks behind the HTTP routes."""

    def __init__(self, config: AcsEmailConfig) -> None:
        self.config = config
        self.operations: dict[str, _Operation] = {}
        # deque append/popleft are thread-safe: tests script faults from their own thread.
        self._refusals: deque[Refusal] = deque()
        self._failures: deque[dict[str, str]] = deque()
        self._sequence = itertools.count(1)
        self._message_ids: set[str] = set()  # of the emails written, for x-ms-acsemail-validate-message-id
        self._chaos = chaos_from(config.chaos_file)

    def refuse_next_send(
        self, status: int = 429, *, retry_after_seconds: int | None = None, code: str = "", message: str = ""
    ) -> None:
        self._refusals.append(Refusal.of(status, retry_after_seconds=retry_after_seconds, code=code, message=message))

    def _next_refusal(self) -> Refusal | None:
        """A scripted refusal first, else an injected fault, else None (the send is processed)."""
        if self._refusals:
            return self._refusals.popleft()
        kind = self._chaos.inject("acs.send", SEND_PATH) if self._chaos is not None else None
        if kind is None:
            return None
        return Refusal.of(int(kind), message=f"The service failed to process the request (HTTP {kind}).")

    def fail_next_operation(
        self, code: str = "EmailDropped", message: str = "Email was dropped after several attempts to deliver."
    ) -> None:
        # Defaults: the spec's example GetOperationStatusReturnsFailedTerminalStatus.json.
        self._failures.append({"code": code, "message": message})

    def messages(self) -> list[Path]:
        return sorted(self.config.outbox_dir.glob("*.eml"))

    async def send(self, request: web.Request) -> web.Response:
        try:
            api_version = _api_version(request)
            refusal = self._next_refusal()
            if refusal is not None:
                retry = {} if refusal.retry_after_seconds is None else {"Retry-After": str(refusal.retry_after_seconds)}
                return error_response(refusal.status, refusal.code, refusal.message, retry)
            body = await _json_body(request)
            validate_message(
                body,
                api_version,
                self.config.sender_domains,
                ignore_duplicate_content_ids=_header_true(body, IGNORE_DUPLICATE_CONTENT_ID),
            )
            operation, retried = self._operation_for(request.headers.get("Operation-Id"), body, api_version)
        except AcsRequestError as error:
            return error_response(error.status, error.code, error.message)
        monitor = f"{request.url.origin()}{OPERATIONS_PATH}/{operation.id}?api-version={api_version}"
        headers = {"Operation-Location": monitor}
        if retried and not operation.polls_left:
            # A retry of a finished operation gets its status monitor as it stands (no Retry-After: terminal).
            return web.json_response(self._status_body(operation), status=202, headers=headers)
        headers["Retry-After"] = str(self.config.retry_after_seconds)
        return web.json_response({"id": operation.id, "status": "Running"}, status=202, headers=headers)

    async def status(self, request: web.Request) -> web.Response:
        try:
            _api_version(request)
        except AcsRequestError as error:
            return error_response(error.status, error.code, error.message)
        operation = self.operations.get(request.match_info["operation_id"].lower())
        if operation is None:
            return error_response(404, "NotFound", f"Operation {request.match_info['operation_id']} was not found.")
        if operation.polls_left:
            operation.polls_left -= 1
            return web.json_response(
                {"id": operation.id, "status": "Running"},
                headers={"Retry-After": str(self.config.retry_after_seconds)},
            )
        return web.json_response(self._status_body(operation))

    def _status_body(self, operation: _Operation) -> dict[str, Any]:
        if operation.error is not None:
            return {"id": operation.id, "status": "Failed", "error": operation.error}
        return {"id": operation.id, "status": "Succeeded"}

    def _operation_for(
        self, header: str | None, body: dict[str, Any], api_version: str
    ) -> tuple[_Operation, bool]:
        """The operation this request starts, or the one it retries (True)."""
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if header is None:
            operation_id = str(uuid.uuid4())
        else:
            try:
                operation_id = str(uuid.UUID(header))
            except ValueError:
                raise AcsRequestError(400, "InvalidOperationId", f"Operation-Id '{header}' is not a GUID.") from None
        existing = self.operations.get(operation_id)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise AcsRequestError(
                    400, "BadRequest", f"Operation-Id {operation_id} was already used for a different request."
                )
            return existing, True  # a retry: the same operation, nothing sent again
        if _header_true(body, VALIDATE_MESSAGE_ID):
            self._check_message_id(_custom_header(body, "Message-ID"))
        error = self._failures.popleft() if self._failures else None
        operation = _Operation(operation_id, fingerprint, api_version, self.config.running_polls, error)
        self.operations[operation_id] = operation
        if error is None:
            self._write_eml(operation_id, body)
        return operation, False

    def _check_message_id(self, message_id: str | None) -> None:
        """x-ms-acsemail-validate-message-id: an invalid or already used Message-ID is refused, not replaced."""
        if message_id is None or not _MESSAGE_ID.match(message_id):
            raise _bad(f"The internet message ID '{message_id}' is not a valid RFC 2822 message ID.")
        if message_id in self._message_ids:
            raise _bad(f"The internet message ID '{message_id}' is a duplicate.")

    def _write_eml(self, operation_id: str, body: dict[str, Any]) -> Path:
        message, envelope = build_eml(operation_id, body)
        self._message_ids.add(str(message["Message-ID"]))
        content = f"X-Envelope-To: {', '.join(envelope)}\r\n".encode() + message.as_bytes(policy=SMTP)
        name = eml_file_name(datetime.now(UTC), next(self._sequence), str(message["Message-ID"]).strip("<>"))
        return write_atomically(self.config.outbox_dir / name, content)


def _api_version(request: web.Request) -> str:
    version = request.query.get("api-version")
    if not version:
        raise AcsRequestError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests",
        )
    if version not in API_VERSIONS:
        raise AcsRequestError(
            400,
            "UnsupportedApiVersionValue",
            f"Unsupported api-version '{version}'. The supported api-versions are '{', '.join(API_VERSIONS)}'.",
        )
    return version


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError as error:
        raise AcsRequestError(400, "BadRequest", f"The request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise AcsRequestError(400, "BadRequest", "The request body must be a JSON object (EmailMessage).")
    return body


def _header_true(body: dict[str, Any], name: str) -> bool:
    return str(_custom_header(body, name)).lower() == "true"


def _custom_header(body: dict[str, Any], name: str) -> str | None:
    """The value of the body's custom header `name` (any case), None when absent."""
    headers = body.get("headers")
    if not isinstance(headers, dict):
        return None
    return next((str(value) for key, value in headers.items() if key.lower() == name.lower()), None)


def _bad(message: str) -> AcsRequestError:
    return AcsRequestError(400, "BadRequest", message)


def _string(value: Any, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _bad(f"{where} is required and must be a non-empty string.")
    return value


def _check_address(address: str, where: str) -> None:
    try:
        valid = bool(_ADDRESS.match(address)) and Address(addr_spec=address).addr_spec == address
    except (ValueError, IndexError):
        valid = False
    if not valid:
        raise _bad(f"{where} '{address}' is not a valid email address.")


def _addresses(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(f"{where} must be an array of EmailAddress.")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise _bad(f"{where}[{index}] must be an EmailAddress object.")
        address = _string(entry.get("address"), f"{where}[{index}].address")
        _check_address(address, f"{where}[{index}].address")
        _string(entry.get("displayName"), f"{where}[{index}].displayName", required=False)
    return value


def validate_message(
    body: dict[str, Any], api_version: str, sender_domains: tuple[str, ...], *, ignore_duplicate_content_ids: bool
) -> None:
    """Raise AcsRequestError for what the spec marks required / typed, and ACS's documented limits."""
    sender = _string(body.get("senderAddress"), "senderAddress")
    _check_address(sender, "senderAddress")
    if sender.rpartition("@")[2].lower() not in {domain.lower() for domain in sender_domains}:
        # The message users report from Azure for a domain not connected to the resource.
        raise AcsRequestError(400, "DomainNotLinked", "The specified sender domain has not been linked.")
    content = body.get("content")
    if not isinstance(content, dict):
        raise _bad("content is required (EmailContent).")
    _string(content.get("subject"), "content.subject")
    for key in ("plainText", "html"):
        _string(content.get(key), f"content.{key}", required=False)
    recipients = body.get("recipients")
    if not isinstance(recipients, dict):
        raise _bad("recipients is required (EmailRecipients).")
    to = _addresses(recipients.get("to"), "recipients.to")
    if not to:
        raise _bad("recipients.to is required and must list at least one address.")
    total = len(to) + len(_addresses(recipients.get("cc"), "recipients.cc"))
    total += len(_addresses(recipients.get("bcc"), "recipients.bcc"))
    if total > MAX_RECIPIENTS:
        raise _bad(f"{total} recipients: at most {MAX_RECIPIENTS} over to, cc and bcc.")
    _addresses(body.get("replyTo"), "replyTo")
    headers = body.get("headers")
    if headers is not None and (
        not isinstance(headers, dict)
        or not all(isinstance(value, str) and "\r" not in value and "\n" not in value for value in headers.values())
    ):
        raise _bad("headers must map header names to single-line string values.")
    _validate_attachments(body.get("attachments"), api_version, ignore_duplicate_content_ids)


def _validate_attachments(attachments: Any, api_version: str, ignore_duplicate_content_ids: bool) -> None:
    if attachments is None:
        return
    if not isinstance(attachments, list):
        raise _bad("attachments must be an array of EmailAttachment.")
    content_ids: set[str] = set()
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        if not isinstance(attachment, dict):
            raise _bad(f"{where} must be an EmailAttachment object.")
        _string(attachment.get("name"), f"{where}.name")
        _string(attachment.get("contentType"), f"{where}.contentType")
        try:
            base64.b64decode(_string(attachment.get("contentInBase64"), f"{where}.contentInBase64"), validate=True)
        except binascii.Error:
            raise _bad(f"{where}.contentInBase64 is not valid base64.") from None
        if "contentId" not in attachment:
            continue
        if api_version not in INLINE_ATTACHMENT_API_VERSIONS:
            raise _bad(f"{where}.contentId is not part of api-version {api_version}.")
        content_id = _string(attachment["contentId"], f"{where}.contentId")
        if content_id in content_ids and not ignore_duplicate_content_ids:
            raise _bad(f"{where}.contentId '{content_id}' is a duplicate.")
        content_ids.add(content_id)


def _address_header(entries: list[dict[str, Any]]) -> list[Address]:
    return [Address(display_name=entry.get("displayName") or "", addr_spec=entry["address"]) for entry in entries]


def build_eml(operation_id: str, body: dict[str, Any]) -> tuple[EmailMessage, list[str]]:
    """The message the service would send for a validated body, and its envelope recipients."""
    recipients = body["recipients"]
    message = EmailMessage()
    message["From"] = Address(addr_spec=body["senderAddress"])
    message["To"] = _address_header(recipients["to"])
    if recipients.get("cc"):
        message["Cc"] = _address_header(recipients["cc"])
    if body.get("replyTo"):
        message["Reply-To"] = _address_header(body["replyTo"])
    message["Subject"] = body["content"]["subject"]
    custom = {name: value for name, value in (body.get("headers") or {}).items() if name.lower() not in _OWN_HEADERS}
    for name, value in custom.items():
        if name.lower() == "message-id" and not _MESSAGE_ID.match(value):
            continue  # an invalid id is dropped and the service names the email itself
        message[name] = value
    if "Message-ID" not in message:
        message["Message-ID"] = f"<{operation_id}@{body['senderAddress'].rpartition('@')[2]}>"
    message["X-ACS-Operation-Id"] = operation_id
    _add_content(message, body["content"], body.get("attachments") or [])
    envelope = [entry["address"] for kind in ("to", "cc", "bcc") for entry in recipients.get(kind) or []]
    return message, envelope


def _add_content(message: EmailMessage, content: dict[str, Any], attachments: list[dict[str, Any]]) -> None:
    text, html = content.get("plainText") or "", content.get("html") or ""
    if text or not html:
        message.set_content(text)
    if html:
        if text:
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
    # add_related turns this part into multipart/related in place, so it stays the one to add to.
    html_part = _html_part(message) if html else None
    for attachment in attachments:
        maintype, _, subtype = attachment["contentType"].partition("/")
        data = base64.b64decode(attachment["contentInBase64"])
        if attachment.get("contentId") and html_part is not None:
            html_part.add_related(
                data, maintype, subtype or "octet-stream", cid=f"<{attachment['contentId']}>",
                filename=attachment["name"], disposition="inline",
            )  # fmt: skip
        else:
            message.add_attachment(data, maintype, subtype or "octet-stream", filename=attachment["name"])


def _html_part(message: EmailMessage) -> EmailMessage | None:
    """The text/html part, to hang the inline images on."""
    for part in message.walk():
        if isinstance(part, EmailMessage) and part.get_content_type() == "text/html":
            return part
    return None


def build_acs_email_app(service: AcsEmailService) -> web.Application:
    signer = TokenSigner(service.config.identity_secret)
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES,
        middlewares=[
            bearer_auth_middleware(signer, _protected, audience_ok=_audience_ok, service_name="Communication Services")
        ],
    )
    app.router.add_post(SEND_PATH, service.send)
    app.router.add_get(OPERATIONS_PATH + "/{operation_id}", service.status)
    return app


RunningAcsEmail = RunningHttpsService[AcsEmailService]


async def start_acs_email(config: AcsEmailConfig, *, host: str = "127.0.0.1", port: int = 0) -> RunningAcsEmail:
    """Ensure TLS material in ``config.tls_dir`` and serve the Email API over HTTPS on host:port."""
    service = AcsEmailService(config)
    return await start_https_service(service, build_acs_email_app(service), config.tls_dir, host=host, port=port)


def _parse_args(argv: list[str] | None) -> tuple[AcsEmailConfig, str, int]:
    parser = argparse.ArgumentParser(prog="python -m standins.acs_email", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--outbox", type=Path, required=True, help="directory the .eml files go to")
    parser.add_argument("--tls-dir", type=Path, required=True, help="where the local CA and server cert live")
    parser.add_argument(
        "--sender-domain", action="append", required=True, help="a domain linked to the resource (repeatable)"
    )
    parser.add_argument("--retry-after-seconds", type=int, default=1)
    parser.add_argument("--running-polls", type=int, default=1)
    add_identity_secret_argument(parser)
    add_chaos_argument(parser)
    args = parser.parse_args(argv)
    secret = identity_secret(parser, args)
    config = AcsEmailConfig(
        outbox_dir=args.outbox,
        tls_dir=args.tls_dir,
        identity_secret=secret,
        sender_domains=tuple(args.sender_domain),
        retry_after_seconds=args.retry_after_seconds,
        running_polls=args.running_polls,
        chaos_file=args.chaos,
    )
    return config, args.host, args.port


def main(argv: list[str] | None = None) -> None:
    config, host, port = _parse_args(argv)

    serve_cli(lambda: start_acs_email(config, host=host, port=port))
    sys.exit(0)


if __name__ == "__main__":
    main()
