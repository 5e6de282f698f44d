"""Upload a table's rows with the Logs Ingestion API, window by window, failures retried.

Knows Log Analytics, not what the rows are: the caller names them (`UploadPolicy.what`, e.g. "cost
summary" from shared/costs/run.py) for logs and thread names.

Rows arrive already encoded, one JSON object text each (shared/logs/rows.py), and are sent as
request bodies built here: JSON arrays of at most 1 MiB (the service's per-call limit, the same
split LogsIngestionClient makes for a list), gzip-compressed, each handed to
LogsIngestionClient.upload as a stream (its documented way to send a prepared body as is). Given a
list, the SDK serializes every row twice (once to measure it, once to send it) and compresses at
zlib's default level, which for a large run costs more CPU than everything else in the upload; here
each row is serialized once, compactly, and compressed at the fastest level. A request that fails
fails its rows (and only those), which are sent again, up to `attempts` times. A window with rows
still not accepted is reported failed: the caller does not mark it final, so the next run recomputes
it as a new revision. The rows of it that did arrive form an incomplete revision, which readers of a
revisioned table ignore (RevisionRows, see shared/logs/kql/latest-complete-revision.kql).

Up to `concurrency` chunks are uploaded at once (Azure SDK clients are thread-safe): while the
service takes one request, the next is serialized and compressed.
"""

from __future__ import annotations

import io
import logging
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.monitor.ingestion import LogsIngestionClient

log = logging.getLogger(__name__)

# The Logs Ingestion API's limit per call, on the JSON before compression (as the SDK splits).
MAX_REQUEST_JSON_BYTES = 1024 * 1024
_GZIP = 16 + zlib.MAX_WBITS  # zlib's wbits for a gzip container


@dataclass(frozen=True)
class UploadPolicy:
    """Where and how to upload. The fields a setting fills have no default here, so config's is the one."""

    what: str  # names the rows in logs and thread names: "cost summary"
    rule_id: str
    stream: str
    chunk_rows: int  # rows handed to one upload() call (it splits further at 1 MiB)
    attempts: int
    retry_delay_seconds: float
    # Not a setting: enough to overlap serializing and compressing with the service's time per request.
    concurrency: int = 4  # upload() calls in flight at once
    # Connect and read timeout of each request (the SDK's defaults when None): a caller with a deadline bounds it.
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class _ChunkOutcome:
    failed: int  # rows still not accepted after every attempt
    retries: int
    errors: tuple[str, ...] = ()  # why the last attempt failed


@dataclass
class UploadReport:
    rows_uploaded: int = 0
    windows_uploaded: list[datetime] = field(default_factory=list)
    windows_failed: list[datetime] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)  # why the rows still not accepted failed, once each


def upload_windows(
    client: LogsIngestionClient,
    policy: UploadPolicy,
    windows: Sequence[tuple[datetime, Sequence[str]]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> UploadReport:
    chunks = [
        (index, records[first : first + policy.chunk_rows])
        for index, (_, records) in enumerate(windows)
        for first in range(0, len(records), policy.chunk_rows)
    ]

    def upload(chunk: tuple[int, Sequence[str]]) -> _ChunkOutcome:
        return _upload_chunk(client, policy, chunk[1], sleep)

    if policy.concurrency > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=policy.concurrency, thread_name_prefix=_thread_prefix(policy.what)) as pool:
            outcomes = list(pool.map(upload, chunks))
    else:
        outcomes = [upload(chunk) for chunk in chunks]

    report = UploadReport(retries=sum(outcome.retries for outcome in outcomes))
    report.errors = list(dict.fromkeys(error for outcome in outcomes for error in outcome.errors))
    failed_by_window = [0] * len(windows)
    for (index, _), outcome in zip(chunks, outcomes, strict=True):
        failed_by_window[index] += outcome.failed
    for (window_start, records), failed in zip(windows, failed_by_window, strict=True):
        if failed:
            report.windows_failed.append(window_start)
            report.problems.append(
                f"window {window_start:%Y-%m-%d %H:%M}: {failed} of {len(records)} rows not accepted"
            )
        else:
            report.windows_uploaded.append(window_start)
        report.rows_uploaded += len(records) - failed
    return report


def _upload_chunk(
    client: LogsIngestionClient,
    policy: UploadPolicy,
    chunk: Sequence[str],
    sleep: Callable[[float], None],
) -> _ChunkOutcome:
    pending: list[str] = list(chunk)
    retries = 0
    errors: list[str] = []
    for attempt in range(1, policy.attempts + 1):
        failed, errors = _try_upload(client, policy, pending)
        if not failed:
            return _ChunkOutcome(0, retries)
        pending = failed
        if attempt < policy.attempts:
            retries += 1
            log.warning(
                "%s upload: %d rows failed (%s); retry %d of %d",
                policy.what,
                len(pending),
                "; ".join(errors),
                attempt,
                policy.attempts - 1,
            )
            sleep(policy.retry_delay_seconds * attempt)
        else:
            log.error(
                "%s upload: %d rows failed after %d attempts (%s)",
                policy.what,
                len(pending),
                attempt,
                "; ".join(errors),
            )
    return _ChunkOutcome(len(pending), retries, tuple(errors))


def _try_upload(
    client: LogsIngestionClient, policy: UploadPolicy, rows: list[str]
) -> tuple[list[str], list[str]]:
    """Upload rows, one request per body; the rows of the requests that failed, and why."""
    from azure.core.exceptions import AzureError

    from shared.errors import describe_azure_error

    failed: list[str] = []
    errors: list[str] = []
    timeouts: dict[str, Any] = (
        {} if policy.timeout_seconds is None
        else {"connection_timeout": policy.timeout_seconds, "read_timeout": policy.timeout_seconds}
    )  # fmt: skip
    for body, sent in request_bodies(rows):
        try:
            client.upload(policy.rule_id, policy.stream, io.BytesIO(gzip_body(body)), **timeouts)
        except (AzureError, OSError) as error:
            # What stops a request fails its rows, which are retried: the SDK raises AzureError for
            # HTTP, auth and network failures after its own retries; OSError is a socket error it did
            # not wrap. Anything else is a bug of ours and propagates rather than being retried.
            failed.extend(sent)
            errors.append(describe_azure_error(error))
    return failed, errors


def _thread_prefix(what: str) -> str:
    """A thread name without spaces: "cost summary" -> "cost-summary-upload"."""
    return "-".join([*what.split(), "upload"])


def request_bodies(
    rows: Sequence[str], max_bytes: int = MAX_REQUEST_JSON_BYTES
) -> Iterator[tuple[bytes, Sequence[str]]]:
    """Consecutive runs of rows as JSON arrays of at most max_bytes (a lone larger row goes alone,
    and the service refuses it). Rows are ASCII JSON texts, so their lengths are their sizes."""
    start = 0
    while start < len(rows):
        end, size = start + 1, 2 + len(rows[start])  # the brackets and the first row
        while end < len(rows) and size + 1 + len(rows[end]) <= max_bytes:
            size += 1 + len(rows[end])
            end += 1
        yield ("[" + ",".join(rows[start:end]) + "]").encode("ascii"), rows[start:end]
        start = end


def gzip_body(body: bytes) -> bytes:
    # The fastest level: on a local network (and for the service) CPU costs more than the bytes.
    compressor = zlib.compressobj(1, zlib.DEFLATED, _GZIP)
    return compressor.compress(body) + compressor.flush()
