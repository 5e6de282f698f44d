"""Clients for the Azure services, built from settings only (same code in Azure and locally)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient

    from shared.config import Settings


def credential(settings: Settings) -> TokenCredential:
    """Managed identity in Azure; the local identity stand-in answers the same protocol locally."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(
        managed_identity_client_id=settings.azure_client_id,
        exclude_interactive_browser_credential=True,
    )


def connection_verify(settings: Settings) -> str | bool:
    """azure-core's TLS verification: the extra CA bundle when one is set, else the system store."""
    return settings.azure_ca_bundle or True


def logs_query_client(settings: Settings) -> LogsQueryClient:
    from azure.monitor.query import LogsQueryClient

    return LogsQueryClient(
        credential(settings),
        endpoint=settings.log_analytics_endpoint,
        connection_verify=connection_verify(settings),
    )


def logs_ingestion_client(settings: Settings, endpoint: str) -> LogsIngestionClient:
    """Uploads to a data collection rule: `endpoint` is the DCR's logs ingestion endpoint."""
    from azure.monitor.ingestion import LogsIngestionClient

    return LogsIngestionClient(
        endpoint=endpoint,
        credential=credential(settings),
        connection_verify=connection_verify(settings),
    )
