"""The ARM stand-in: the deployment list azure-mgmt-cognitiveservices reads, its paging and its refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from standins.arm import API_VERSION, ArmDeployment, RunningArm
from tests.support.arm import TEST_ACCOUNT, arm_client

MakeArm = Callable[..., RunningArm]
FIVE = [ArmDeployment(f"dep-{i}", "gpt-4o-mini", "2024-07-18", "DataZoneStandard", 10 + i) for i in range(5)]
LIST_PATH = TEST_ACCOUNT.resource_id + "/deployments"


def test_the_sdk_reads_every_page_of_the_list(make_arm: MakeArm) -> None:
    arm = make_arm(FIVE, page_size=2)  # three pages: the SDK must follow nextLink twice
    listed = list(arm_client(arm).deployments.list(TEST_ACCOUNT.resource_group, TEST_ACCOUNT.name))
    assert [d.name for d in listed] == [f"dep-{i}" for i in range(5)]
    first = listed[0]
    assert (first.sku.name, first.sku.capacity) == ("DataZoneStandard", 10)
    assert (first.properties.model.format, first.properties.model.name, first.properties.model.version) == (
        "OpenAI", "gpt-4o-mini", "2024-07-18")
    assert first.id == f"{TEST_ACCOUNT.resource_id}/deployments/dep-0"


def test_a_page_carries_a_next_link_until_the_last(make_arm: MakeArm) -> None:
    arm = make_arm(FIVE, page_size=3)
    client = arm_client(arm)
    token = client._config.credential.get_token("https://management.azure.com/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    first = requests.get(f"{arm.url}{LIST_PATH}", params={"api-version": API_VERSION}, headers=headers,
                         verify=str(arm.ca_path), timeout=10).json()
    assert len(first["value"]) == 3 and first["nextLink"].startswith(arm.url)
    last = requests.get(first["nextLink"], headers=headers, verify=str(arm.ca_path), timeout=10).json()
    assert [d["name"] for d in last["value"]] == ["dep-3", "dep-4"] and "nextLink" not in last


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [({}, 400, "MissingApiVersionParameter"), ({"api-version": "2023-05-01"}, 400, "InvalidApiVersionParameter")],
)
def test_the_api_version_is_required_and_checked(make_arm: MakeArm, params: dict[str, str], status: int,
                                                 code: str) -> None:
    arm = make_arm(FIVE)
    token = arm_client(arm)._config.credential.get_token("https://management.azure.com/.default").token
    response = requests.get(f"{arm.url}{LIST_PATH}", params=params, headers={"Authorization": f"Bearer {token}"},
                            verify=str(arm.ca_path), timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_no_token_is_401_and_a_token_for_another_audience_too(make_arm: MakeArm) -> None:
    arm = make_arm(FIVE)
    url = f"{arm.url}{LIST_PATH}?api-version={API_VERSION}"
    bare = requests.get(url, verify=str(arm.ca_path), timeout=10)
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "WWW-Authenticate" in bare.headers
    other = arm_client(arm)._config.credential.get_token("https://monitor.azure.com/.default").token
    wrong = requests.get(url, headers={"Authorization": f"Bearer {other}"}, verify=str(arm.ca_path), timeout=10)
    assert wrong.status_code == 401


def test_an_identity_without_the_role_is_403_authorization_failed(make_arm: MakeArm) -> None:
    arm = make_arm(FIVE)
    arm.service.granted_client_ids = set()
    with pytest.raises(HttpResponseError) as caught:
        list(arm_client(arm).deployments.list(TEST_ACCOUNT.resource_group, TEST_ACCOUNT.name))
    assert caught.value.status_code == 403 and not isinstance(caught.value, ClientAuthenticationError)
    assert caught.value.error is not None and caught.value.error.code == "AuthorizationFailed"
    assert "Microsoft.CognitiveServices/accounts/deployments/read" in str(caught.value)


def test_an_unknown_account_is_404(make_arm: MakeArm) -> None:
    arm = make_arm(FIVE)
    with pytest.raises(HttpResponseError) as caught:
        list(arm_client(arm).deployments.list(TEST_ACCOUNT.resource_group, "some-other-account"))
    assert caught.value.status_code == 404


def test_a_deployment_added_shows_in_the_next_list(make_arm: MakeArm) -> None:
    arm = make_arm(FIVE[:1])
    client = arm_client(arm)
    arm.service.add_deployment(ArmDeployment("new-one", "gpt-4.1", "2025-04-14", "GlobalStandard", 5))
    names = [d.name for d in client.deployments.list(TEST_ACCOUNT.resource_group, TEST_ACCOUNT.name)]
    assert names == ["dep-0", "new-one"]
