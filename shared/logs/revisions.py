"""Tables of revisioned comparisons: the bill check's BillReconciliation_CL and the bypass check's MeterComparison_CL.

Both checks compare the same things again on every run (the last settled days, the last final windows) and keep
what they found: a comparison is written as a new revision of its key (day x account, window x deployment) only
when it says something else than the key's latest revision, and readers take the latest revision per key (one KQL
file each: bill-reconciliation-latest.kql, meter-comparison-latest.kql). What the two share is here:
  - read_latest: the latest revisions through the check's KQL file (query_table judges the answer);
  - next_revision: a revision later than every revision read, so a new one always supersedes (two runs within one
    clock tick, or a clock behind the table's, still order);
  - row_text: one row as the Logs Ingestion API takes it (compact ASCII JSON, datetimes ISO 8601 UTC to the
    microsecond, as the KQL files compare them);
  - write_revision: the rows of one write through shared/logs/upload.py (chunked, gzip, retried per request),
    grouped per key instant, and what did not arrive, in words.
Knows Log Analytics, not what is compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.logs.kql import load_query
from shared.logs.query import query_table
from shared.logs.upload import UploadPolicy, upload_windows

if TYPE_CHECKING:
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient

# The latest revisions of a few days or windows are tens of rows: a minute is ample, and it bounds what the read
# adds to the costs timer's worst case (tests/test_host_json.py; the query API's default is 3 minutes).
LATEST_SERVER_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class RevisionTable:
    """Where one check's comparisons are written: the DCR stream and the upload's retries."""

    what: str  # names the rows in logs: "bill comparison"
    rule_id: str
    stream: str
    attempts: int
    retry_delay_seconds: float


def read_latest(
    client: LogsQueryClient,
    workspace_id: str,
    what: str,
    query_file: str,
    start: datetime,
    end: datetime,
    columns: Sequence[str],
) -> list[dict[str, Any]]:
    """The rows of `query_file` (parameters start_time, end_time) as column -> value. Raises QueryError."""
    query = load_query(query_file, {"start_time": start, "end_time": end})
    # Rows carry TimeGenerated = their revision, written after what they compare: ask from the start up to now.
    rows = query_table(
        client, workspace_id, what, query, (start, max(end, datetime.now(UTC))), columns,
        server_timeout_seconds=LATEST_SERVER_TIMEOUT_SECONDS,
    )  # fmt: skip
    return [dict(zip(columns, row, strict=True)) for row in rows]


def next_revision(now: datetime, revisions: Iterable[datetime | None]) -> datetime:
    """`now`, or just after the latest revision read when that is later."""
    return max([now, *(revision + timedelta(microseconds=1) for revision in revisions if revision is not None)])


def as_instant(value: Any) -> datetime:
    """A datetime cell (a datetime from LogsQueryClient, or ISO 8601 text) as an aware UTC datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_text(values: Mapping[str, Any]) -> str:
    """One row's JSON text; datetimes become ISO 8601 UTC, None null."""
    return json.dumps(
        {name: iso(value) if isinstance(value, datetime) else value for name, value in values.items()},
        separators=(",", ":"),
        allow_nan=False,
    )


def write_revision(
    client: LogsIngestionClient, table: RevisionTable, groups: Mapping[datetime, Sequence[str]]
) -> list[str]:
    """Upload the rows of one write, grouped by the instant of their key (a day, a window); the problems of the
    groups that did not fully arrive (empty when all did). A group that failed half way is a revision readers
    still see in part: the caller writes it again on its next run (its latest revision then differs)."""
    policy = UploadPolicy(
        what=table.what, rule_id=table.rule_id, stream=table.stream, chunk_rows=5000, attempts=table.attempts,
        retry_delay_seconds=table.retry_delay_seconds,
    )  # fmt: skip
    return upload_windows(client, policy, sorted(groups.items())).problems
