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

from shared.alerts.run import AlertClients, AlertDeliveryError, build_clients, evaluate_and_notify, webhook_channel
from shared.alerts.state import TableAlertStateStore
from shared.azure_clients import open_table
from shared.config import AlertSettings
from shared.costs.run import run_costs
from shared.email.delivery import SmtpTransport
from shared.email.render import CHARTS_PER_EMAIL
from standins._server import free_port
from standins.acs_email import AcsEmailConfig, start_acs_email
from standins.mail import MailConfig, RunningMail, start_mail
from standins.tls import ensure_tls
from standins.webhook_sink import WebhookSinkConfig, start_webhook_sink
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
    assert retried.emails_sent == 1 and retried.resent == 0  # the failed attempt is known: nothing may be out
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



class Killed(Exception):
    """The run ends here, as a host killed mid-run: nothing after it runs."""


class KilledAfterSend:
    """The transport accepts the email, then the run ends before it records that (before the "sent" write)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def send(self, message: EmailMessage, recipients: Sequence[str], *, attempt: int = 1) -> None:
        self.inner.send(message, recipients, attempt=attempt)
        raise Killed("host killed after the transport accepted the email")


def after_lease(settings: AlertSettings, minutes: int = 1) -> Callable[[], dt.datetime]:
    """A wall clock past the lease a run takes on what it claims (now), so a crashed run's claims can be taken."""
    return lambda: dt.datetime.now(UTC) + dt.timedelta(seconds=settings.lease_seconds, minutes=minutes)


def crashed_after_accept(world: AlertWorld, clients: AlertClients, now: dt.datetime = NOW) -> str:
    """An alert run killed between the transport's acceptance and its state write; the Message-ID it claimed."""
    clients.transport = KilledAfterSend(clients.transport)
    with pytest.raises(Killed):
        evaluate_and_notify(world.settings, None, now=now, clients=clients)
    [record] = world.clients().state.load().values()
    assert record.maybe_delivered and record.send_attempts == 1 and record.message_id
    return record.message_id


def test_a_run_killed_after_smtp_accepted_sends_once_more_with_the_same_message_id_then_never(
    world: AlertWorld,
) -> None:
    spend(world.stack, NOW - dt.timedelta(minutes=15), 8)  # $0.80: crosses 50 % and 80 %
    run_costs(world.stack.settings, now=NOW, clients=world.stack.clients(), sleep=lambda _: None)
    message_id = crashed_after_accept(world, world.clients())
    [first] = world.messages()
    assert first["Message-ID"] == message_id
    # Within the crashed run's lease its claim stands: nobody sends it.
    assert evaluate_and_notify(world.settings, None, now=NOW, clients=world.clients()).emails_sent == 0
    again = evaluate_and_notify(world.settings, None, now=NOW, clients=world.clients(),
                                wall_clock=after_lease(world.settings))  # fmt: skip
    assert (again.emails_sent, again.resent, len(again.notifications)) == (1, 1, 1)
    first_copy, second_copy = world.messages()
    # SMTP cannot say whether the first got through: the same email again, one Message-ID for mail clients to
    # thread or drop as a duplicate.
    assert second_copy["Message-ID"] == first_copy["Message-ID"] == message_id
    assert second_copy["Subject"] == first_copy["Subject"] == "[WARNING] all traffic: $0.80 today, 80% of $1.00 budget"
    [record] = world.clients().state.load().values()
    assert record.open and not record.pending_kind and not record.claimed_by and record.message_id == ""
    for minutes in (2, 3):
        quiet = evaluate_and_notify(world.settings, None, now=NOW, clients=world.clients(),
                                    wall_clock=after_lease(world.settings, minutes))  # fmt: skip
        assert quiet.emails_sent == 0
    assert len(world.messages()) == 2  # never a third time


def test_a_run_killed_after_communication_services_accepted_is_not_sent_again(
    world: AlertWorld, loop_thread: LoopThread, cost_identity: tuple[str, dict[str, str]]
) -> None:
    """The next run asks the service for the crashed attempt's operation, finds it succeeded, sends nothing."""
    assert world.settings.azure.ca_bundle is not None
    acs = loop_thread.run(start_acs_email(AcsEmailConfig(
        outbox_dir=world.outbox, tls_dir=world.settings.azure.ca_bundle.parent, identity_secret=cost_identity[0],
        sender_domains=("example.com",),
    )))  # fmt: skip
    settings = replace(world.settings, delivery="acs", acs_endpoint=acs.url)
    world.smtp_down()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in cost_identity[1].items():
                patch.setenv(name, value)
            spend(world.stack, NOW - dt.timedelta(minutes=15), 8)
            run_costs(world.stack.settings, now=NOW, clients=world.stack.clients(), sleep=lambda _: None)
            clients = replace(build_clients(settings), state=world.clients().state)
            message_id = crashed_after_accept(world, clients)
            [delivered] = world.messages()
            assert delivered["Message-ID"] == message_id  # ACS kept the email's own id
            again = evaluate_and_notify(settings, None, now=NOW, clients=replace(build_clients(settings),
                                        state=world.clients().state), wall_clock=after_lease(settings))  # fmt: skip
            assert (again.emails_sent, again.resent) == (1, 1)
            assert len(world.messages()) == 1 and len(acs.service.operations) == 1  # no second operation
            [record] = world.clients().state.load().values()
            assert record.open and not record.pending_kind
            quiet = evaluate_and_notify(settings, None, now=NOW, clients=replace(build_clients(settings),
                                        state=world.clients().state), wall_clock=after_lease(settings, 2))  # fmt: skip
            assert quiet.emails_sent == 0 and len(world.messages()) == 1
    finally:
        loop_thread.run(acs.stop())


def test_an_alert_that_may_have_been_mailed_and_then_cleared_is_resolved_not_dropped(world: AlertWorld) -> None:
    spend(world.stack, NOW - dt.timedelta(minutes=15), 8)
    run_costs(world.stack.settings, now=NOW, clients=world.stack.clients(), sleep=lambda _: None)
    crashed_after_accept(world, world.clients())
    tomorrow = NOW + dt.timedelta(days=1)
    spend(world.stack, tomorrow - dt.timedelta(minutes=10), 1)  # $0.10: no longer over any level
    run_costs(world.stack.settings, now=tomorrow, clients=world.stack.clients(), sleep=lambda _: None)
    resolved = evaluate_and_notify(world.settings, None, now=tomorrow, clients=world.clients(),
                                   wall_clock=after_lease(world.settings))  # fmt: skip
    assert resolved.emails_sent == 1 and resolved.resent == 0  # a new email: the resolved notice
    fired, notice = world.messages()
    assert notice["Subject"] == "[RESOLVED] all traffic: resolved, $0.10 today, 10% of $1.00 budget"
    assert notice["Message-ID"] != fired["Message-ID"]
    [record] = world.clients().state.load().values()
    assert not record.open and not record.pending_kind


def test_a_digest_shows_the_top_alerts_of_a_rule_and_level_and_the_state_holds_every_one(world: AlertWorld) -> None:
    """25 users over a threshold at once: 20 in the email and a line for the rest; all 25 told, none mailed again;
    when they clear, 25 resolved notices in one email of the same shape."""
    world.settings.rules_file.write_text(json.dumps({
        "currency": "USD", "recipient_groups": {"finops": ["finops@example.com"]},
        "rules": [{"name": "daily-user-cost", "kind": "threshold", "metric": "cost", "window": "day",
                   "scope": "each:user", "warning": 0.05, "recipients": "finops"}],
    }))  # fmt: skip
    users = [f"user-{index:02d}" for index in range(25)]
    for index, user in enumerate(users):
        spend(world.stack, NOW - dt.timedelta(minutes=15), 1 + index % 3, user=user)  # $0.10, $0.20 or $0.30
    first = world.costs_then_alerts(NOW)
    assert (first.emails_sent, len(first.notifications)) == (1, 25)
    [message] = world.messages()
    text, page = text_of(message), html_of(message)
    assert text.count("[WARNING] user user-") == 20 and page.count("Rule <code>daily-user-cost</code>") == 20
    # The largest shown (eight of $0.30, eight of $0.20, four of the nine of $0.10); the rest in one line, totalled.
    assert [text.count(f"${cost} today") for cost in ("0.30", "0.20", "0.10")] == [8, 8, 4]
    rest = "and 5 more users at warning under daily-user-cost: $0.50 together"
    assert f"... {rest}" in text and rest in page
    assert message["Subject"].lstrip() == "[WARNING] user user-02: $0.30 today, over the warning level $0.05 (+24 more)"
    # A chart for each of the first CHARTS_PER_EMAIL (12) items; the other eight show their bars' figures as text.
    assert len([part for part in message.walk() if part.get_content_type() == "image/png"]) == CHARTS_PER_EMAIL
    assert page.count("cost per day, last 14 days (USD, UTC): ") == 20 - CHARTS_PER_EMAIL
    records = world.clients().state.load()
    assert sorted(record.member for record in records.values()) == users
    assert all(record.open and not record.pending_kind for record in records.values())
    assert world.costs_then_alerts(NOW + dt.timedelta(minutes=1)).emails_sent == 0  # none mailed again
    tomorrow = NOW + dt.timedelta(days=1)
    spend(world.stack, tomorrow - dt.timedelta(minutes=10), 0, user=users[0])  # a quiet day for everyone
    cleared = world.costs_then_alerts(tomorrow)
    assert (cleared.emails_sent, len(cleared.notifications)) == (1, 25)
    resolved = text_of(world.messages()[-1])
    assert resolved.count("[RESOLVED] ") == 20 and "... and 5 more users resolved under daily-user-cost" in resolved
    assert not any(record.open for record in world.clients().state.load().values())


def test_teams_and_slack_get_each_notification_once_and_a_failed_channel_is_retried_alone(
    world: AlertWorld, loop_thread: LoopThread
) -> None:
    """The group's email, Teams and Slack channels as the app wires them (build_clients' webhook_channel), against the
    webhook sink: Teams down does not hold up email or Slack; the next run sends the card to Teams only, once, with
    the email's Message-ID as its delivery id; an escalation reaches all three once more; quiet runs send nothing."""
    assert world.settings.azure.ca_bundle is not None
    sink = loop_thread.run(start_webhook_sink(WebhookSinkConfig(world.outbox.parent / "webhooks",
                                                                world.settings.azure.ca_bundle.parent)))  # fmt: skip
    rules = {**RULES, "recipient_groups": {"finops": {
        "email": ["finops@example.com"], "teams": "FINOPS_TEAMS_URL", "slack": "FINOPS_SLACK_URL"}}}  # fmt: skip
    world.settings.rules_file.write_text(json.dumps(rules))
    settings = replace(world.settings, channel_settings={
        "FINOPS_TEAMS_URL": f"{sink.url}/teams/finops", "FINOPS_SLACK_URL": f"{sink.url}/slack/finops"})  # fmt: skip

    def costs_then_alerts(now: dt.datetime) -> Any:
        summary = run_costs(world.stack.settings, now=now, clients=world.stack.clients(), sleep=lambda _: None)
        clients = replace(world.clients(), channels=lambda group, target: webhook_channel(settings, target))
        return evaluate_and_notify(settings, summary, now=now, clients=clients)

    def cards() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return ([json.loads(r.body) for r in sink.service.received("teams")],
                [json.loads(r.body) for r in sink.service.received("slack")])  # fmt: skip

    try:
        spend(world.stack, NOW - dt.timedelta(minutes=15), 8)  # $0.80: crosses 50 % and 80 %
        sink.service.fail_next("teams", 503, count=3)  # every attempt of this run
        teams_down = r"group finops teams: teams channel .* HTTP 503 after 3"
        with pytest.raises(AlertDeliveryError, match=teams_down) as failed:
            costs_then_alerts(NOW)
        assert (failed.value.summary.emails_sent, failed.value.summary.posts_sent) == (1, 1)
        assert failed.value.summary.pending == 1 and failed.value.summary.notifications == []
        [message] = world.messages()
        teams, [slack] = cards()
        assert teams == [] and "$0.80" in json.dumps(slack) and "Value: $0.80" in json.dumps(slack)
        [record] = world.clients().state.load().values()
        assert record.delivered_channels == {"email", "slack"} and not record.open

        retried = costs_then_alerts(NOW + dt.timedelta(minutes=1))
        assert (retried.emails_sent, retried.posts_sent, len(retried.notifications)) == (0, 1, 1)
        [teams_card], [_] = cards()
        card_text = json.dumps(teams_card)
        assert message["Message-ID"].strip("<>") in card_text  # one id for the email and the card
        assert r'"title": "Value", "value": "$0.80"' in card_text and len(world.messages()) == 1
        [record] = world.clients().state.load().values()
        assert record.open and record.delivered_channels == frozenset()

        for minutes in (2, 3):  # the same figures: nothing new anywhere
            quiet = costs_then_alerts(NOW + dt.timedelta(minutes=minutes))
            assert (quiet.emails_sent, quiet.posts_sent) == (0, 0)
        assert [len(found) for found in cards()] == [1, 1] and len(world.messages()) == 1

        spend(world.stack, NOW - dt.timedelta(minutes=14), 3)  # $1.10: 110 %, escalates
        escalated = costs_then_alerts(NOW + dt.timedelta(minutes=4))
        assert (escalated.emails_sent, escalated.posts_sent) == (1, 2)
        teams, slack_cards = cards()
        assert "ESCALATED" in json.dumps(teams[-1]) and "$1.10" in json.dumps(slack_cards[-1])
        assert costs_then_alerts(NOW + dt.timedelta(minutes=5)).posts_sent == 0
    finally:
        loop_thread.run(sink.stop())


def test_an_escalation_of_a_notification_one_channel_missed_goes_to_every_channel(
    world: AlertWorld, loop_thread: LoopThread
) -> None:
    """Email got the 80 % notice, Slack refused it (404, final for the run); before the next run it escalates to
    110 %: the escalated notice replaces the missed one and reaches email and Slack alike, once."""
    assert world.settings.azure.ca_bundle is not None
    sink = loop_thread.run(start_webhook_sink(WebhookSinkConfig(world.outbox.parent / "webhooks",
                                                                world.settings.azure.ca_bundle.parent)))  # fmt: skip
    rules = {**RULES, "recipient_groups": {"finops": {"email": ["finops@example.com"], "slack": "FINOPS_SLACK"}}}
    world.settings.rules_file.write_text(json.dumps(rules))
    settings = replace(world.settings, channel_settings={"FINOPS_SLACK": f"{sink.url}/slack/finops"})
    clients = replace(world.clients(), channels=lambda group, target: webhook_channel(settings, target))
    try:
        spend(world.stack, NOW - dt.timedelta(minutes=15), 8)  # 80 %
        run_costs(world.stack.settings, now=NOW, clients=world.stack.clients(), sleep=lambda _: None)
        sink.service.fail_next("slack", 404, body="no_service")
        with pytest.raises(AlertDeliveryError, match="HTTP 404: no_service"):
            evaluate_and_notify(settings, None, now=NOW, clients=clients)
        spend(world.stack, NOW - dt.timedelta(minutes=14), 3)  # 110 %
        run_costs(world.stack.settings, now=NOW, clients=world.stack.clients(), sleep=lambda _: None)
        escalated = evaluate_and_notify(settings, None, now=NOW + dt.timedelta(minutes=1), clients=clients)
        assert (escalated.emails_sent, escalated.posts_sent, escalated.pending) == (1, 1, 0)
        first, second = world.messages()
        [slack] = [json.loads(received.body) for received in sink.service.received("slack")]
        assert "$0.80" in text_of(first) and "$1.10" in text_of(second) and "$1.10" in json.dumps(slack)
        assert second["Message-ID"].strip("<>") in json.dumps(slack)
        quiet = evaluate_and_notify(settings, None, now=NOW + dt.timedelta(minutes=2), clients=clients)
        assert (quiet.emails_sent, quiet.posts_sent) == (0, 0)
    finally:
        loop_thread.run(sink.stop())
