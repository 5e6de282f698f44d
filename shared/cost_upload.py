"""Upload cost summary rows with the Logs Ingestion API, window by window, failures retried.

LogsIngestionClient.upload gzips and posts at most 1 MiB per request; with `on_error` it reports
each failed request's rows instead of stopping at the first. Those rows (and only those) are sent
again, up to `attempts` times. A window with rows still not accepted is reported failed: the caller
does not mark it final, so the next run recomputes it as a new revision. The rows of it that did
arrive form an incomplete revision, which readers ignore (RevisionRows, see
shared/kql/cost-summary-latest.kql).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.monitor.ingestion import LogsIngestionClient, LogsUploadError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadPolicy:
    rule_id: str
    stream: str
    chunk_rows: int = 5000  # rows handed to one upload() call (it splits further at 1 MiB)
    attempts: int = 3
    retry_delay_seconds: float = 2.0


@dataclass
class UploadReport:
    rows_uploaded: int = 0
    windows_uploaded: list[datetime] = field(default_factory=list)
    windows_failed: list[datetime] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    retries: int = 0


def upload_windows(
    client: LogsIngestionClient,
    policy: UploadPolicy,
    windows: Sequence[tuple[datetime, Sequence[Mapping[str, Any]]]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> UploadReport:
    report = UploadReport()
    for window_start, records in windows:
        failed = 0
        for first in range(0, len(records), policy.chunk_rows):
            failed += _upload_chunk(client, policy, records[first : first + policy.chunk_rows], report, sleep)
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
    chunk: Sequence[Mapping[str, Any]],
    report: UploadReport,
    sleep: Callable[[float], None],
) -> int:
    """Rows of the chunk still not accepted after every attempt."""
    pending: list[Mapping[str, Any]] = list(chunk)
    for attempt in range(1, policy.attempts + 1):
        failed, errors = _try_upload(client, policy, pending)
        if not failed:
            return 0
        pending = failed
        if attempt < policy.attempts:
            report.retries += 1
            log.warning(
                "cost summary upload: %d rows failed (%s); retry %d of %d",
                len(pending),
                "; ".join(errors),
                attempt,
                policy.attempts - 1,
            )
            sleep(policy.retry_delay_seconds * attempt)
        else:
            log.error(
                "cost summary upload: %d rows failed after %d attempts (%s)",
                len(pending),
                attempt,
                "; ".join(errors),
            )
    return len(pending)


def _try_upload(
    client: LogsIngestionClient, policy: UploadPolicy, rows: list[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """One upload call: the rows it did not accept, and why."""
    failed: list[Mapping[str, Any]] = []
    errors: list[str] = []

    def collect(error: LogsUploadError) -> None:
        failed.extend(error.failed_logs)
        errors.append(str(error.error).splitlines()[0] if str(error.error) else type(error.error).__name__)

    try:
        client.upload(policy.rule_id, policy.stream, [dict(row) for row in rows], on_error=collect)
    except Exception as error:  # anything that stops the call fails all of its rows
        return rows, [f"{type(error).__name__}: {error}"]
    return failed, errors
