"""Deployment -> model: discovered through ARM (on the stand-in, with the real SDK), the file over it, and a
deployment created in the account priced on the next costs run with no file edited."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from shared.azure_clients import AzureAccess, ModelAccount
from shared.costs.clients import build_clients
from shared.costs.deployments import (
    ArmDeploymentDiscovery,
    Deployment,
    DeploymentMap,
    deployment_map_for_run,
    list_account_deployments,
)
from shared.costs.run import run_costs
from shared.errors import AzureServiceError
from standins.arm import ArmDeployment, RunningArm
from tests.support.arm import MODEL_ACCOUNT, arm_client
from tests.support.costs import CostStack, usage_rows
from tests.support.sections import settings_with

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
MakeArm = Callable[..., RunningArm]
ACCOUNT_DEPLOYMENTS = [
    ArmDeployment("chat-eu", "gpt-4o", "2024-11-20", "DataZoneStandard", 50),
    ArmDeployment("mini", "gpt-4o-mini", "2024-07-18", "GlobalStandard", 100),
    ArmDeployment("my-gpt4o-prod", "gpt-4.1", "2025-04-14", "GlobalStandard", 10),
]


def discovery(arm: RunningArm, **options: object) -> ArmDeploymentDiscovery:
    return ArmDeploymentDiscovery([MODEL_ACCOUNT], lambda subscription: arm_client(arm, **options))


def test_discovery_reads_model_version_sku_and_capacity_over_every_page(make_arm: MakeArm) -> None:
    arm = make_arm(ACCOUNT_DEPLOYMENTS, page_size=1)
    found = discovery(arm).deployments()
    assert found[0] == Deployment("chat-eu", "gpt-4o", MODEL_ACCOUNT.resource_id, "2024-11-20", "DataZoneStandard", 50)
    assert [d.name for d in found] == ["chat-eu", "mini", "my-gpt4o-prod"]


def test_the_file_wins_on_the_same_name_and_says_so(make_arm: MakeArm, caplog: pytest.LogCaptureFixture) -> None:
    arm = make_arm(ACCOUNT_DEPLOYMENTS)
    file_map = DeploymentMap({"My-GPT4o-Prod": "gpt-4o", "other-provider": "claude-x"}, source="deployments.json")
    with caplog.at_level(logging.INFO, logger="shared.costs.deployments"):
        merged = deployment_map_for_run(file_map, discovery(arm))
    assert merged.model_for("my-gpt4o-prod") == "gpt-4o"  # the file, matched ignoring case
    assert "my-gpt4o-prod" in caplog.text and "the file wins" in caplog.text
    assert merged.model_for("other-provider") == "claude-x"
    assert merged.model_for("CHAT-EU") == "gpt-4o"
    chat = merged.deployment("chat-eu")
    assert chat is not None and (chat.sku, chat.capacity, chat.model_version) == ("DataZoneStandard", 50, "2024-11-20")
    assert merged.model_for("nowhere") == "nowhere" and merged.deployment("nowhere") is None


def test_no_accounts_is_the_file_alone() -> None:
    file_map = DeploymentMap({"a": "gpt-4o"})
    assert deployment_map_for_run(file_map, None) is file_map
    settings = settings_with(COST_STATE_CONNECTION_STRING="UseDevelopmentStorage=true").costs
    assert settings.model_accounts == () and settings.resource_manager_endpoint == "https://management.azure.com"


def test_a_refused_read_names_the_account_and_the_role(make_arm: MakeArm) -> None:
    arm = make_arm(ACCOUNT_DEPLOYMENTS)
    arm.service.granted_client_ids = set()
    with pytest.raises(AzureServiceError) as caught:
        discovery(arm).deployments()
    message = str(caught.value)
    assert MODEL_ACCOUNT.resource_id in message and "HTTP 403" in message and "AuthorizationFailed" in message
    assert "Reader" in message and "Microsoft.CognitiveServices/accounts/deployments/read" in message


def test_a_server_error_is_an_azure_service_error_not_an_empty_map(make_arm: MakeArm) -> None:
    arm = make_arm(ACCOUNT_DEPLOYMENTS)
    arm.service.fail_next(503)
    with pytest.raises(AzureServiceError, match=r"listing the deployments of .*ai-models-test failed: HTTP 503"):
        list_account_deployments(arm_client(arm, retry_total=0), MODEL_ACCOUNT)


def test_the_account_setting_is_parsed_and_checked() -> None:
    settings = settings_with(
        COST_STATE_CONNECTION_STRING="UseDevelopmentStorage=true",
        COST_MODEL_ACCOUNTS=f" {MODEL_ACCOUNT.resource_id.upper()} ,,{MODEL_ACCOUNT.resource_id}",
        AZURE_RESOURCE_MANAGER_ENDPOINT="https://127.0.0.1:7805/",
    ).costs
    assert [a.name.casefold() for a in settings.model_accounts] == ["ai-models-test", "ai-models-test"]
    assert settings.resource_manager_endpoint == "https://127.0.0.1:7805"
    assert ModelAccount.parse(MODEL_ACCOUNT.resource_id + "/") == MODEL_ACCOUNT
    with pytest.raises(ValueError, match=r"COST_MODEL_ACCOUNTS=.*Microsoft\.CognitiveServices/accounts/<name>"):
        settings_with(COST_STATE_CONNECTION_STRING="x", COST_MODEL_ACCOUNTS="/subscriptions/s/resourceGroups/g")


def test_build_clients_lists_the_accounts_at_the_arm_endpoint(
    make_arm: MakeArm, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm = make_arm(ACCOUNT_DEPLOYMENTS)
    costs = settings_with(COST_STATE_CONNECTION_STRING="UseDevelopmentStorage=true").costs
    settings = replace(costs, model_accounts=(MODEL_ACCOUNT,), resource_manager_endpoint=arm.url,
                       azure=replace(costs.azure, ca_bundle=arm.ca_path))
    # build_clients opens the state table too; only its discovery is wanted here.
    monkeypatch.setattr(AzureAccess, "state_table", lambda *args, **kwargs: None)
    found = build_clients(settings).discovery
    assert found is not None and [d.name for d in found.deployments()] == ["chat-eu", "mini", "my-gpt4o-prod"]


def test_a_deployment_created_in_the_account_is_priced_on_the_next_run_with_no_file_edited(
    make_cost_stack: Callable[..., CostStack], make_arm: MakeArm
) -> None:
    arm = make_arm(ACCOUNT_DEPLOYMENTS[:1])
    stack = make_cost_stack(deployment_map_path=None)
    window = dt.datetime(2026, 11, 27, 8, tzinfo=UTC)
    stack.insert_metrics(usage_rows(window + dt.timedelta(minutes=5), 1_000_000, 100_000, deployment="team-new-bot"))
    clients = stack.clients(discovery=discovery(arm))

    before = run_costs(stack.settings, now=NOW, clients=clients)
    assert before.unpriced_models == ("team-new-bot",)  # unknown: its own name, no price, flagged (not $0)
    [row] = [r for r in stack.latest(window, window + dt.timedelta(hours=1)) if r["Deployment"] == "team-new-bot"]
    assert row["Unpriced"] is True and row["TotalCost"] is None

    arm.service.add_deployment(ArmDeployment("team-new-bot", "gpt-4o-mini", "2024-07-18", "GlobalStandard", 30))
    after = run_costs(stack.settings, now=NOW + dt.timedelta(minutes=15), clients=clients)
    assert after.unpriced_models == ()
    [row] = [r for r in stack.latest(window, window + dt.timedelta(hours=1)) if r["Deployment"] == "team-new-bot"]
    # gpt-4o-mini Global Standard, per 1M tokens: input $0.15, output $0.60 (shared/costs/prices/catalog.json)
    assert row["Model"] == "gpt-4o-mini" and row["Unpriced"] is False
    assert Decimal(str(row["TotalCost"])) == Decimal("0.15") + Decimal("0.06")


def test_several_accounts_one_client_per_subscription_and_the_first_account_wins_a_shared_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def item(name: str, model: str) -> SimpleNamespace:
        return SimpleNamespace(name=name, sku=SimpleNamespace(name="GlobalStandard", capacity=1),
                               properties=SimpleNamespace(model=SimpleNamespace(name=model, version="1")))

    listed = {"eu": [item("chat", "gpt-4o"), item("eu-only", "gpt-4.1")], "us": [item("chat", "gpt-4o-mini")]}
    made: list[str] = []

    def client_for(subscription: str) -> Any:
        made.append(subscription)
        return SimpleNamespace(deployments=SimpleNamespace(list=lambda group, account: iter(listed[account])))

    accounts = [ModelAccount("sub-1", "rg", "eu"), ModelAccount("sub-1", "rg", "us")]
    with caplog.at_level(logging.WARNING, logger="shared.costs.deployments"):
        merged = deployment_map_for_run(DeploymentMap(), ArmDeploymentDiscovery(accounts, client_for))
    assert made == ["sub-1"]
    assert (merged.model_for("chat"), merged.model_for("eu-only")) == ("gpt-4o", "gpt-4.1")
    assert "deployment chat is in" in caplog.text
