"""The email Transport contract, held by the SMTP transport (on the SMTP outbox stand-in, STARTTLS +
AUTH), the Communication Services one (on the ACS stand-in, managed identity) and their in-memory
twin: what arrives, to whom, under which Message-ID, how a failed send looks and what a later attempt at
a message that went out does. A twin that drifts fails here. The twin models SMTP, where the envelope and
the message's own headers travel apart; Communication Services builds From, To and Date itself and keeps
the Message-ID (tests/email/test_acs.py has its details)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from azure.identity import ManagedIdentityCredential

from shared.email.acs import AcsEmailTransport
from shared.email.delivery import InMemoryTransport, SmtpTransport, Transport
from shared.errors import DeliveryError
from standins._server import free_port
from standins.acs_email import RunningAcsEmail
from standins.mail import MailConfig, RunningMail, start_mail
from standins.tls import ensure_tls
from tests.support.acs import SENDER
from tools.screenshot_email import HOSTILE_USER, sample_message

RECIPIENTS = ["finops@example.com", "oncall@example.com"]


def _lines(content: str) -> list[str]:
    return content.replace("\r\n", "\n").split("\n")


@dataclass
class Harness:
    transport: Transport
    delivered: Callable[[], list[tuple[EmailMessage, list[str]]]]  # each message as received, with its envelope
    break_service: Callable[[], None]  # the next send fails as this transport's fails when its service is down
    restore_service: Callable[[], None]
    # SMTP and the twin deliver the message's own From, To and Date; ACS writes its own.
    keeps_own_headers: bool = True
    # ACS reads an earlier attempt's operation before a later one and sends nothing if it went out; SMTP (and its
    # twin) cannot ask, so a later attempt is another copy under the same Message-ID.
    asks_before_resending: bool = False


def _in_memory() -> Iterator[Harness]:
    transport = InMemoryTransport()
    yield Harness(
        transport,
        delivered=lambda: [(sent.message, list(sent.recipients)) for sent in transport.sent],
        break_service=transport.fail_next,
        restore_service=lambda: None,
    )


def _read_outbox(outbox: Path) -> list[tuple[EmailMessage, list[str]]]:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append((message, str(message["X-Envelope-To"]).split(", ")))
    return found


def _acs(start_acs: Callable[..., RunningAcsEmail]) -> Iterator[Harness]:
    acs = start_acs()
    transport = AcsEmailTransport(acs.url, SENDER, ManagedIdentityCredential(), str(acs.ca_path))
    yield Harness(
        transport,
        delivered=lambda: _read_outbox(acs.service.config.outbox_dir),
        break_service=acs.service.fail_next_operation,  # the operation ends Failed
        restore_service=lambda: None,
        keeps_own_headers=False,
        asks_before_resending=True,
    )


def _smtp(tmp_path: Path) -> Iterator[Harness]:
    tls = ensure_tls(tmp_path / "tls")
    config = MailConfig(outbox_dir=tmp_path / "outbox", port=free_port(), username="alerts", password="pw",
                        tls_cert=tls.server_cert, tls_key=tls.server_key)  # fmt: skip
    running: list[RunningMail] = [start_mail(config)]

    def break_service() -> None:
        running.pop().stop()

    def restore_service() -> None:
        running.append(start_mail(config))

    transport = SmtpTransport("127.0.0.1", config.port, "alerts", "pw", starttls=True, ca_bundle=str(tls.ca_cert),
                              timeout_seconds=5)
    yield Harness(transport, lambda: _read_outbox(config.outbox_dir), break_service, restore_service)
    for mail in running:
        mail.stop()


@pytest.fixture(params=["in-memory", "smtp", "acs"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "in-memory":
        yield from _in_memory()
    elif request.param == "smtp":
        yield from _smtp(tmp_path)
    else:
        yield from _acs(request.getfixturevalue("make_acs"))


def test_a_sent_message_arrives_whole_for_its_recipients(harness: Harness) -> None:
    message = sample_message()
    harness.transport.send(message, RECIPIENTS)
    [(received, envelope)] = harness.delivered()
    assert envelope == RECIPIENTS
    # A long Subject is folded after "Subject:", so it reads back with a leading space (as in test_acs.py).
    assert received["Subject"].lstrip() == message["Subject"]
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["To"] == (message["To"] if harness.keeps_own_headers else ", ".join(RECIPIENTS))
    for header in ("From", "Date") if harness.keeps_own_headers else ():
        assert received[header] == message[header], header
    assert received["Message-ID"] == message["Message-ID"]  # every attempt at an email is one email to its readers
    for kind in ("plain", "html"):
        sent_part, received_part = message.get_body((kind,)), received.get_body((kind,))
        assert sent_part is not None and received_part is not None
        # On the wire lines end in CRLF; the outbox keeps the wire bytes, the twin parses its own copy.
        assert _lines(received_part.get_content()) == _lines(sent_part.get_content())
    images = [part.get_content() for part in received.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 3 and all(image[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    assert HOSTILE_USER in str(received.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def test_the_envelope_decides_who_gets_it_not_the_to_header(harness: Harness) -> None:
    message = sample_message()  # To: finops@example.com
    harness.transport.send(message, ["audit@example.com"])
    [(received, envelope)] = harness.delivered()
    assert envelope == ["audit@example.com"]
    assert received["To"] == ("finops@example.com" if harness.keeps_own_headers else "audit@example.com")


def test_a_send_while_the_service_is_down_raises_and_delivers_nothing(harness: Harness) -> None:
    harness.break_service()
    with pytest.raises(DeliveryError):
        harness.transport.send(sample_message(), RECIPIENTS)
    assert harness.delivered() == []
    harness.restore_service()
    harness.transport.send(sample_message(), RECIPIENTS)  # the caller retries later: it goes out once
    assert len(harness.delivered()) == 1


def test_a_later_attempt_at_a_message_that_went_out(harness: Harness) -> None:
    message = sample_message()
    harness.transport.send(message, RECIPIENTS)
    harness.transport.send(message, RECIPIENTS, attempt=2)  # its run recorded no outcome: it may be out
    copies = [received["Message-ID"] for received, _ in harness.delivered()]
    assert copies == [message["Message-ID"]] * (1 if harness.asks_before_resending else 2)


def test_the_message_is_taken_as_it_was_when_sent(harness: Harness) -> None:
    message = sample_message()
    harness.transport.send(message, RECIPIENTS)
    message.replace_header("Subject", "changed afterwards")
    [(received, _)] = harness.delivered()
    assert received["Subject"].lstrip().startswith("[WARNING] ")


def test_the_in_memory_transport_refuses_some_recipients_as_an_smtp_relay_does() -> None:
    transport = InMemoryTransport()
    transport.refuse_next(["oncall@example.com"])
    with pytest.raises(DeliveryError, match=r"refused recipients \['oncall@example.com'\]"):
        transport.send(sample_message(), RECIPIENTS)
    assert [sent.recipients for sent in transport.sent] == [("finops@example.com",)]  # the others got it
    transport.refuse_next(RECIPIENTS)
    with pytest.raises(DeliveryError):
        transport.send(sample_message(), RECIPIENTS)
    assert len(transport.sent) == 1  # all refused: nothing delivered
    transport.fail_next(2, reason="relay down")
    for _ in range(2):
        with pytest.raises(DeliveryError, match="relay down"):
            transport.send(sample_message(), RECIPIENTS)
    transport.send(sample_message(), RECIPIENTS)
    assert [sent.recipients for sent in transport.sent][-1] == tuple(RECIPIENTS) and len(transport.messages) == 2
