"""After a costs run: evaluate the alert rules, and mail what fired, escalated or resolved, once.

One run:
  1. loads the rules file (shared/alerts/rules.py; a bad file fails with file, rule and field);
  2. reads the cost summaries (latest complete revision per window) and, for the pipeline-health
     rules, the synthetic ground truth (shared/alerts/data.py);
  3. evaluates every rule (shared/alerts/evaluate.py), with the costs run's fresh day/month spend and
     the bypass check's comparisons (shared/meters/);
  4. per rule x scope member, decides what to tell (shared/alerts/transitions.py) and claims it in
     Table storage with an ETag-conditional write (shared/alerts/state.py): an overlapping run that
     loses the race skips it, so two runs cannot both send; a finding that could not be judged (a pending
     bypass comparison) leaves its alert as it is: no notice, no resolve;
  5. sends one digest per recipient group (shared/alerts/digest.py decides what it says, shared/email/
     render.py lays it out, shared/email/delivery.py or acs.py sends it) to each of the group's channels:
     email, and the Teams, Slack and generic webhooks its rules file entry names (shared/channels/: the same
     view, the email's Message-ID as the delivery id); a notification every channel delivered is marked
     sent, one that some channel failed stays pending with the channels that did deliver it, and the next
     run sends it to the others only. A failed channel never keeps the others from delivering.
Exactly once where it can be, at most one more copy per crash where it cannot: the claim (step 4) is written
before the send and records the email's Message-ID and the attempt; "sent" is written after. A run that ends
in between (killed, or its sent write lost) leaves a claim whose lease expires; the next run sends the same
email again under the same Message-ID (which mail clients thread, and many dedupe) as attempt n+1. Over SMTP
nothing can tell whether the first was accepted, so the recipients may get it twice, never more per such
crash; Communication Services is first asked for the earlier attempts' operations (shared/email/acs.py) and
sends nothing if one succeeded. A notice that stopped firing meanwhile is resolved, not dropped: it may be out.
Raises AlertDeliveryError (after recording state) when some digest could not be delivered.
Heavy imports (pandas, Azure SDKs) happen inside evaluate_and_notify.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from shared.alerts.findings import Finding, Notification
from shared.alerts.rules import RuleSet, load_rules
from shared.alerts.state import AlertRecord
from shared.alerts.transitions import subject_of, transition
from shared.config import AlertSettings, app_relative
from shared.errors import DeliveryError
from shared.timing import timed

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

    from shared.alerts.rules import ChannelTarget
    from shared.alerts.state import AlertStateStore
    from shared.billing.outputs import BillReport
    from shared.channels.transports import Channel
    from shared.costs.outputs import CostRunSummary
    from shared.email.delivery import Transport
    from shared.email.views import DigestView
    from shared.meters.outputs import BypassReport

log = logging.getLogger(__name__)


# A recipient group's webhook channel (Teams, Slack, generic) as the run will send to it; None: switched off.
ChannelFactory = Callable[[str, "ChannelTarget"], "Channel | None"]


def _no_channels(group: str, target: ChannelTarget) -> Channel | None:
    return None


@dataclass
class AlertClients:
    query: LogsQueryClient
    state: AlertStateStore
    transport: Transport
    # The webhook channels by recipient group and target; the default switches them all off (email only).
    channels: ChannelFactory = _no_channels


@dataclass
class AlertRunSummary:
    run_id: str
    evaluated: int = 0
    firing: int = 0
    notifications: list[Notification] = field(default_factory=list)  # delivered
    emails_sent: int = 0
    posts_sent: int = 0  # Teams cards, Slack messages and webhook events delivered
    pending: int = 0  # claimed but not delivered on every channel of its group (retried next run)
    skipped: int = 0  # claimed by an overlapping run, or lost the write race to one
    resent: int = 0  # emails handed over again after a run recorded no outcome (same Message-ID; ACS checks first)
    held: int = 0  # findings that could not be judged (pending comparisons): their alerts left as they are
    delivery_errors: list[str] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)  # read, evaluate, claim, render, send

    def line(self) -> str:
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.step_seconds.items())
        return (
            f"alerts run {self.run_id[:8]}: {self.evaluated} evaluated, {self.firing} firing"
            + (f", {self.held} held (comparison pending)" if self.held else "")
            + "; "
            f"{len(self.notifications)} notifications in {self.emails_sent} emails"
            + (f" and {self.posts_sent} webhook posts" if self.posts_sent else "")
            + (f" ({self.resent} after an unrecorded earlier attempt, same Message-ID)" if self.resent else "")
            + f"; {self.pending} pending; {self.skipped} left to an overlapping run"
            + (f"; delivery failed: {'; '.join(self.delivery_errors)}" if self.delivery_errors else "")
            + (f"; {steps}" if steps else "")
        )


@dataclass(frozen=True)
class Claimed:
    """A notification this run claimed (its record as written) and will send."""

    record: AlertRecord
    notification: Notification
    maybe_delivered: bool  # this email was attempted by a run that recorded no outcome: it may already be out


class AlertDeliveryError(DeliveryError):
    """Some digest was not delivered (its alerts stay pending); carries the run's summary."""

    def __init__(self, summary: AlertRunSummary) -> None:
        super().__init__(
            "alert email delivery failed (kept pending for the next run): " + "; ".join(summary.delivery_errors)
        )
        self.summary = summary


def build_clients(settings: AlertSettings) -> AlertClients:
    from shared.alerts.state import TableAlertStateStore
    from shared.email.acs import AcsEmailTransport
    from shared.email.delivery import SmtpTransport

    access = settings.azure
    credential = access.credential()
    ca_bundle = str(access.ca_bundle) if access.ca_bundle else None  # also for SMTP's STARTTLS
    transport: Transport
    if settings.delivery == "acs":
        assert settings.acs_endpoint is not None  # load_settings requires it with acs
        transport = AcsEmailTransport(settings.acs_endpoint, settings.sender, credential, ca_bundle)
    else:
        transport = SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_starttls,
            ca_bundle,
        )
    return AlertClients(
        query=access.logs_query_client(settings.query_endpoint, credential),
        state=TableAlertStateStore(access.state_table(settings, "alert state", credential)),
        transport=transport,
        channels=lambda group, target: webhook_channel(settings, target),
    )


def webhook_channel(settings: AlertSettings, target: ChannelTarget) -> Channel | None:
    """The channel a rules file target names, from the app settings read at start; None when its URL setting is
    empty (switched off). A setting not read at start (the rules file changed since) is a delivery error."""
    from shared.channels.transports import WebhookChannel, secret_key

    url = settings.channel_settings.get(target.url_setting)
    secret = settings.channel_settings.get(target.secret_setting) if target.secret_setting else ""
    if url is None or secret is None:
        missing = target.url_setting if url is None else target.secret_setting
        raise DeliveryError(f"app setting {missing} (named by {target.where}) was not read at start: restart the app")
    if not url:
        return None
    try:
        key = secret_key(secret) if target.secret_setting else None
    except ValueError as error:
        raise DeliveryError(f"app setting {target.secret_setting} (named by {target.where}): {error}") from None
    ca_bundle = str(settings.azure.ca_bundle) if settings.azure.ca_bundle else None
    return WebhookChannel(target.kind, target.url_setting, url, key, ca_bundle)


def evaluate_and_notify(
    settings: AlertSettings,
    cost_summary: CostRunSummary | None,
    bypass: BypassReport | None = None,
    bill: BillReport | None = None,
    *,
    now: datetime | None = None,
    clients: AlertClients | None = None,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AlertRunSummary:
    """One alert run (see the module docstring; settings: shared/config.py's alerts section). `bypass`: the
    bypass check's report (shared/meters/) for the `bypass` rules, `bill` the bill check's (shared/billing/) for
    the `bill_gap` rules. `now` is the evaluation time (default: the
    wall clock)."""
    from shared.alerts.data import ranges_for, read_alert_data
    from shared.alerts.evaluate import Clock, evaluate

    now = (now or wall_clock()).astimezone(UTC)
    rules = load_rules(settings.rules_file)
    clients = clients or build_clients(settings)
    summary = AlertRunSummary(run_id=uuid.uuid4().hex)
    steps = summary.step_seconds
    ranges = ranges_for(rules.rules, now, settings.window_minutes)
    with_traffic = any(rule.kind in ("no_metrics", "reconciliation") for rule in rules.rules)
    with timed(steps, "read"):
        data = read_alert_data(clients.query, settings.workspace_id, ranges, with_traffic=with_traffic, now=now)
    with timed(steps, "evaluate"):
        findings = evaluate(
            rules, data, Clock(now, settings.window_minutes), cost_summary.spend if cost_summary else (), bypass, bill
        )
    summary.evaluated = len(findings)
    summary.firing = sum(finding.firing for finding in findings)
    summary.held = sum(finding.pending for finding in findings)
    with timed(steps, "claim"):
        claimed = _claim(settings, rules, findings, clients.state, summary, wall_clock())
    _deliver(settings, rules, claimed, clients, summary, wall_clock)
    log.info(summary.line())
    if summary.delivery_errors:
        raise AlertDeliveryError(summary)
    return summary


def _claim(
    settings: AlertSettings,
    rules: RuleSet,
    findings: Sequence[Finding],
    store: AlertStateStore,
    summary: AlertRunSummary,
    at: datetime,
) -> list[Claimed]:
    by_key = {finding.key: finding for finding in findings}
    records = store.load()
    claimed = []
    lease_until = at + timedelta(seconds=settings.lease_seconds)
    for key in sorted(set(by_key) | set(records)):
        finding = by_key.get(key)
        stored = records.get(key)
        if finding is not None and finding.pending:
            continue  # not judged this run: neither fired nor resolved
        if stored is None and (finding is None or not finding.firing):
            continue
        record = stored or AlertRecord(key=key, rule=finding.rule.name if finding else "", member=_member(key))
        rule = rules.rule(record.rule)
        if rule is None:
            continue  # a rule no longer in the file: its state stays as it was
        if record.claimed_by_other(summary.run_id, at):
            summary.skipped += 1
            continue
        updated = transition(record, finding, at)
        if updated.pending_kind:
            updated = _claimed(updated, record, settings, summary.run_id, rule.recipients, lease_until)
        if updated == record and stored is not None:
            continue
        written = store.write(updated)
        if written is None:
            summary.skipped += 1  # an overlapping run changed it first; it owns the notification
            continue
        if written.pending_kind:
            # The same email again (its Message-ID kept) after a run that recorded no outcome for it.
            again = record.maybe_delivered and written.message_id == record.message_id
            claimed.append(Claimed(written, _notification(written, finding), again))
    return claimed


def _claimed(
    updated: AlertRecord, before: AlertRecord, settings: AlertSettings, run_id: str, group: str, lease_until: datetime
) -> AlertRecord:
    """The record as this run claims its pending notification, before sending it: the email's Message-ID (the
    one an earlier attempt used when the notification is the same, else this run's for the group) and the
    attempt it is."""
    from shared.email.render import message_id_for

    same = (updated.pending_kind, updated.pending_period, updated.pending_level) == (
        before.pending_kind,
        before.pending_period,
        before.pending_level,
    )
    if not (same and before.message_id):
        group_tag = hashlib.sha256(group.encode()).hexdigest()[:12]
        updated = replace(updated, message_id=message_id_for(f"alerts.{run_id}.{group_tag}", settings.sender))
        # Another notification (an escalation of one some channel already carried): every channel gets it.
        updated = replace(updated, send_attempts=0, delivered_channels=frozenset())
    return replace(updated, send_attempts=updated.send_attempts + 1, claimed_by=run_id, claimed_until=lease_until)


def _deliver(
    settings: AlertSettings,
    rules: RuleSet,
    claimed: Sequence[Claimed],
    clients: AlertClients,
    summary: AlertRunSummary,
    wall_clock: Callable[[], datetime],
) -> None:
    # One digest per recipient group and Message-ID: this run's claims share one; a notification an earlier
    # attempt may have delivered goes again in the digest it was in (same Message-ID, same delivery id).
    groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
    for item in claimed:
        rule = rules.rule(item.record.rule)
        assert rule is not None
        groups[(rule.recipients, item.record.message_id)].append(item)
    for (group, message_id), items in sorted(groups.items()):
        channels = _group_channels(rules, group, clients, summary)
        sent_at = wall_clock()
        delivered: dict[str, set[str]] = {item.record.key: set() for item in items}
        maybe_out: set[str] = set()  # keys whose send failed when the transport may have accepted it
        for name, channel in channels:
            todo = [item for item in items if name not in item.record.delivered_channels]
            if not todo:
                continue  # delivered there by an earlier run; another channel failed then
            try:
                if channel is None:
                    _send_email(settings, rules.recipient_groups[group], message_id, todo, clients, summary, sent_at)
                else:
                    _post(settings, group, message_id, todo, channel, summary, sent_at)
            except DeliveryError as error:
                summary.delivery_errors.append(f"group {group}" + (f" {name}" if channel else "") + f": {error}")
                if error.maybe_delivered:
                    maybe_out.update(item.record.key for item in todo)
                continue
            for item in todo:
                delivered[item.record.key].add(name)
        names = {name for name, _ in channels}
        for item in items:
            done = delivered[item.record.key]
            if names <= item.record.delivered_channels | done:
                summary.notifications.append(item.notification)
                if clients.state.write(item.record.sent(sent_at)) is None:
                    # Only after our lease expired can another run have taken it: it may be sent twice.
                    log.warning("alert %s was taken over after its lease; it may be sent twice", item.record.key)
                continue
            summary.pending += 1
            released = item.record.released(frozenset(done))
            if item.record.key in maybe_out:
                # Kept as a crash leaves it (claimed, its lease over): maybe delivered, so the next run sends the same
                # email again, or a resolved notice if it cleared meanwhile, never nothing.
                released = replace(released, claimed_by=item.record.claimed_by, claimed_until=sent_at)
            if clients.state.write(released) is None:
                log.warning("alert %s changed while its delivery failed; left to the other run", item.record.key)


def _group_channels(
    rules: RuleSet, group: str, clients: AlertClients, summary: AlertRunSummary
) -> list[tuple[str, Channel | None]]:
    """The group's channels as (name, channel): ("email", None) when it has addresses, then each webhook channel
    that is switched on. One that cannot be built is a delivery error of the run; the others still deliver."""
    channels: list[tuple[str, Channel | None]] = [("email", None)] if rules.recipient_groups.get(group) else []
    for target in rules.channels.get(group, ()):
        try:
            channel = clients.channels(group, target)
        except DeliveryError as error:
            summary.delivery_errors.append(f"group {group} {target.kind}: {error}")
            channels.append((target.kind, _Unavailable(target.kind, str(error))))
            continue
        if channel is None:
            log.info("recipient group %s: %s channel switched off (app setting %s is empty)", group, target.kind,
                     target.url_setting)  # fmt: skip
            continue
        channels.append((target.kind, channel))
    return channels


@dataclass(frozen=True)
class _Unavailable:
    """A channel that could not be built this run: its notifications stay pending for it."""

    kind: str
    reason: str

    def send(self, delivery: object) -> None:
        raise DeliveryError(self.reason)


def _view(settings: AlertSettings, items: Sequence[Claimed], sent_at: datetime) -> DigestView:
    from shared.alerts.digest import digest_view

    return digest_view(
        [item.notification for item in items],
        rules_file=app_relative(settings.rules_file),  # as configured: the file a reader edits
        generated_at=sent_at,
        dashboard_url=settings.dashboard_url,
    )


def _send_email(
    settings: AlertSettings,
    recipients: Sequence[str],
    message_id: str,
    items: Sequence[Claimed],
    clients: AlertClients,
    summary: AlertRunSummary,
    sent_at: datetime,
) -> None:
    from shared.email.render import build_message, render

    attempt = max(item.record.send_attempts for item in items)
    maybe_out = any(item.maybe_delivered for item in items)  # not after a failure the run saw and recorded
    with timed(summary.step_seconds, "render"):
        message = build_message(
            render(_view(settings, items, sent_at)),
            sender=settings.sender, recipients=recipients, sent_at=sent_at, message_id=message_id,
        )  # fmt: skip
    if maybe_out:
        log.warning(
            "alert email %s, attempt %d: an earlier attempt's outcome was never recorded (the run ended after "
            "claiming it); sending it again under the same Message-ID",
            message_id, attempt,
        )  # fmt: skip
    with timed(summary.step_seconds, "send"):
        clients.transport.send(message, recipients, attempt=attempt)
    summary.emails_sent += 1
    summary.resent += maybe_out


def _post(
    settings: AlertSettings,
    group: str,
    message_id: str,
    items: Sequence[Claimed],
    channel: Channel,
    summary: AlertRunSummary,
    sent_at: datetime,
) -> None:
    from shared.channels.payloads import Delivery, NotificationRef

    with timed(summary.step_seconds, "render"):
        delivery = Delivery(
            id=message_id.strip("<>"),  # the email's Message-ID: the same for every attempt at these notifications
            group=group,
            view=_view(settings, items, sent_at),
            notifications=tuple(
                NotificationRef(
                    item.record.key, item.record.pending_period, item.record.pending_level, item.record.pending_kind
                )
                for item in items
            ),
        )
    with timed(summary.step_seconds, "send"):
        channel.send(delivery)
    summary.posts_sent += 1


def _member(key: str) -> str:
    return key.partition("|")[2]


def _notification(record: AlertRecord, finding: Finding | None) -> Notification:
    current = finding if finding is not None and finding.period_key == record.pending_period else None
    kind: Literal["fired", "escalated", "resolved"] = (
        "resolved"
        if record.pending_kind == "resolved"
        else "escalated"
        if record.pending_kind == "escalated"
        else "fired"
    )
    severity = record.pending_severity if record.pending_severity in ("critical", "warning", "resolved") else "warning"
    return Notification(
        kind=kind,
        key=record.key,
        rule_name=record.rule,
        scope_label=current.scope_label if current else record.member,
        period_key=record.pending_period,
        level=record.pending_level,
        severity=severity,  # type: ignore[arg-type]
        # A notification pending since an earlier run shows this run's figures when it still applies.
        subject=subject_of(current)
        if current and kind != "resolved" and current.level == record.pending_level
        else record.pending_subject,
        finding=current,
    )
