"""Clients for the Azure services, built from settings only (same code in Azure and locally)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
    from azure.mgmt.costmanagement import CostManagementClient
    from azure.mgmt.monitor import MonitorManagementClient
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient


class StateTableSettings(Protocol):
    """Where a run keeps its state in Table storage (costs and alerts settings both say it so)."""

    @property
    def state_table_name(self) -> str: ...
    @property
    def state_connection_string(self) -> str | None: ...  # Azurite locally, or a storage key
    @property
    def state_table_endpoint(self) -> str | None: ...  # else this, with the managed identity


# ARM resource ids compare case-insensitively; the account name pattern is the SDK's own path check
# (azure-mgmt-cognitiveservices 14.1.0 operations/_deployments_operations.py, accountName: 2-64 characters).
_MODEL_ACCOUNT_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]{1,90})"
    r"/providers/Microsoft\.CognitiveServices/accounts/(?P<account>[a-zA-Z0-9][a-zA-Z0-9_.-]{1,63})$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ModelAccount:
    """A Foundry / Azure OpenAI account (Microsoft.CognitiveServices/accounts) by its ARM resource id."""

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> ModelAccount:
        """Raises ValueError naming the expected shape when `resource_id` is not an account's id."""
        match = _MODEL_ACCOUNT_ID.match(resource_id.strip().rstrip("/"))
        if match is None:
            raise ValueError(
                f"{resource_id!r} is not the resource id of a Cognitive Services account: expected /subscriptions/"
                "<id>/resourceGroups/<group>/providers/Microsoft.CognitiveServices/accounts/<name>"
            )
        return cls(match["subscription"], match["group"], match["account"])

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


@dataclass(frozen=True)
class AzureAccess:
    """How the app reaches Azure: its managed identity and which CAs it trusts (the azure section of
    shared/config.py: AZURE_CLIENT_ID, AZURE_CA_BUNDLE)."""

    client_id: str | None  # user-assigned managed identity; None: system-assigned
    ca_bundle: Path | None  # extra CAs (the local stand-ins' CA); None: the system store

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
        return str(self.ca_bundle) if self.ca_bundle else True

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

    def cognitive_services_client(
        self, endpoint: str, subscription_id: str, credential: TokenCredential | None = None
    ) -> CognitiveServicesManagementClient:
        """The ARM client of Microsoft.CognitiveServices at `endpoint` (Azure Resource Manager, or the local
        stand-in). Its token scope stays the SDK's default, https://management.azure.com/.default, which the
        local stand-in accepts too; a sovereign cloud would also need its own ARM audience."""
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        return CognitiveServicesManagementClient(
            credential or self.credential(),
            subscription_id,
            base_url=endpoint,
            connection_verify=self.connection_verify,
        )

    def monitor_client(
        self, endpoint: str, subscription_id: str, credential: TokenCredential | None = None
    ) -> MonitorManagementClient:
        """Azure Monitor's ARM client (the accounts' platform metrics: Metrics - List) at `endpoint` (Azure
        Resource Manager, or the local stand-in). The SDK's own retries are off (retry_total=0): the bypass
        check retries within its time budget (shared/meters/read.py) and says when it gave up."""
        from azure.mgmt.monitor import MonitorManagementClient

        return MonitorManagementClient(
            credential or self.credential(),
            subscription_id,
            base_url=endpoint,
            connection_verify=self.connection_verify,
            retry_total=0,
        )

    def cost_management_client(self, endpoint: str, credential: TokenCredential | None = None) -> CostManagementClient:
        """Cost Management's ARM client (the Query API: actual cost per resource and meter) at `endpoint` (Azure
        Resource Manager, or the local stand-in). Its retries are off (retry_total=0), as the metrics client's: the
        bill check retries within its budget (shared/azure_retry.py), and Cost Management throttles often."""
        from azure.mgmt.costmanagement import CostManagementClient

        return CostManagementClient(
            credential or self.credential(),
            base_url=endpoint,
            connection_verify=self.connection_verify,
            retry_total=0,
        )

    def state_table(
        self, settings: StateTableSettings, purpose: str, credential: TokenCredential | None = None
    ) -> TableClient:
        """The table a store (costs progress, alert state) keeps its state in, as the settings say."""
        return open_table(
            settings.state_table_name,
            purpose=purpose,
            connection_string=settings.state_connection_string,
            endpoint=settings.state_table_endpoint,
            credential=credential or self.credential(),
            connection_verify=self.connection_verify,
        )


def open_table(
    table_name: str,
    *,
    purpose: str,
    connection_string: str | None = None,
    endpoint: str | None = None,
    credential: TokenCredential | None = None,
    connection_verify: str | bool = True,
) -> TableClient:
    """A Table storage table, created if missing: by connection string (Azurite locally) or by
    endpoint with the managed identity (Azure, where the storage account allows no shared keys).
    The one way the stores open their table (costs progress, alert state); `purpose` names it in errors."""
    from azure.core.exceptions import AzureError
    from azure.data.tables import TableServiceClient

    from shared.errors import AzureServiceError, ConfigError, azure_service_error

    if connection_string:
        service = TableServiceClient.from_connection_string(connection_string)
    elif endpoint and credential is not None:
        service = TableServiceClient(endpoint=endpoint, credential=credential, connection_verify=connection_verify)
    else:
        # load_settings refuses settings that get here; this guards a direct library call.
        raise ConfigError(
            f"{purpose} needs COST_STATE_CONNECTION_STRING, or COST_STATE_TABLE_ENDPOINT with a credential"
        )
    try:
        return service.create_table_if_not_exists(table_name)
    except AzureError as error:
        raise azure_service_error(AzureServiceError, f"opening the {purpose} table {table_name}", error) from error
