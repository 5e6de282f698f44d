"""When the bill check last read Cost Management: one entity in the costs progress table, its own partition.

Cost Management refreshes "every four hours" and asks callers to query "no more than once per day"
(MicrosoftDocs/azure-docs articles/cost-management-billing/costs/manage-automation.md, "Data latency and rate
limits"), while the costs timer runs every quarter of an hour: the check reads Cost Management again only
BILL_CHECK_INTERVAL_HOURS after its last complete read (a pending one is retried by the next run). The entity
sits in the costs progress table (COST_STATE_TABLE) under a partition no window uses; InMemoryLastCheck is its
twin for tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from shared.errors import AzureServiceError, maps_azure_errors

if TYPE_CHECKING:
    from azure.data.tables import TableClient

PARTITION = "bill-check"
ROW = "last-complete-read"


class LastCheckStore(Protocol):
    def last_check(self) -> datetime | None: ...
    def save(self, at: datetime) -> None: ...


class TableLastCheck:
    def __init__(self, table: TableClient, scope: str) -> None:
        self._table = table
        # One per workspace: two apps writing to two workspaces from one storage account keep their own.
        self._partition = f"{PARTITION}|" + "".join("_" if char in "/\\#?" else char for char in scope)

    @maps_azure_errors(AzureServiceError, "reading the bill check state")
    def last_check(self) -> datetime | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table.get_entity(self._partition, ROW)
        except ResourceNotFoundError:
            return None
        value = entity.get("CheckedAt")
        return value if isinstance(value, datetime) else None

    @maps_azure_errors(AzureServiceError, "saving the bill check state")
    def save(self, at: datetime) -> None:
        self._table.upsert_entity({"PartitionKey": self._partition, "RowKey": ROW, "CheckedAt": at})


class InMemoryLastCheck:
    def __init__(self, at: datetime | None = None) -> None:
        self.at = at

    def last_check(self) -> datetime | None:
        return self.at

    def save(self, at: datetime) -> None:
        self.at = at
