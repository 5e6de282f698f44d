"""Deliver an alert email: the Transport contract, its error, the SMTP relay transport and the
in-memory twin of the transports (InMemoryTransport, for tests and benchmarks).

SMTP (smtplib): STARTTLS then AUTH, as Azure Communication Services SMTP, Office 365 and SendGrid
want it; the server certificate is checked against the system store plus an optional CA bundle
(the local stand-ins' CA). Locally the stack's SMTP outbox stand-in receives it (.eml files).
Azure Communication Services Email with managed identity: shared/email/acs.py.

Any failure raises DeliveryError (shared/errors.py); the caller keeps the notifications pending.
Every transport is held to that by tests/email/test_transport_contract.py.
Stdlib at import.
"""

from __future__ import annotations

import email
import email.policy
import smtplib
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from shared.errors import DeliveryError


class Transport(Protocol):
    def send(self, message: EmailMessage, recipients: Sequence[str], *, attempt: int = 1) -> None:
        """Deliver the message to the recipients, or raise DeliveryError. `attempt`: the how-manieth time this
        email (its Message-ID) is handed to a transport; from 2 on, an earlier attempt may have been delivered
        (its run recorded no outcome): a transport that can ask its service sends nothing if one was
        (shared/email/acs.py), one that cannot sends it again (SMTP: the same Message-ID reaches the recipients
        twice)."""
        ...


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


@dataclass(frozen=True)
class SmtpTransport:
    """An SMTP relay. The fields the ALERT_SMTP_* settings (and AZURE_CA_BUNDLE) fill have no default
    here, so config's is the one."""

    host: str
    port: int
    username: str | None  # None: no AUTH
    password: str | None = field(repr=False)
    starttls: bool
    ca_bundle: str | None  # besides the system store; the local stand-ins' CA
    # Not a setting: per socket operation, well within a run; a slower relay is a failed delivery, retried next run.
    timeout_seconds: float = 30.0

    def send(self, message: EmailMessage, recipients: Sequence[str], *, attempt: int = 1) -> None:
        # SMTP has no way to ask whether an earlier attempt was accepted: every attempt is sent.
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
            # A reply refusing it (4xx/5xx, SMTPResponseException) is a definite "not sent"; a connection lost
            # (SMTPServerDisconnected, a socket error) may come after the relay accepted the message: the chaos soak
            # (bench/soak) saw a fire mailed, recorded as failed, then never resolved and mailed again as new.
            definite = (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused, smtplib.SMTPNotSupportedError,
                        ConnectionRefusedError)  # fmt: skip
            ambiguous = not isinstance(error, definite)
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {type(error).__name__}: {error}",
                                maybe_delivered=ambiguous) from error  # fmt: skip
        if refused:
            # Some recipients got it: retrying would mail them twice, so only report the rest.
            raise DeliveryError(f"SMTP {self.host}:{self.port} refused recipients {sorted(refused)}")


@dataclass(frozen=True)
class SentEmail:
    message: EmailMessage  # as a recipient receives it: serialised and parsed back
    recipients: tuple[str, ...]  # the envelope: who it was delivered to


class InMemoryTransport:
    """The transports' twin: keeps each delivered message with its recipients in `sent`, and fails
    as they fail when told to. Thread-safe (overlapping runs send from two threads)."""

    def __init__(self) -> None:
        self.sent: list[SentEmail] = []
        # What the next sends do, in order: an error text (nothing delivered) or recipients to refuse.
        self._planned: list[str | frozenset[str]] = []
        self._lock = threading.Lock()

    def fail_next(self, count: int = 1, reason: str = "connection refused") -> None:
        """The next `count` sends deliver nothing and raise DeliveryError (relay or service down)."""
        with self._lock:
            self._planned += [reason] * count

    def refuse_next(self, recipients: Iterable[str], count: int = 1) -> None:
        """The next `count` sends reach everyone but `recipients`, then raise DeliveryError naming
        them, as an SMTP relay refusing some RCPT TO does (all refused: nothing is delivered)."""
        refused = frozenset(recipients)
        with self._lock:
            self._planned += [refused] * count

    def send(self, message: EmailMessage, recipients: Sequence[str], *, attempt: int = 1) -> None:
        # Like SMTP, every attempt is delivered. Serialised now, as a real transport does: later changes to
        # `message` do not reach the copy.
        received = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        assert isinstance(received, EmailMessage)
        with self._lock:
            planned = self._planned.pop(0) if self._planned else frozenset()
            if isinstance(planned, str):
                raise DeliveryError(f"in-memory transport: {planned}")
            accepted = tuple(address for address in recipients if address not in planned)
            if accepted:
                self.sent.append(SentEmail(received, accepted))
        refused = sorted(set(recipients) & planned)
        if refused:
            raise DeliveryError(f"in-memory transport refused recipients {refused}")

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [sent.message for sent in self.sent]
