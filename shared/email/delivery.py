"""Deliver an alert email: the Transport contract, its error, and the SMTP relay transport.

SMTP (smtplib): STARTTLS then AUTH, as Azure Communication Services SMTP, Office 365 and SendGrid
want it; the server certificate is checked against the system store plus an optional CA bundle
(the local stand-ins' CA). Locally the stack's SMTP outbox stand-in receives it (.eml files).
Azure Communication Services Email with managed identity: shared/email/acs.py.

Any failure raises DeliveryError (shared/errors.py); the caller keeps the notifications pending.
Stdlib at import.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from shared.errors import DeliveryError


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
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {type(error).__name__}: {error}") from error
        if refused:
            # Some recipients got it: retrying would mail them twice, so only report the rest.
            raise DeliveryError(f"SMTP {self.host}:{self.port} refused recipients {sorted(refused)}")
