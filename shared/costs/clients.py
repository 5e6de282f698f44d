"""The services a costs run talks to, and how: its clients (built from settings, or a test's own), the
progress scope it reads and writes, and the upload policy. Shared by the costs run (run.py) and the
explicit reprice (reprice.py), which recompute windows through the same steps (recompute.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.config import CostSettings
from shared.costs.deployments import ArmDeploymentDiscovery, DeploymentDiscovery
from shared.costs.progress import ProgressStore
from shared.logs.upload import UploadPolicy

if TYPE_CHECKING:
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient


def progress_scope(settings: CostSettings) -> str:
    """Whose progress a run reads and writes: another workspace, schema or window width starts afresh."""
    return f"{settings.workspace_id}|{settings.metrics_schema}|{settings.window_minutes}m"


@dataclass
class CostClients:
    """The service clients of a run; tests pass their own, build_clients builds them from settings."""

    query: LogsQueryClient
    ingestion: LogsIngestionClient
    progress: ProgressStore
    # The model accounts' deployments through ARM; None (no COST_MODEL_ACCOUNTS): the deployment map alone.
    discovery: DeploymentDiscovery | None = None


def build_clients(settings: CostSettings) -> CostClients:
    from shared.costs.progress import TableProgressStore

    access = settings.azure
    credential = access.credential()
    discovery = None
    if settings.model_accounts:
        discovery = ArmDeploymentDiscovery(
            settings.model_accounts,
            lambda subscription: access.cognitive_services_client(
                settings.resource_manager_endpoint, subscription, credential
            ),
        )
    return CostClients(
        query=access.logs_query_client(settings.query_endpoint, credential),
        ingestion=access.logs_ingestion_client(settings.ingestion_endpoint, credential),
        progress=TableProgressStore(
            access.state_table(settings, "costs progress", credential), progress_scope(settings)
        ),
        discovery=discovery,
    )


def upload_policy(settings: CostSettings) -> UploadPolicy:
    """How the summaries are uploaded: every value from the settings (their defaults are config's)."""
    return UploadPolicy(
        what="cost summary",
        rule_id=settings.ingestion_rule_id,
        stream=settings.ingestion_stream,
        chunk_rows=settings.upload_chunk_rows,
        attempts=settings.upload_attempts,
        retry_delay_seconds=settings.retry_delay_seconds,
    )
