"""The ARM stand-in's test account and the app's client for it (the fixture is make_arm in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from azure.identity import ManagedIdentityCredential
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

from shared.azure_clients import AzureAccess, ModelAccount
from standins.arm import ArmAccount, RunningArm

TEST_ACCOUNT = ArmAccount("00000000-0000-0000-0000-0000000000a1", "rg-models", "ai-models-test")
MODEL_ACCOUNT = ModelAccount(TEST_ACCOUNT.subscription_id, TEST_ACCOUNT.resource_group, TEST_ACCOUNT.name)


def arm_client(arm: RunningArm, **options: Any) -> CognitiveServicesManagementClient:
    """The client the app builds (shared/azure_clients.py), or one with SDK options (retry_total=0) for tests."""
    access = AzureAccess(client_id=None, ca_bundle=arm.ca_path)
    if not options:
        return access.cognitive_services_client(arm.url, MODEL_ACCOUNT.subscription_id, ManagedIdentityCredential())
    return CognitiveServicesManagementClient(
        ManagedIdentityCredential(), MODEL_ACCOUNT.subscription_id, base_url=arm.url,
        connection_verify=str(arm.ca_path), **options,
    )  # fmt: skip
