"""After the alert rules: send each chargeback report that is due, once per period, group and status.

One run, for each period kind of REPORT_PERIODS that the rules file's reports section names (plan.py):
  1. the latest ended period (last week, last month) and its figures beside the period before (figures.py; a period
     with no cost rows has no report);
  2. its status: final once every window of it is final, else provisional;
  3. per recipient group: the state record of (kind, period, group) in the alert state's table (shared/alerts/state.py,
     partition "reports") says what was sent. A provisional report goes out once; the final one once, after it (or
     alone, when the period was final before any provisional went out). Each send is claimed first with an
     ETag-conditional write that records the email's Message-ID and the attempt, and marked sent after, exactly as
     the alert notifications (shared/alerts/run.py): an overlapping run that loses the write race skips it; a run
     that ended between its claim and its "sent" write leaves a claim whose lease expires, and the next run sends the
     same email again under the same Message-ID (Communication Services is first asked whether it went out:
     shared/email/acs.py). A failed send stays claimable and is retried by the next costs run.
Failures of the query, the state or a transport are logged and reported in the summary line, never raised: the
next costs run tries again. A bad reports section raises InputFileError (file, line, field).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.alerts.state import AlertRecord
from shared.config import AlertSettings, app_relative
from shared.errors import AppError, DeliveryError
from shared.reports.plan import ReportTarget, last_ended, load_report_plan

if TYPE_CHECKING:
    from shared.alerts.run import AlertClients
    from shared.reports.figures import ReportFigures

log = logging.getLogger(__name__)

PARTITION = "reports"  # beside the alerts' records in the alert state table
RANKS = {"provisional": 1, "final": 2}


@dataclass
class ReportRunSummary:
    run_id: str
    enabled: bool = True
    sent: list[str] = field(default_factory=list)  # "monthly 2026-11 final to finops"
    already_sent: int = 0
    skipped: int = 0  # claimed by an overlapping run, or lost the write race to one
    resent: int = 0  # sent again after a run recorded no outcome (same Message-ID)
    no_usage: list[str] = field(default_factory=list)  # periods without cost rows: no report
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.enabled:
            return "chargeback reports: none configured (REPORT_PERIODS none, or no reports in the rules file)"
        return (
            f"chargeback reports {self.run_id[:8]}: sent {', '.join(self.sent) or 'none'}; {self.already_sent} already "
            f"sent; {self.skipped} left to an overlapping run"
            + (f"; {self.resent} after an unrecorded earlier attempt (same Message-ID)" if self.resent else "")
            + (f"; no usage in {', '.join(self.no_usage)}" if self.no_usage else "")
            + (f"; NOT SENT: {'; '.join(self.problems)}" if self.problems else "")
        )


def send_reports(
    settings: AlertSettings,
    final_through: datetime | None,
    *,
    now: datetime | None = None,
    clients: AlertClients | None = None,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReportRunSummary:
    """One report run (module docstring). `final_through`: the costs progress watermark (every window ending at or
    before it is final); `clients` (query, state in the reports partition, transport) are built from the settings
    when not given."""
    now = (now or wall_clock()).astimezone(UTC)
    summary = ReportRunSummary(run_id=uuid.uuid4().hex)
    targets = [target for target in load_report_plan(settings.rules_file) if target.period in settings.report_periods]
    if not targets:
        summary.enabled = False
        log.info(summary.line())
        return summary
    try:
        clients = clients or _clients(settings)
        records = clients.state.load()
    except AppError as error:
        summary.problems.append(str(error))
        log.warning(summary.line())
        return summary
    for kind in sorted({target.period for target in targets}):
        try:
            _send_period(settings, kind, [t for t in targets if t.period == kind], final_through, now, clients,
                         records, summary, wall_clock)  # fmt: skip
        except AppError as error:
            summary.problems.append(f"{kind}: {error}")
    (log.warning if summary.problems else log.info)(summary.line())
    return summary


def _clients(settings: AlertSettings) -> AlertClients:
    from shared.alerts.run import build_clients
    from shared.alerts.state import TableAlertStateStore

    clients = build_clients(settings)
    table = settings.azure.state_table(settings, "chargeback report state")
    return replace(clients, state=TableAlertStateStore(table, partition=PARTITION))


def _send_period(
    settings: AlertSettings,
    kind: str,
    targets: Sequence[ReportTarget],
    final_through: datetime | None,
    now: datetime,
    clients: AlertClients,
    records: dict[str, AlertRecord],
    summary: ReportRunSummary,
    wall_clock: Callable[[], datetime],
) -> None:
    from shared.reports.figures import bill_status, read_figures

    period = last_ended(kind, now)

    def sent(target: ReportTarget, rank: int) -> bool:
        record = records.get(f"{kind}|{period.key}|{target.group}")
        return record is not None and record.notified_period == period.key and record.notified_rank >= rank

    if all(sent(target, RANKS["final"]) for target in targets):
        summary.already_sent += len(targets)  # every costs run until the next period ends: no query
        return
    figures = read_figures(
        clients.query, settings.workspace_id, period, final_through,
        bill=lambda days: bill_status(clients.query, settings.workspace_id, days),
    )  # fmt: skip
    if figures is None:
        summary.no_usage.append(f"{kind} {period.key}")
        return
    rank = RANKS[figures.status]
    for target in targets:
        key = f"{kind}|{period.key}|{target.group}"
        record = records.get(key) or AlertRecord(key=key, rule=f"report:{kind}", member=target.group)
        if sent(target, rank):
            summary.already_sent += 1
            continue
        at = wall_clock()
        if record.claimed_by_other(summary.run_id, at):
            summary.skipped += 1
            continue
        claimed = clients.state.write(_claim(record, settings, summary.run_id, period.key, figures, target, at))
        if claimed is None:
            summary.skipped += 1  # an overlapping run changed it first; it sends this report
            continue
        records[key] = _deliver(settings, clients, record, claimed, figures, target, summary, wall_clock)


def _claim(
    record: AlertRecord,
    settings: AlertSettings,
    run_id: str,
    period_key: str,
    figures: ReportFigures,
    target: ReportTarget,
    at: datetime,
) -> AlertRecord:
    """The record as this run claims the report, before sending it: the Message-ID an earlier attempt of the same
    report (period and status) used, else a new one, and the attempt it is."""
    from shared.email.render import message_id_for
    from shared.reports.render import subject_of

    same = record.pending_kind and (record.pending_period, record.pending_level) == (period_key, figures.status)
    updated = record
    if not (same and record.message_id):
        group_tag = hashlib.sha256(target.group.encode()).hexdigest()[:12]
        unique = f"report.{figures.period.kind}.{period_key}.{figures.status}.{group_tag}.{run_id}"
        updated = replace(
            record, pending_kind="fired", pending_period=period_key, pending_level=figures.status,
            pending_rank=RANKS[figures.status], pending_severity="", pending_subject=subject_of(figures),
            pending_since=at, message_id=message_id_for(unique, settings.sender), send_attempts=0,
        )  # fmt: skip
    lease_until = at + timedelta(seconds=settings.lease_seconds)
    return replace(updated, send_attempts=updated.send_attempts + 1, claimed_by=run_id, claimed_until=lease_until)


def _deliver(
    settings: AlertSettings,
    clients: AlertClients,
    before: AlertRecord,
    claimed: AlertRecord,
    figures: ReportFigures,
    target: ReportTarget,
    summary: ReportRunSummary,
    wall_clock: Callable[[], datetime],
) -> AlertRecord:
    """Send the claimed report; the record as stored afterwards (sent, or released for the next run)."""
    from shared.email.render import build_message
    from shared.reports.render import attachment_name, render_report

    # The same email again (its Message-ID kept) after a run that recorded no outcome for it.
    again = before.maybe_delivered and before.message_id == claimed.message_id
    sent_at = wall_clock()
    digest, attachment = render_report(
        figures, top_movers=target.top_movers, generated_at=sent_at, rules_file=app_relative(settings.rules_file)
    )
    message = build_message(
        digest, sender=settings.sender, recipients=target.recipients, sent_at=sent_at, message_id=claimed.message_id
    )
    message.add_attachment(attachment, maintype="text", subtype="csv", filename=attachment_name(figures))
    what = f"{figures.period.kind} {figures.period.key} {figures.status} to {target.group}"
    if again:
        log.warning("chargeback report %s (%s), attempt %d: an earlier attempt's outcome was never recorded; sending "
                    "it again under the same Message-ID", what, claimed.message_id, claimed.send_attempts)  # fmt: skip
    try:
        clients.transport.send(message, target.recipients, attempt=claimed.send_attempts)
    except DeliveryError as error:
        summary.problems.append(f"{what}: {error}")
        return clients.state.write(claimed.released()) or claimed
    summary.sent.append(what)
    summary.resent += again
    done = clients.state.write(claimed.sent(sent_at))
    if done is None:
        # Only after our lease expired can another run have taken it: it may mail it again.
        log.warning("chargeback report %s was taken over after its lease; it may be mailed twice", what)
        return claimed
    return done
