"""Upload a run's ground-truth rows with the Logs Ingestion API (LogsIngestionClient).

A failed upload raises UploadError (shared/errors.py): the Functions host then logs the invocation as
failed, which is what we want: losing the record of what was sent silently would make the
reconciliation blame the metrics pipeline for a gap that is ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.errors import UploadError


class IngestionClient(Protocol):
    """The part of azure.monitor.ingestion.LogsIngestionClient we use."""

    def upload(self, rule_id: str, stream_name: str, logs: list[Any], **kwargs: Any) -> None: ...


# Builds the client for a DCR's logs ingestion endpoint, e.g.
# shared.azure_clients.AzureAccess(...).logs_ingestion_client.
IngestionClientFactory = Callable[[str], IngestionClient]


# Requests per upload: the same request again after a failure (a dropped connection is not retried by the SDK
# itself, and the rows may or may not have landed: readers count a re-sent row once, alert-synthetic-traffic.kql).
GROUND_TRUTH_ATTEMPTS = 3
GROUND_TRUTH_RETRY_DELAY_SECONDS = 0.5


def upload_ground_truth(
    client: IngestionClient,
    *,
    rule_id: str,
    stream_name: str,
    rows: Sequence[dict[str, Any]],
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Upload the run's rows through shared/logs/upload.py (one body, sent again after a failure, up to
    GROUND_TRUTH_ATTEMPTS times); raises UploadError naming stream, rule and why when they never got in."""
    if not rows:
        return
    from shared.logs.revisions import row_text
    from shared.logs.upload import UploadPolicy, upload_windows

    policy = UploadPolicy("ground truth", rule_id, stream_name, chunk_rows=len(rows), attempts=GROUND_TRUTH_ATTEMPTS,
                          retry_delay_seconds=GROUND_TRUTH_RETRY_DELAY_SECONDS, concurrency=1,
                          timeout_seconds=timeout_seconds)  # fmt: skip
    # Anything but an Azure or socket error is a bug of ours, not an upload failure, and propagates as itself.
    report = upload_windows(client, policy, [(datetime.now(UTC), [row_text(row) for row in rows])], sleep=sleep)  # type: ignore[arg-type]
    if report.windows_failed:
        raise UploadError(
            f"uploading {len(rows)} ground-truth rows to stream {stream_name} of data collection rule {rule_id} "
            f"failed after {GROUND_TRUTH_ATTEMPTS} attempts: {'; '.join(report.errors)}"
        )
