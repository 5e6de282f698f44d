"""Where the FOCUS files go: one blob per UTC day in FOCUS_EXPORT_CONTAINER (azure-storage-blob; Azurite locally).

A day's blob carries, in its metadata, the SHA-256 of its content: the export reads the blob's properties (one
HEAD) and writes only when the content it made differs, so a re-run leaves an unchanged day as it is and a restated
day is overwritten (`overwrite=True`: the same name, the new content). Metadata names must be C# identifiers and
values ASCII (https://learn.microsoft.com/rest/api/storageservices/setting-and-retrieving-properties-and-metadata-for-blob-resources,
"Metadata names"); Azure answers 404 BlobNotFound for a missing blob and ContainerNotFound for a missing
container (https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes): the container is created
once per run if missing, as Azurite starts empty and infra/app/storage.bicep creates it in Azure. InMemoryDayFiles
is its twin for tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from shared.errors import AzureServiceError, ConfigError, maps_azure_errors

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import ContainerClient


@dataclass(frozen=True)
class StoredDay:
    sha256: str  # of the content, from the blob's metadata ("" when the blob has none)
    metadata: Mapping[str, str]


class DayFiles(Protocol):
    def stored(self, name: str) -> StoredDay | None: ...
    def write(self, name: str, content: bytes, metadata: Mapping[str, str]) -> None: ...


class BlobDayFiles:
    def __init__(self, container: ContainerClient) -> None:
        self._container = container
        self._checked = False

    @classmethod
    def open(
        cls,
        container: str,
        *,
        connection_string: str | None,
        endpoint: str,
        credential: TokenCredential | None,
        connection_verify: str | bool,
    ) -> BlobDayFiles:
        from azure.storage.blob import BlobServiceClient

        if endpoint and credential is not None:
            service = BlobServiceClient(
                account_url=endpoint, credential=credential, connection_verify=connection_verify
            )
        elif connection_string:
            service = BlobServiceClient.from_connection_string(connection_string)
        else:  # load_settings refuses settings that get here; this guards a direct library call
            raise ConfigError("the FOCUS export needs FOCUS_EXPORT_BLOB_ENDPOINT, or COST_STATE_CONNECTION_STRING")
        return cls(service.get_container_client(container))

    @maps_azure_errors(AzureServiceError, "reading a FOCUS export blob's properties")
    def stored(self, name: str) -> StoredDay | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            properties = self._container.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:  # the blob, or the whole container (created by the first write)
            return None
        metadata = dict(properties.metadata or {})
        return StoredDay(metadata.get("sha256", ""), metadata)

    @maps_azure_errors(AzureServiceError, "writing a FOCUS export blob")
    def write(self, name: str, content: bytes, metadata: Mapping[str, str]) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        if not self._checked:
            with contextlib.suppress(ResourceExistsError):  # the usual case after the first run
                self._container.create_container()
            self._checked = True
        self._container.upload_blob(
            name, content, overwrite=True, metadata=dict(metadata),
            content_settings=ContentSettings(content_type="text/csv; charset=utf-8"),
        )  # fmt: skip


class InMemoryDayFiles:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.writes = 0

    def stored(self, name: str) -> StoredDay | None:
        if name not in self.blobs:
            return None
        metadata = self.blobs[name][1]
        return StoredDay(metadata.get("sha256", ""), metadata)

    def write(self, name: str, content: bytes, metadata: Mapping[str, str]) -> None:
        self.blobs[name] = (content, dict(metadata))
        self.writes += 1
