"""Alerts end to end on the Azure Monitor stand-in, Azurite and the SMTP outbox stand-in (STARTTLS+AUTH).

The costs run writes summaries; evaluate_and_notify reads them back (latest complete revision),
keeps its state in Azurite and mails the outbox. Asserts on the .eml files themselves.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from shared.alerts.run import AlertClients, AlertDeliveryError, build_clients, evaluate_and_notify
from shared.alerts.state import TableAlertStateStore
from shared.azure_clients import open_table
from shared.config import AlertSettings
from shared.costs.run import run_costs
from shared.email.delivery import SmtpTransport
from standins._server import free_port
from standins.acs_email import AcsEmailConfig, start_acs_email
from standins.mail import MailConfig, RunningMail, start_mail
from standins.tls import ensure_tls
from tests.support.costs import CostStack, usage_rows
from tests.support.loop import LoopThread
from tests.support.sections import alert_section

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
HOSTILE_USER = "<img src=x onerror=alert(1)>"
SMTP_USER, SMTP_PASSWORD = "alerts", "local-smtp-password"
RULES = {
    "currency": "USD",
    "recipient_groups": {"finops": ["finops@example.com", "oncall@example.com"]},
    "rules": [
        {"name": "daily-budget", "kind": "budget", "scope": "all", "period": "day", "amount": 1,
         "forecast": False, "recipients": "finops"},
    ],
}  # fmt: skip


@dataclass
class AlertWorld:
    stack: CostStack
    settings: AlertSettings
    outbox: Path
    mail_config: MailConfig
    mail: RunningMail | None

    def clients(self) -> AlertClients:
        return AlertClients(
            query=self.stack.query,
            state=TableAlertStateStore(open_table(
                self.settings.state_table_name, connection_string=self.settings.state_connection_string,
                purpose="alert state",
            )),
            transport=SmtpTransport(
                self.settings.smtp_host, self.settings.smtp_port, self.settings.smtp_username,
                self.settings.smtp_password, self.settings.smtp_starttls, str(self.settings.azure.ca_bundle),
                timeout_seconds=5,
            ),
        )  # fmt: skip

    def costs_then_alerts(self, now: dt.datetime, clients: AlertClients | None = None) -> Any:
        summary = run_costs(self.stack.settings, now=now, clients=self.stack.clients(), sleep=lambda _: None)
        return evaluate_and_notify(self.settings, summary, now=now, clients=clients or self.clients())

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(self.outbox.glob("*.eml"))
        ]

    def smtp_down(self) -> None:
        assert self.mail is not None
        self.mail.stop()
        self.mail = None

    def smtp_up(self) -> None:
        self.mail = start_mail(self.mail_config)


@pytest.fixture
def world(make_cost_stack: Callable[..., CostStack], azurite: str, tmp_path: Path) -> Iterator[AlertWorld]:
    stack = make_cost_stack(ingestion_delay_minutes=5, recompute_windows=1)
    tls = ensure_tls(tmp_path / "tls")  # the monitor's directory: one CA for HTTPS and STARTTLS
    rules_file = tmp_path / "alerts.json"
    rules_file.write_text(json.dumps(RULES))
    mail_config = MailConfig(
        outbox_dir=tmp_path / "outbox", port=free_port(), username=SMTP_USER, password=SMTP_PASSWORD,
        tls_cert=tls.server_cert, tls_key=tls.server_key,
    )  # fmt: skip
    settings = alert_section(
        rules_file=rules_file,
        workspace_id=stack.config.workspace_id,
        query_endpoint=stack.monitor.url,
        state_connection_string=azurite,
        state_table_name="AlertState" + uuid.uuid4().hex[:8],
        sender="alerts@example.com",
        smtp_host="127.0.0.1",
        smtp_port=mail_config.port,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        ca_bundle=tls.ca_cert,
    )
    alert_world = AlertWorld(stack, settings, mail_config.outbox_dir, mail_config, start_mail(mail_config))
    yield alert_world
    if alert_world.mail is not None:
        alert_world.mail.stop()


def spend(stack: CostStack, at: dt.datetime, dimes: int, user: str = HOSTILE_USER) -> None:
    """`dimes` x $0.10 of gpt-4o: at $2.50 / 1M prompt tokens, 40,000 prompt tokens cost $0.10."""
    stack.insert_metrics(usage_rows(at, 40_000 * dimes, 0, user=user))


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_crossings_mail_once_survive_smtp_outage_and_resolve(world: AlertWorld) -> None:
    at = NOW - dt.timedelta(minutes=15)
    spend(world.stack, at, 3)  # $0.30: 30 %
    first = world.costs_then_alerts(NOW)
    assert (first.firing, first.emails_sent, world.messages()) == (0, 0, [])

    spend(world.stack, at + dt.timedelta(minutes=1), 5, user="bob")  # $0.80: crosses 50 % and 80 % at once
    crossed = world.costs_then_alerts(NOW)
    [message] = world.messages()
    assert crossed.emails_sent == 1
    assert message["Subject"] == "[WARNING] all traffic: $0.80 today, 80% of $1.00 budget"
    assert message["To"] == "finops@example.com, oncall@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    page, text = html_of(message), text_of(message)
    # The hostile user id is a contributor: shown as text, never as markup.
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and HOSTILE_USER not in page
    assert HOSTILE_USER in text and "$0.30" in text and "Rule: daily-budget in" in text
    assert "Window:    today (2026-11-27 UTC)" in text and "Threshold: $1.00 budget (50%, 80%, 100%)" in text
    [image] = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in page
    assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"

    again = world.costs_then_alerts(NOW + dt.timedelta(minutes=1))
    assert (again.firing, again.emails_sent, len(world.messages())) == (1, 0, 1)

    spend(world.stack, at + dt.timedelta(minutes=2), 3)  # $1.10: 110 %
    world.smtp_down()
    with pytest.raises(AlertDeliveryError) as failed:
        world.costs_then_alerts(NOW + dt.timedelta(minutes=2))
    assert failed.value.summary.pending == 1 and len(world.messages()) == 1
    world.smtp_up()
    retried = world.costs_then_alerts(NOW + dt.timedelta(minutes=3))
    assert retried.emails_sent == 1
    escalation = world.messages()[-1]
    assert escalation["Subject"] == "[CRITICAL] all traffic: $1.10 today, 110% of $1.00 budget"
    assert "ESCALATED" in text_of(escalation)
    for minutes in (4, 5):
        assert world.costs_then_alerts(NOW + dt.timedelta(minutes=minutes)).emails_sent == 0
    assert len(world.messages()) == 2

    # Next day, little traffic: the budget is no longer crossed; one resolved notice, then quiet.
    tomorrow = NOW + dt.timedelta(days=1)
    spend(world.stack, tomorrow - dt.timedelta(minutes=10), 1)
    assert world.costs_then_alerts(tomorrow).emails_sent == 1
    resolved = world.messages()[-1]
    assert resolved["Subject"] == "[RESOLVED] all traffic: resolved, $0.10 today, 10% of $1.00 budget"
    assert world.costs_then_alerts(tomorrow + dt.timedelta(minutes=1)).emails_sent == 0
    assert len(world.messages()) == 3


def test_alerts_go_out_through_communication_services_with_the_app_wiring(
    world: AlertWorld, loop_thread: LoopThread, cost_identity: tuple[str, dict[str, str]]
) -> None:
    """ALERT_DELIVERY=acs as the app builds it (build_clients: managed identity, CA bundle) against
    the ACS stand-in; a Failed operation keeps the notification pending for the next run."""
    assert world.settings.azure.ca_bundle is not None
    acs = loop_thread.run(start_acs_email(AcsEmailConfig(
        outbox_dir=world.outbox, tls_dir=world.settings.azure.ca_bundle.parent, identity_secret=cost_identity[0],
        sender_domains=("example.com",),
    )))  # fmt: skip
    settings = replace(world.settings, delivery="acs", acs_endpoint=acs.url)
    world.smtp_down()  # whatever arrives now came through Communication Services

    def costs_then_alerts(now: dt.datetime) -> Any:
        summary = run_costs(world.stack.settings, now=now, clients=world.stack.clients(), sleep=lambda _: None)
        return evaluate_and_notify(settings, summary, now=now, clients=build_clients(settings))

    try:
        spend(world.stack, NOW - dt.timedelta(minutes=15), 8)  # $0.80: crosses 50 % and 80 %
        acs.service.fail_next_operation()
        with pytest.raises(AlertDeliveryError, match="Failed: EmailDropped") as failed:
            costs_then_alerts(NOW)
        assert failed.value.summary.pending == 1 and world.messages() == []
        assert costs_then_alerts(NOW + dt.timedelta(minutes=1)).emails_sent == 1
        [message] = world.messages()
        assert message["Subject"].lstrip() == "[WARNING] all traffic: $0.80 today, 80% of $1.00 budget"
        assert message["X-Envelope-To"] == "finops@example.com, oncall@example.com"
        assert message["X-ACS-Operation-Id"] and "$0.80" in text_of(message)
        [image] = [part for part in message.walk() if part.get_content_type() == "image/png"]
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html_of(message)
        assert costs_then_alerts(NOW + dt.timedelta(minutes=2)).emails_sent == 0
    finally:
        loop_thread.run(acs.stop())


class BlockingTransport:
    """Holds the first send until released, so a second run overlaps the first one's delivery."""

    def __init__(self, inner: SmtpTransport) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, message: EmailMessage, recipients: Sequence[str], *, attempt: int = 1) -> None:
        self.entered.set()
        assert self.release.wait(30)
        self.inner.send(message, recipients, attempt=attempt)


def test_overlapping_runs_cannot_both_send(world: AlertWorld) -> None:
    spend(world.stack, NOW - dt.timedelta(minutes=15), 12)  # 120 %
    run_costs(world.stack.settings, now=NOW, clients=world.stack.clients(), sleep=lambda _: None)
    slow = world.clients()
    assert isinstance(slow.transport, SmtpTransport)
    blocking = BlockingTransport(slow.transport)
    slow.transport = blocking
    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.update(first=evaluate_and_notify(world.settings, None, now=NOW,
                                                                                     clients=slow)))  # fmt: skip
    first.start()
    assert blocking.entered.wait(30)
    second = evaluate_and_notify(world.settings, None, now=NOW, clients=world.clients())
    blocking.release.set()
    first.join(30)
    assert (results["first"].emails_sent, second.emails_sent, second.skipped) == (1, 0, 1)
    assert len(world.messages()) == 1
    assert evaluate_and_notify(world.settings, None, now=NOW, clients=world.clients()).emails_sent == 0

