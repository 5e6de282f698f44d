"""Configuration of the Azure Monitor stand-in."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from standins.monitor.schema import DEFAULT_SCHEMA_PATH

DEFAULT_MAX_ROWS = 500_000  # Log Analytics' record count limit
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # Log Analytics' ~64 MB result size limit
# The App Insights component's resource id (resource-centric queries: POST /v1/{resourceId}/query).
DEFAULT_APP_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/local"
    "/providers/microsoft.insights/components/appi-local"
)
_DCR_IMMUTABLE_ID = re.compile(r"^dcr-[0-9a-f]{32}$")


@dataclass(frozen=True)
class MonitorConfig:
    """One workspace, one DCR (kind Direct: its streams are the schema's custom tables), one
    App Insights component (``instrumentation_key``) exporting into the workspace."""

    db_path: Path
    workspace_id: str
    dcr_immutable_id: str
    instrumentation_key: str
    tls_dir: Path
    identity_secret: str
    max_rows: int = DEFAULT_MAX_ROWS
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    schema_path: Path = DEFAULT_SCHEMA_PATH
    app_resource_id: str = DEFAULT_APP_RESOURCE_ID
    chaos_file: Path | None = None  # fault injection (standins/chaos.py); None: none

    def __post_init__(self) -> None:
        uuid.UUID(self.workspace_id)
        uuid.UUID(self.instrumentation_key)
        if not _DCR_IMMUTABLE_ID.match(self.dcr_immutable_id):
            raise ValueError(
                f"dcr_immutable_id must be 'dcr-' + 32 lowercase hex; got {self.dcr_immutable_id!r}"
            )
        if self.max_rows < 0 or self.max_response_bytes < 0:
            raise ValueError("limits must not be negative")

    @property
    def app_id(self) -> str:
        """The App Insights application id (ResourceGUID), stable for a given key."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"appinsights:{self.instrumentation_key}"))
