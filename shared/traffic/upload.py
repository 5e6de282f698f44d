"""Upload a run's ground-truth rows with the Logs Ingestion API (LogsIngestionClient).

A failed upload raises UploadError (shared/errors.py): the Functions host then logs the invocation as
failed, which is what we want: losing the record of what was sent silently would make the
reconciliation blame the metrics pipeline for a gap that is ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shared.errors import UploadError, azure_service_error


class IngestionClient(Protocol):
    """The part of azure.monitor.ingestion.LogsIngestionClient we use."""

    def upload(self, rule_id: str, stream_name: str, logs: list[Any], **kwargs: Any) -> None: ...


# Builds the client for a DCR's logs ingestion endpoint, e.g.
# shared.azure_clients.AzureAccess(...).logs_ingestion_client.
IngestionClientFactory = Callable[[str], IngestionClient]


def upload_ground_truth(
    client: IngestionClient,
    *,
    rule_id: str,
    stream_name: str,
    rows: Sequence[dict[str, Any]],
    timeout_seconds: float,
) -> None:
    if not rows:
        return
    from azure.core.exceptions import AzureError

    try:
        # Without on_error the client raises on the first failed chunk, which is what we want.
        client.upload(
            rule_id=rule_id,
            stream_name=stream_name,
            logs=list(rows),
            connection_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
        )
    except (AzureError, OSError) as error:
        # Any such failure means the record is lost. The SDK raises AzureError for HTTP, auth
        # (credential errors are ClientAuthenticationError) and network failures after its retries;
        # OSError is a socket error it did not wrap. Anything else is a bug of ours, not an upload
        # failure, and propagates as itself.
        raise azure_service_error(
            UploadError,
            f"uploading {len(rows)} ground-truth rows to stream {stream_name} of data collection rule {rule_id}",
            error,
        ) from error
