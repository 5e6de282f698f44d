"""End to end on the local stack: clients → gateway (policy.xml) → simulator; metrics → monitor → KQL.

Everything goes over real sockets between real processes, with the official clients: openai's
AzureOpenAI, raw HTTP shaped like the lab's notebook, LogsQueryClient, and the Functions admin
endpoint firing the app's own timers.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential
from azure.monitor.query import LogsQueryClient, LogsQueryStatus
from openai import AzureOpenAI

from standins.stack import Stack

pytestmark = pytest.mark.slow

LAB_QUERY = """customMetrics
| where name == 'Total Tokens'
| extend parsedCustomDimensions = parse_json(customDimensions)
| extend clientIP = tostring(parsedCustomDimensions.['Client IP'])
| extend apiId = tostring(parsedCustomDimensions.['API ID'])
| extend apimSubscription = tostring(parsedCustomDimensions.['Subscription ID'])
| extend UserId = tostring(parsedCustomDimensions.['User ID'])
| project timestamp, value, clientIP, apiId, apimSubscription, UserId
| order by timestamp asc"""

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIMENSIONS = ("Subscription ID", "User ID", "API ID", "Client IP", "Deployment")


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


def _logs_client(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> LogsQueryClient:
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.info["identity"]["endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", stack.info["identity"]["header"])
    return LogsQueryClient(
        ManagedIdentityCredential(),
        endpoint=stack.info["monitor"]["endpoint"],
        connection_verify=stack.info["monitor"]["ca_cert"],
    )


def _flush_metrics(stack: Stack) -> None:
    status, _ = _post(f"{stack.info['gateway_url']}/_standin/metrics/flush", {})
    assert status in (200, 202, 204)


def _query_rows(client: LogsQueryClient, stack: Stack, query: str) -> list[dict[str, Any]]:
    result = client.query_workspace(stack.info["monitor"]["workspace_id"], query, timespan=timedelta(hours=1))
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def test_clients_through_gateway_produce_matching_metrics(local_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    info = local_stack.info
    run_user = f"e2e-{time.time_ns()}"
    seen: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    messages = [
        {"role": "system", "content": "You are a sarcastic unhelpful assistant."},
        {"role": "user", "content": "Can you tell me the time, please?"},
    ]

    for name, key in info["subscriptions"].items():
        client = AzureOpenAI(
            azure_endpoint=f"{info['gateway_url']}/inference",
            api_key=key,
            api_version=info["api_version"],
            max_retries=0,
        )
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,  # type: ignore[arg-type]
            extra_headers={"x-user-id": run_user},
        )
        assert response.usage is not None
        seen[(name, "gpt-4o-mini")]["Total Tokens"] += response.usage.total_tokens
        seen[(name, "gpt-4o-mini")]["Prompt Tokens"] += response.usage.prompt_tokens
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=messages,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
            extra_headers={"x-user-id": run_user},
        )
        usage = [chunk.usage for chunk in stream if chunk.usage is not None]
        assert len(usage) == 1
        seen[(name, "gpt-4o")]["Total Tokens"] += usage[0].total_tokens
        seen[(name, "gpt-4o")]["Prompt Tokens"] += usage[0].prompt_tokens

    # The lab notebook's raw request: api-key header and x-user-id, deployment in the path.
    first_name, first_key = next(iter(info["subscriptions"].items()))
    status, body = _post(
        f"{info['gateway_url']}/inference/openai/deployments/gpt-35-turbo/chat/completions"
        f"?api-version={info['api_version']}",
        {"messages": messages},
        {"api-key": first_key, "x-user-id": run_user},
    )
    assert status == 200
    raw_usage = json.loads(body)["usage"]
    seen[(first_name, "gpt-35-turbo")]["Total Tokens"] += raw_usage["total_tokens"]
    seen[(first_name, "gpt-35-turbo")]["Prompt Tokens"] += raw_usage["prompt_tokens"]

    _flush_metrics(local_stack)
    logs = _logs_client(local_stack, monkeypatch)
    rows = _query_rows(
        logs,
        local_stack,
        f"""AppMetrics
| where tostring(Properties['User ID']) == "{run_user}"
| summarize Tokens = sum(Sum), Calls = sum(ItemCount) by Name, Subscription = tostring(Properties['Subscription ID']),
    Deployment = tostring(Properties['Deployment'])""",
    )
    emitted: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for row in rows:
        emitted[(row["Subscription"], row["Deployment"])][row["Name"]] = int(row["Tokens"])
    for key, metrics in seen.items():
        for metric, tokens in metrics.items():
            assert emitted[key][metric] == tokens, (key, metric)

    lab_rows = [row for row in _query_rows(logs, local_stack, LAB_QUERY) if row["UserId"] == run_user]
    assert sum(row["value"] for row in lab_rows) == sum(m["Total Tokens"] for m in seen.values())
    assert {row["apimSubscription"] for row in lab_rows} == set(info["subscriptions"])
    assert all(row["apiId"] == "inference-api" and row["clientIP"] == "127.0.0.1" for row in lab_rows)

    dims = _query_rows(
        logs,
        local_stack,
        f"""AppMetrics
| where tostring(Properties['User ID']) == "{run_user}" | project Properties""",
    )
    for row in dims:
        properties = row["Properties"] if isinstance(row["Properties"], dict) else json.loads(row["Properties"])
        for dimension in POLICY_DIMENSIONS:
            assert properties.get(dimension), (dimension, properties)


def _run_timer(stack: Stack, name: str, timeout_seconds: float = 120) -> dict[str, Any]:
    """Fire a timer through the admin endpoint (as with Core Tools) and wait for that invocation."""
    base = stack.info["functions_url"]
    request = urllib.request.Request(
        f"{base}/admin/functions/{name}",
        data=b'{"input": ""}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        invocation_id = response.headers["X-Invocation-Id"]
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        state = json.loads(urllib.request.urlopen(f"{base}/admin/functions/{name}/status", timeout=10).read())
        for invocation in state["invocations"]:
            if invocation["id"] == invocation_id and invocation["status"] in ("Succeeded", "Failed"):
                return dict(invocation)
        time.sleep(0.2)
    raise AssertionError(f"{name} did not finish in {timeout_seconds}s")


def test_timers_run_through_the_local_host(local_stack: Stack) -> None:
    traffic = _run_timer(local_stack, "traffic")
    assert traffic["status"] == "Succeeded", traffic
    _flush_metrics(local_stack)
    costs = _run_timer(local_stack, "costs")
    assert costs["status"] == "Succeeded", costs
    assert datetime.now(UTC).year >= 2026


def test_costs_run_sees_exactly_the_tokens_traffic_run_reported(
    local_stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from shared.config import load_settings
    from shared.costs import run_costs
    from shared.traffic_wiring import run_traffic_from_settings

    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        monkeypatch.setenv(name, local_stack.settings[name])
    # Every call asks for the usage chunk, so the client saw all the tokens the gateway metered.
    personas = json.loads((ROOT / "shared" / "personas.sample.json").read_text(encoding="utf-8"))
    for persona in personas["personas"]:
        persona["include_usage_share"] = 1.0
    personas_file = tmp_path / "personas.json"
    personas_file.write_text(json.dumps(personas), encoding="utf-8")
    settings = replace(load_settings(local_stack.settings), traffic_personas_file=str(personas_file))
    _flush_metrics(local_stack)
    now = datetime.now(UTC) + timedelta(minutes=5)  # window end safely after the traffic
    before = run_costs(settings, now=now)
    traffic = run_traffic_from_settings(settings, local_stack.settings)
    assert traffic.calls_ok == settings.traffic_requests_per_run and traffic.calls_failed == 0, traffic.line()
    assert traffic.calls_usage_unseen == 0
    _flush_metrics(local_stack)
    after = run_costs(settings, now=now)
    delta = {
        name: after.tokens_by_metric.get(name, 0) - before.tokens_by_metric.get(name, 0)
        for name in ("Prompt Tokens", "Completion Tokens", "Total Tokens")
    }
    assert delta == {
        "Prompt Tokens": traffic.prompt_tokens,
        "Completion Tokens": traffic.completion_tokens,
        "Total Tokens": traffic.total_tokens,
    }
