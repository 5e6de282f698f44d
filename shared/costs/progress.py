"""Costs progress: which windows are final, and what was last uploaded.

ProgressStore is the contract; TableProgressStore keeps it in Azure Table storage and
InMemoryProgressStore is its in-memory twin (tests, the benchmark), held to the same answers by
tests/costs/test_progress_contract.py.

In Table storage: one partition per scope (workspace x metrics schema x window width, so changing a
setting never mixes progress). Per window one entity, RowKey = the window start (ISO 8601, sorts by
time), describing its last upload: Final, Revision, Fingerprint (digest of the uploaded rows), Rows,
PriceVersion (the price table it was priced with), UsageFingerprint (digest of its usage alone, so a
later run tells late usage from new prices), UnpricedModels (JSON list of the price keys it left
unpriced) and, when `python -m tools.reprice` wrote it, RepriceReason. Entities written before a
column existed lack it: it reads as None ("not known"). A window's entity is replaced as a whole, so
no column outlives the upload it described. One more entity, RowKey "watermark", holds FinalThrough:
every window ending at or before it is final and uploaded.

Written only after a window's upload fully succeeded: a crash before that makes the next run
compute and upload the window again as a new revision, which readers prefer (latest revision per
window), so nothing is double counted and nothing skipped. No write depends on what was read (one
run per scope at a time; upserting a window again is harmless), so there are no ETags here.

The table comes from shared/azure_clients.py (AzureAccess.state_table): a connection string (Azurite locally, or
a storage key) or a table endpoint (https://<account>.table.core.windows.net) with the app's
managed identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.errors import AzureServiceError, maps_azure_errors
from shared.windows import as_utc, plain_utc

if TYPE_CHECKING:
    from azure.data.tables import TableClient

WATERMARK_ROW_KEY = "watermark"
_TRANSACTION_LIMIT = 100  # entities per Table storage batch transaction


@dataclass(frozen=True)
class WindowProgress:
    window_start: datetime
    final: bool
    revision: datetime
    fingerprint: str
    rows: int
    # None below: not known (an entity written before the column existed).
    price_version: str | None = None
    usage_fingerprint: str | None = None
    unpriced_models: tuple[str, ...] | None = None  # price keys, as PricedUsage.unpriced_models names them
    reprice_reason: str | None = None  # why `python -m tools.reprice` wrote this upload; None: a costs run did


class ProgressStore(Protocol):
    def final_through(self) -> datetime | None:
        """The watermark: every window ending at or before it is final (None: first run)."""

    def windows(self, since: datetime) -> dict[datetime, WindowProgress]:
        """What was recorded for the windows starting at or after `since`."""

    def save(self, windows: Iterable[WindowProgress], final_through: datetime | None) -> None:
        """Record uploaded windows, then move the watermark (never backwards)."""


def row_key(start: datetime) -> str:
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TableProgressStore:
    def __init__(self, table: TableClient, scope: str) -> None:
        self._table = table
        self._scope = _safe_key(scope)

    @maps_azure_errors(AzureServiceError, "reading the costs progress")
    def windows(self, since: datetime) -> dict[datetime, WindowProgress]:
        entities = self._table.query_entities(
            "PartitionKey eq @scope and RowKey ge @since and RowKey lt @after_dates",
            parameters={"scope": self._scope, "since": row_key(since), "after_dates": "A"},
        )
        windows = {}
        for entity in entities:
            progress = _from_entity(entity)
            windows[progress.window_start] = progress
        return windows

    @maps_azure_errors(AzureServiceError, "reading the costs watermark")
    def final_through(self) -> datetime | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table.get_entity(self._scope, WATERMARK_ROW_KEY)
        except ResourceNotFoundError:
            return None
        return plain_utc(entity["FinalThrough"])

    @maps_azure_errors(AzureServiceError, "saving the costs progress")
    def save(self, windows: Iterable[WindowProgress], final_through: datetime | None) -> None:
        from azure.data.tables import UpdateMode

        # Replace, not the SDK's default merge: a column the new upload does not have (RepriceReason)
        # must not survive from the previous one.
        replace_mode = {"mode": UpdateMode.REPLACE}
        operations = [("upsert", self._entity(w), replace_mode) for w in windows]
        for first in range(0, len(operations), _TRANSACTION_LIMIT):
            self._table.submit_transaction(operations[first : first + _TRANSACTION_LIMIT])
        if final_through is None:
            return
        current = self.final_through()
        if current is None or final_through > current:
            self._table.upsert_entity(
                {"PartitionKey": self._scope, "RowKey": WATERMARK_ROW_KEY, "FinalThrough": final_through}
            )

    def _entity(self, progress: WindowProgress) -> dict[str, Any]:
        return {
            "PartitionKey": self._scope,
            "RowKey": row_key(progress.window_start),
            "WindowStart": progress.window_start,
            "Final": progress.final,
            "Revision": progress.revision,
            "Fingerprint": progress.fingerprint,
            "Rows": progress.rows,
            "PriceVersion": progress.price_version,
            "UsageFingerprint": progress.usage_fingerprint,
            "UnpricedModels": None if progress.unpriced_models is None else json.dumps(list(progress.unpriced_models)),
            "RepriceReason": progress.reprice_reason,
        }  # the SDK leaves None values out of the entity: they read back as None


class InMemoryProgressStore:
    """TableProgressStore's twin for one scope, kept in this object: the same keys (windows are
    told apart by their RowKey, to the second), the same UTC datetimes, the watermark never moving
    back. `fail_next_save(error)` makes the next save raise before writing anything, as a run
    killed between its upload and its progress mark."""

    def __init__(self) -> None:
        self._windows: dict[str, WindowProgress] = {}  # by row_key(window_start), as the table
        self._final_through: datetime | None = None
        self._save_failures: list[BaseException] = []

    def fail_next_save(self, error: BaseException) -> None:
        self._save_failures.append(error)

    def windows(self, since: datetime) -> dict[datetime, WindowProgress]:
        first = row_key(since)
        return {w.window_start: w for key, w in sorted(self._windows.items()) if key >= first}

    def final_through(self) -> datetime | None:
        return self._final_through

    def save(self, windows: Iterable[WindowProgress], final_through: datetime | None) -> None:
        if self._save_failures:
            raise self._save_failures.pop(0)
        for window in windows:
            # The table gives datetimes back as plain UTC ones, whatever zone they were written in.
            stored = replace(window, window_start=as_utc(window.window_start), revision=as_utc(window.revision))
            self._windows[row_key(window.window_start)] = stored
        if final_through is not None and (self._final_through is None or final_through > self._final_through):
            self._final_through = as_utc(final_through)


def _from_entity(entity: Mapping[str, Any]) -> WindowProgress:
    unpriced = entity.get("UnpricedModels")
    return WindowProgress(
        window_start=plain_utc(entity["WindowStart"]),
        final=bool(entity["Final"]),
        revision=plain_utc(entity["Revision"]),
        fingerprint=str(entity["Fingerprint"]),
        rows=int(entity["Rows"]),
        price_version=_optional_text(entity.get("PriceVersion")),
        usage_fingerprint=_optional_text(entity.get("UsageFingerprint")),
        unpriced_models=None if unpriced is None else tuple(str(key) for key in json.loads(unpriced)),
        reprice_reason=_optional_text(entity.get("RepriceReason")),
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _safe_key(scope: str) -> str:
    # PartitionKey may not contain / \ # ? or control characters.
    return "".join("_" if char in "/\\#?" or ord(char) < 0x20 else char for char in scope)
