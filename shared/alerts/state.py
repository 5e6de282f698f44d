"""Alert state: what was notified, what is pending, who is sending it.

AlertStateStore is the contract; TableAlertStateStore keeps it in Azure Table storage and
InMemoryAlertStateStore is its in-memory twin (tests), held to the same answers, ETags and lost
races by tests/alerts/test_state_contract.py.

One record (in the table: one entity) per rule x scope member (RowKey: the key, percent-encoded;
one partition per app).
It remembers the period and level last notified (so each rule x scope x period x level is mailed
once, and a higher level in the same period escalates), whether the recipients were told it fires
(so a clear sends one resolved notice), and a pending notification that has not been delivered yet
(so a delivery failure is retried by the next run), with the Message-ID of the email carrying it (also the
id of the Teams / Slack / webhook deliveries of it), how many sends of that email were started and which
channels of the group already delivered it (a failed channel is retried alone): the claim that records
them is written before the send, so a run that ends between the transport's acceptance and the "sent"
write leaves a record that says which email may already be out (shared/alerts/run.py resends that email,
same Message-ID, and the Communication Services transport first asks the service whether it was:
shared/email/acs.py).

Two overlapping runs cannot both send: every write is conditional on the ETag read (or is an
insert that fails when the entity exists), and a run only mails what it *claimed* in such a write
(ClaimedBy = its run id, ClaimedUntil = a lease). The loser of a race skips the entity; a claim
left by a crashed run expires after the lease and the next run takes it over.
Stdlib at import; azure-data-tables is imported by the table store's calls, and the table comes
from shared/azure_clients.py (AzureAccess.state_table).
"""

from __future__ import annotations

import itertools
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.errors import AzureServiceError, maps_azure_errors
from shared.windows import as_utc, plain_utc

if TYPE_CHECKING:
    from azure.data.tables import TableClient

PARTITION = "alerts"
_MAX_KEY_CHARS = 500  # RowKey may be up to 1 KiB; percent-encoding can triple a character


@dataclass(frozen=True)
class AlertRecord:
    key: str  # rule x scope member (Finding.key)
    rule: str
    member: str
    open: bool = False  # the recipients were told it fires, and not yet that it cleared
    notified_period: str = ""
    notified_level: str = ""
    notified_rank: int = 0
    pending_kind: str = ""  # "", "fired", "escalated", "resolved"
    pending_period: str = ""
    pending_level: str = ""
    pending_rank: int = 0
    pending_severity: str = ""
    pending_subject: str = ""
    pending_since: datetime | None = None
    # The email carrying the pending notification ("<...@domain>"), chosen when it is first claimed and kept
    # until it is sent, so every attempt to deliver it is the same email to its recipients.
    message_id: str = ""
    send_attempts: int = 0  # sends of that email started (each claimed before it is handed to the transport)
    # The channels of its recipient group ("email", "teams", "slack", "webhook") that already delivered the pending
    # notification: a channel that failed is retried by the next run, the others are not sent again.
    delivered_channels: frozenset[str] = frozenset()
    claimed_by: str = ""
    claimed_until: datetime | None = None
    sent_at: datetime | None = None
    etag: str | None = None  # None: not stored yet

    def claimed_by_other(self, run_id: str, at: datetime) -> bool:
        return bool(self.claimed_by) and self.claimed_by != run_id and (self.claimed_until or at) > at

    def sent(self, at: datetime) -> AlertRecord:
        """The record once its pending notification was delivered."""
        if self.pending_kind == "resolved":
            done = replace(self, open=False)
        else:
            done = replace(
                self,
                open=True,
                notified_period=self.pending_period,
                notified_level=self.pending_level,
                notified_rank=self.pending_rank,
            )
        return replace(done, sent_at=at, claimed_by="", claimed_until=None, **NO_PENDING)

    def released(self, delivered: frozenset[str] = frozenset()) -> AlertRecord:
        """The record after a send that failed on some channel: unclaimed, its Message-ID and attempts kept for the
        retry, and the channels that did deliver it (`delivered`) remembered, so the retry skips them."""
        return replace(
            self, claimed_by="", claimed_until=None, delivered_channels=self.delivered_channels | delivered
        )

    @property
    def maybe_delivered(self) -> bool:
        """A notification whose send was started by a run that then recorded no outcome (it ended, or was
        killed, between its claim and its "sent" write): the email may have reached the recipients."""
        return bool(self.pending_kind) and bool(self.claimed_by) and self.send_attempts > 0


NO_PENDING: dict[str, Any] = {
    "pending_kind": "",
    "pending_period": "",
    "pending_level": "",
    "pending_rank": 0,
    "pending_severity": "",
    "pending_subject": "",
    "pending_since": None,
    "message_id": "",
    "send_attempts": 0,
    "delivered_channels": frozenset(),
}


def row_key(key: str) -> str:
    """A RowKey for any key: / \\ # ? and control characters are not allowed there."""
    encoded = urllib.parse.quote(key, safe="")
    if len(encoded) > _MAX_KEY_CHARS:
        import hashlib

        encoded = encoded[:400] + "~" + hashlib.sha256(key.encode()).hexdigest()
    return encoded


class AlertStateStore(Protocol):
    def load(self) -> dict[str, AlertRecord]:
        """Every record by key, each with the ETag it was read with."""

    def write(self, record: AlertRecord) -> AlertRecord | None:
        """Store the record if nobody changed it since it was read (its etag; None: insert only if it
        does not exist); the record with its new ETag, or None when that lost a race."""


class TableAlertStateStore:
    def __init__(self, table: TableClient, partition: str = PARTITION) -> None:
        self._table = table
        self._partition = partition  # the chargeback reports keep their records beside the alerts' (shared/reports/)

    @maps_azure_errors(AzureServiceError, "reading the alert state")
    def load(self) -> dict[str, AlertRecord]:
        entities = self._table.query_entities("PartitionKey eq @partition", parameters={"partition": self._partition})
        records = {}
        for entity in entities:
            record = _from_entity(entity)
            records[record.key] = record
        return records

    @maps_azure_errors(AzureServiceError, "writing the alert state")
    def write(self, record: AlertRecord) -> AlertRecord | None:
        """Store the record if nobody changed it since it was read; its new ETag, or None on a lost race."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        entity = {**_entity(record), "PartitionKey": self._partition}
        try:
            if record.etag is None:
                metadata = self._table.create_entity(entity)
            else:
                metadata = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=record.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return None
        return replace(record, etag=str(metadata["etag"]))


class InMemoryAlertStateStore:
    """TableAlertStateStore's twin, kept in this object (thread-safe, as overlapping runs need): the
    same conditional writes (insert fails if the key exists, update only with the current ETag,
    never of a record that is gone), a new ETag per write, records read back with UTC datetimes."""

    def __init__(self) -> None:
        self._records: dict[str, AlertRecord] = {}  # by row_key(key), as the table
        self._versions = itertools.count(1)
        self._lock = threading.Lock()

    def load(self) -> dict[str, AlertRecord]:
        with self._lock:
            return {record.key: record for record in self._records.values()}

    def write(self, record: AlertRecord) -> AlertRecord | None:
        with self._lock:
            current = self._records.get(row_key(record.key))
            if (current.etag if current is not None else None) != record.etag:
                return None  # an insert of an existing key, a stale ETag, or an update of a record that is gone
            etag = f'W/"memory-{next(self._versions)}"'
            # The table gives datetimes back as plain UTC ones, whatever zone they were written in.
            self._records[row_key(record.key)] = replace(
                record,
                pending_since=record.pending_since and as_utc(record.pending_since),
                claimed_until=record.claimed_until and as_utc(record.claimed_until),
                sent_at=record.sent_at and as_utc(record.sent_at),
                etag=etag,
            )
        return replace(record, etag=etag)


def _entity(record: AlertRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": row_key(record.key),
        "Key": record.key,
        "Rule": record.rule,
        "Member": record.member,
        "Open": record.open,
        "NotifiedPeriod": record.notified_period,
        "NotifiedLevel": record.notified_level,
        "NotifiedRank": record.notified_rank,
        "PendingKind": record.pending_kind,
        "PendingPeriod": record.pending_period,
        "PendingLevel": record.pending_level,
        "PendingRank": record.pending_rank,
        "PendingSeverity": record.pending_severity,
        "PendingSubject": record.pending_subject,
        "MessageId": record.message_id,
        "SendAttempts": record.send_attempts,
        "DeliveredChannels": ",".join(sorted(record.delivered_channels)),
        "ClaimedBy": record.claimed_by,
    }
    # Table storage has no null: an absent property is how "no time" is stored.
    for name, value in (
        ("PendingSince", record.pending_since),
        ("ClaimedUntil", record.claimed_until),
        ("SentAt", record.sent_at),
    ):
        if value is not None:
            entity[name] = value
    return entity


def _from_entity(entity: Mapping[str, Any]) -> AlertRecord:
    return AlertRecord(
        key=str(entity["Key"]),
        rule=str(entity["Rule"]),
        member=str(entity["Member"]),
        open=bool(entity.get("Open", False)),
        notified_period=str(entity.get("NotifiedPeriod", "")),
        notified_level=str(entity.get("NotifiedLevel", "")),
        notified_rank=int(entity.get("NotifiedRank", 0)),
        pending_kind=str(entity.get("PendingKind", "")),
        pending_period=str(entity.get("PendingPeriod", "")),
        pending_level=str(entity.get("PendingLevel", "")),
        pending_rank=int(entity.get("PendingRank", 0)),
        pending_severity=str(entity.get("PendingSeverity", "")),
        pending_subject=str(entity.get("PendingSubject", "")),
        pending_since=_aware(entity.get("PendingSince")),
        message_id=str(entity.get("MessageId", "")),
        send_attempts=int(entity.get("SendAttempts", 0)),
        delivered_channels=frozenset(filter(None, str(entity.get("DeliveredChannels", "")).split(","))),
        claimed_by=str(entity.get("ClaimedBy", "")),
        claimed_until=_aware(entity.get("ClaimedUntil")),
        sent_at=_aware(entity.get("SentAt")),
        etag=str(entity.metadata["etag"]) if hasattr(entity, "metadata") else None,
    )


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    return plain_utc(value)
