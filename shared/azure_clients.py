"""Clients for the Azure services, built from settings only (same code in Azure and locally)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient


@dataclass(frozen=True)
class AzureAccess:
    """How the app reaches Azure: its managed identity and which CAs it trusts."""

    client_id: str | None = None  # user-assigned managed identity; None: system-assigned
    ca_bundle: str | None = None  # extra CAs (the local stand-ins' CA); None: the system store

    def credential(self) -> TokenCredential:
        """Managed identity in Azure; the local identity stand-in answers the same protocol locally."""
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(
            managed_identity_client_id=self.client_id,
            exclude_interactive_browser_credential=True,
        )

    @property
    def connection_verify(self) -> str | bool:
        """azure-core's TLS verification: the extra CA bundle when one is set, else the system store."""
        return self.ca_bundle or True

    def logs_query_client(self, endpoint: str, credential: TokenCredential | None = None) -> LogsQueryClient:
        from azure.monitor.query import LogsQueryClient

        return LogsQueryClient(
            credential or self.credential(), endpoint=endpoint, connection_verify=self.connection_verify
        )

    def logs_ingestion_client(self, endpoint: str, credential: TokenCredential | None = None) -> LogsIngestionClient:
        """Uploads to a data collection rule: `endpoint` is the DCR's logs ingestion endpoint."""
        from azure.monitor.ingestion import LogsIngestionClient

        return LogsIngestionClient(
            endpoint=endpoint, credential=credential or self.credential(), connection_verify=self.connection_verify
        )


def open_table(
    table_name: str,
    *,
    connection_string: str | None,
    endpoint: str | None,
    credential: TokenCredential | None,
    connection_verify: str | bool = True,
    purpose: str,
) -> TableClient:
    """A Table storage table, created if missing: by connection string (Azurite locally) or by
    endpoint with the managed identity (Azure, where the storage account allows no shared keys)."""
    from azure.core.exceptions import AzureError
    from azure.data.tables import TableServiceClient

    from shared.errors import AzureServiceError, azure_service_error

    if connection_string:
        service = TableServiceClient.from_connection_string(connection_string)
    elif endpoint and credential is not None:
        service = TableServiceClient(endpoint=endpoint, credential=credential, connection_verify=connection_verify)
    else:
        raise ValueError(f"{purpose} needs a table storage connection string, or an endpoint and a credential")
    try:
        return service.create_table_if_not_exists(table_name)
    except AzureError as error:
        raise azure_service_error(AzureServiceError, f"opening the {purpose} table {table_name}", error) from error
