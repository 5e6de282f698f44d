"""Alert state in Azure Table storage: what was notified, what is pending, who is sending it.

One entity per rule x scope member (RowKey: the key, percent-encoded; one partition per app).
It remembers the period and level last notified (so each rule x scope x period x level is mailed
once, and a higher level in the same period escalates), whether the recipients were told it fires
(so a clear sends one resolved notice), and a pending notification that has not been delivered yet
(so a delivery failure is retried by the next run).

Two overlapping runs cannot both send: every write is conditional on the ETag read (or is an
insert that fails when the entity exists), and a run only mails what it *claimed* in such a write
(ClaimedBy = its run id, ClaimedUntil = a lease). The loser of a race skips the entity; a claim
left by a crashed run expires after the lease and the next run takes it over.
Stdlib at import; azure-data-tables is imported when connecting.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.errors import AzureServiceError, maps_azure_errors

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
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

    def released(self) -> AlertRecord:
        return replace(self, claimed_by="", claimed_until=None)


NO_PENDING: dict[str, Any] = {
    "pending_kind": "",
    "pending_period": "",
    "pending_level": "",
    "pending_rank": 0,
    "pending_severity": "",
    "pending_subject": "",
    "pending_since": None,
}


def row_key(key: str) -> str:
    """A RowKey for any key: / \\ # ? and control characters are not allowed there."""
    encoded = urllib.parse.quote(key, safe="")
    if len(encoded) > _MAX_KEY_CHARS:
        import hashlib

        encoded = encoded[:400] + "~" + hashlib.sha256(key.encode()).hexdigest()
    return encoded


class AlertStateStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    @classmethod
    def connect(
        cls,
        *,
        table_name: str,
        connection_string: str | None = None,
        endpoint: str | None = None,
        credential: TokenCredential | None = None,
        connection_verify: str | bool = True,
    ) -> AlertStateStore:
        from shared.azure_clients import open_table

        table = open_table(
            table_name,
            connection_string=connection_string,
            endpoint=endpoint,
            credential=credential,
            connection_verify=connection_verify,
            purpose="alert state",
        )
        return cls(table)

    @maps_azure_errors(AzureServiceError, "reading the alert state")
    def load(self) -> dict[str, AlertRecord]:
        entities = self._table.query_entities("PartitionKey eq @partition", parameters={"partition": PARTITION})
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

        entity = _entity(record)
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
        claimed_by=str(entity.get("ClaimedBy", "")),
        claimed_until=_aware(entity.get("ClaimedUntil")),
        sent_at=_aware(entity.get("SentAt")),
        etag=str(entity.metadata["etag"]) if hasattr(entity, "metadata") else None,
    )


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    # The SDK returns TablesEntityDatetime (a datetime subclass, UTC); normalise to a plain one.
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )
