"""The FOCUS export's Blob storage, against Azurite (azure-storage-blob, as in Azure): one blob a day, its content's
SHA-256 in its metadata, overwritten in place, the container created by the first write."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient

from shared.focus.store import BlobDayFiles


@pytest.fixture
def container_name(request: pytest.FixtureRequest) -> str:
    return "focus-" + str(abs(hash(request.node.name)))[:10]


def test_a_day_is_written_read_back_and_overwritten_in_place(azurite_blob: str, container_name: str) -> None:
    files = BlobDayFiles.open(
        container_name, connection_string=azurite_blob, endpoint="", credential=None, connection_verify=True
    )
    name = "focus/2026/11/focus-cost-2026-11-27.csv"
    assert files.stored(name) is None  # neither the blob nor the container exists yet

    files.write(name, b"BilledCost\r\n1.000000\r\n", {"sha256": "aa", "restated": "false"})
    files.write("focus/2026/11/focus-cost-2026-11-28.csv", b"BilledCost\r\n", {"sha256": "cc"})
    stored = files.stored(name)
    assert stored is not None and stored.sha256 == "aa" and stored.metadata["restated"] == "false"

    files.write(name, b"BilledCost\r\n2.000000\r\n", {"sha256": "bb", "restated": "true"})

    blob = BlobServiceClient.from_connection_string(azurite_blob).get_blob_client(container_name, name)
    assert blob.download_blob().readall() == b"BilledCost\r\n2.000000\r\n"
    properties = blob.get_blob_properties()
    assert properties.metadata == {"sha256": "bb", "restated": "true"}
    assert properties.content_settings.content_type == "text/csv; charset=utf-8"
