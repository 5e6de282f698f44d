"""Noise control: from a stored alert record and this run's finding to what (if anything) to mail.

Rules, in order:
  * a firing finding notifies once per rule x scope x period x level: again only for a higher
    level in the same period (escalation), or in a new period, or after a resolved notice (a new
    episode: telling "resolved" and then staying silent while it burns again would mislead);
  * a finding that no longer fires sends one resolved notice, and only if the recipients had been
    told it fired, or may have been (its send was started by a run that recorded no outcome: the email
    may be out; or some channel of the group delivered it while another failed); a firing notice that
    was never delivered is dropped instead (nothing to tell);
  * a pending notification stays until delivered; a newer, higher one replaces it; a resolved notice made obsolete
    by a new fire is dropped, unless its email was handed to a transport (then the recipients may have read it,
    and the fire is mailed again).
Pure functions, stdlib only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shared.alerts.findings import Finding
from shared.alerts.state import NO_PENDING, AlertRecord


def subject_of(finding: Finding, *, resolved: bool = False) -> str:
    if resolved:
        return f"{finding.scope_label}: resolved, {finding.summary}"
    return f"{finding.scope_label}: {finding.summary}"


def transition(record: AlertRecord, finding: Finding | None, now: datetime) -> AlertRecord:
    """The record after this run's evaluation (equal to `record` when nothing changes)."""
    if finding is not None and finding.firing:
        same_period = record.notified_period == finding.period_key
        told = record.open and same_period and record.notified_rank >= finding.rank
        pending_covers = (
            record.pending_kind in ("fired", "escalated")
            and record.pending_period == finding.period_key
            and record.pending_rank >= finding.rank
        )
        if told and not (record.pending_kind == "resolved" and record.send_attempts > 0):
            # A resolved notice pending for it is obsolete: it fires again at a level already told.
            return replace(record, **NO_PENDING) if record.pending_kind == "resolved" else record
        if told:
            # Its resolved notice was handed to a transport already: the recipients may have read "resolved" (an
            # SMTP connection lost after DATA cannot tell), so they are told it fires again, not left with that.
            # Found by the chaos soak (bench/soak): "resolved" mailed twice with nothing in between.
            return _pending_fire(record, finding, "fired", now)
        if pending_covers:
            return record
        kind = "escalated" if record.open and same_period else "fired"
        return _pending_fire(record, finding, kind, now)
    # Not firing (or no data for its scope any more). Told, or maybe told: on some channel of its group (the others
    # failed), or by a run that recorded no outcome.
    if record.open or record.maybe_delivered or record.delivered_channels:
        if record.pending_kind == "resolved":
            return record
        subject = subject_of(finding, resolved=True) if finding else f"{_scope_of(record)}: resolved, no usage"
        return replace(
            record,
            pending_kind="resolved",
            pending_period=finding.period_key if finding else (record.notified_period or record.pending_period),
            pending_level="",
            pending_rank=0,
            pending_severity="resolved",
            pending_subject=subject,
            pending_since=now,
        )
    if record.pending_kind:
        return replace(record, **NO_PENDING)
    return record


def _pending_fire(record: AlertRecord, finding: Finding, kind: str, now: datetime) -> AlertRecord:
    return replace(
        record,
        pending_kind=kind,
        pending_period=finding.period_key,
        pending_level=finding.level,
        pending_rank=finding.rank,
        pending_severity=finding.severity,
        pending_subject=subject_of(finding),
        pending_since=record.pending_since or now,
    )


def _scope_of(record: AlertRecord) -> str:
    return record.member or record.rule
