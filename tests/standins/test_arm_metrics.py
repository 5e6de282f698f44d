"""The ARM stand-in's Azure Monitor Metrics - List on the model account (standins/arm_metrics.py): the shape the SDK
reads, and the limits it holds clients to (top, api-version, aggregation, dimension), as Azure does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from standins.arm import ArmDeployment, RunningArm
from standins.arm_metrics import METRICS_API_VERSION
from standins.simulator.meters import TokenMeters
from tests.support.arm import TEST_ACCOUNT, arm_client
from tests.support.meters import meter_clients

MakeArm = Callable[..., RunningArm]
START = datetime(2026, 11, 30, 8, tzinfo=UTC)
METRICS_PATH = TEST_ACCOUNT.resource_id + "/providers/Microsoft.Insights/metrics"


def _arm(make_arm: MakeArm, deployments: int = 2) -> RunningArm:
    meters = TokenMeters(clock=lambda: START + timedelta(minutes=7))
    for index in range(deployments):
        for _ in range(index + 1):
            meters.record(f"dep-{index:02d}", 100, 10)
    return make_arm([ArmDeployment(f"dep-{i:02d}", "gpt-5.6-luna", "2026-07-09") for i in range(deployments)],
                    meters=meters)  # fmt: skip


def _get(arm: RunningArm, **params: Any) -> requests.Response:
    token = arm_client(arm)._config.credential.get_token("https://management.azure.com/.default").token
    query = {"api-version": METRICS_API_VERSION, "timespan": f"{START:%Y-%m-%dT%H:%M:%SZ}/"
             f"{START + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}", "interval": "PT1H", **params}  # fmt: skip
    return requests.get(f"{arm.url}{METRICS_PATH}", params=query, headers={"Authorization": f"Bearer {token}"},
                        verify=str(arm.ca_path), timeout=10)  # fmt: skip


def test_the_sdk_reads_each_deployments_tokens_as_a_series_with_its_dimension(make_arm: MakeArm) -> None:
    arm = _arm(make_arm)
    client = meter_clients(arm).client_for(TEST_ACCOUNT.subscription_id)
    response = client.metrics.list(
        TEST_ACCOUNT.resource_id, timespan=f"{START.isoformat()}/{(START + timedelta(hours=2)).isoformat()}",
        interval="PT1H", metricnames="ProcessedPromptTokens,TokenTransaction", aggregation="Total",
        filter="ModelDeploymentName eq '*'",
    )  # fmt: skip
    prompt, total = response.value
    assert (prompt.name.value, prompt.unit, total.name.localized_value) == (
        "ProcessedPromptTokens", "Count", "Processed Inference Tokens")
    by_deployment = {s.metadatavalues[0].value: [p.total for p in s.data] for s in total.timeseries}
    assert by_deployment == {"dep-01": [220.0, None], "dep-00": [110.0, None]}  # no calls in 09:00: no total
    assert prompt.timeseries[0].metadatavalues[0].name.value == "modeldeploymentname"


def test_a_split_returns_ten_series_unless_top_asks_for_more(make_arm: MakeArm) -> None:
    arm = _arm(make_arm, deployments=12)
    split = {"metricnames": "GeneratedTokens", "aggregation": "Total", "$filter": "ModelDeploymentName eq '*'"}
    assert len(_get(arm, **split).json()["value"][0]["timeseries"]) == 10
    assert len(_get(arm, **split, top="20").json()["value"][0]["timeseries"]) == 12
    whole = _get(arm, metricnames="GeneratedTokens").json()["value"][0]["timeseries"]
    assert [(series["metadatavalues"], series["data"][0]["total"]) for series in whole] == [([], 780.0)]


@pytest.mark.parametrize(
    ("params", "code"),
    [({"metricnames": "Latency"}, "BadRequest"), ({"metricnames": "GeneratedTokens", "aggregation": "Average"},
     "BadRequest"), ({"metricnames": "GeneratedTokens", "$filter": "ApiName eq '*'"}, "BadRequest"),
     ({"metricnames": "GeneratedTokens", "interval": "PT2H"}, "BadRequest")],
)  # fmt: skip
def test_what_the_stand_in_does_not_serve_is_a_400_of_the_metrics_api(
    make_arm: MakeArm, params: dict[str, str], code: str
) -> None:
    response = _get(_arm(make_arm), **params)
    assert response.status_code == 400 and response.json()["code"] == code  # not wrapped in "error"


def test_arm_checks_the_api_version_and_the_metrics_read_action(make_arm: MakeArm) -> None:
    arm = _arm(make_arm)
    wrong = _get(arm, metricnames="GeneratedTokens", **{"api-version": "2023-10-01"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    arm.service.metrics_granted_client_ids = set()
    refused = _get(arm, metricnames="GeneratedTokens")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "AuthorizationFailed")
    assert "Microsoft.Insights/metrics/read" in refused.json()["error"]["message"]


def test_throttling_is_429_with_retry_after(make_arm: MakeArm) -> None:
    arm = _arm(make_arm)
    arm.service.fail_metrics(429, retry_after_seconds=17)
    throttled = _get(arm, metricnames="GeneratedTokens")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "17")
    assert _get(arm, metricnames="GeneratedTokens").status_code == 200
