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
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.monitor.query import LogsQueryClient, LogsQueryStatus
from openai import AzureOpenAI

from standins.stack import Stack
from tests.support.stack import flush_metrics, logs_client, run_timer

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

POLICY_DIMENSIONS = ("Subscription ID", "User ID", "API ID", "Streamed", "Deployment")


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


def _query_rows(client: LogsQueryClient, stack: Stack, query: str) -> list[dict[str, Any]]:
    result = client.query_workspace(stack.info.monitor.workspace_id, query, timespan=timedelta(hours=1))
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def test_clients_through_gateway_produce_matching_metrics(local_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    info = local_stack.info
    run_user = f"e2e-{time.time_ns()}"
    seen: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    streamed: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    messages = [
        {"role": "system", "content": "You are a sarcastic unhelpful assistant."},
        {"role": "user", "content": "Can you tell me the time, please?"},
    ]

    for name, key in info.subscriptions.items():
        client = AzureOpenAI(
            azure_endpoint=f"{info.gateway_url}/inference",
            api_key=key,
            api_version=info.api_version,
            max_retries=0,
        )
        response = client.chat.completions.create(
            model="gpt-5.6-luna",
            messages=messages,  # type: ignore[arg-type]
            extra_headers={"x-user-id": run_user},
        )
        assert response.usage is not None
        seen[(name, "gpt-5.6-luna")]["Total Tokens"] += response.usage.total_tokens
        seen[(name, "gpt-5.6-luna")]["Prompt Tokens"] += response.usage.prompt_tokens
        stream = client.chat.completions.create(
            model="gpt-5.6-sol",
            messages=messages,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
            extra_headers={"x-user-id": run_user},
        )
        usage = [chunk.usage for chunk in stream if chunk.usage is not None]
        assert len(usage) == 1
        # Streamed: APIM estimates (the docs) from what the stream carries, so these are compared
        # within a tolerance below, without the hidden reasoning tokens the estimate cannot see.
        details = usage[0].completion_tokens_details
        hidden = (details.reasoning_tokens or 0) if details is not None else 0
        streamed[(name, "gpt-5.6-sol")]["Total Tokens"] += usage[0].total_tokens - hidden
        streamed[(name, "gpt-5.6-sol")]["Prompt Tokens"] += usage[0].prompt_tokens

    # The lab notebook's raw request: api-key header and x-user-id, deployment in the path.
    first_name, first_key = next(iter(info.subscriptions.items()))
    status, body = _post(
        f"{info.gateway_url}/inference/openai/deployments/gpt-5.6-terra/chat/completions"
        f"?api-version={info.api_version}",
        {"messages": messages},
        {"api-key": first_key, "x-user-id": run_user},
    )
    assert status == 200
    raw_usage = json.loads(body)["usage"]
    seen[(first_name, "gpt-5.6-terra")]["Total Tokens"] += raw_usage["total_tokens"]
    seen[(first_name, "gpt-5.6-terra")]["Prompt Tokens"] += raw_usage["prompt_tokens"]

    flush_metrics(local_stack)
    logs = logs_client(local_stack, monkeypatch)
    rows = _query_rows(
        logs,
        local_stack,
        f"""AppMetrics
| where tostring(Properties['User ID']) == "{run_user}"
| summarize Tokens = sum(Sum), Calls = sum(ItemCount) by Name, Subscription = tostring(Properties['Subscription ID']),
    Deployment = tostring(Properties['Deployment']), Streamed = tostring(Properties['Streamed'])""",
    )
    emitted: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
    for row in rows:
        emitted[(row["Subscription"], row["Deployment"], row["Streamed"])][row["Name"]] = int(row["Tokens"])
    for (subscription, deployment), metrics in seen.items():
        for metric, tokens in metrics.items():  # plain calls: APIM's metric is the response's usage
            assert emitted[(subscription, deployment, "False")][metric] == tokens, (subscription, metric)
    for (subscription, deployment), metrics in streamed.items():
        for metric, tokens in metrics.items():  # streamed calls: APIM's estimate
            assert emitted[(subscription, deployment, "True")][metric] == pytest.approx(tokens, rel=0.05)
    assert {key[2] for key in emitted} == {"True", "False"}

    # The lab's own query still runs; its Client IP column is empty now that policy.xml spends
    # that dimension on Streamed (README, "What the numbers rest on").
    lab_rows = [row for row in _query_rows(logs, local_stack, LAB_QUERY) if row["UserId"] == run_user]
    total_tokens = sum(int(row["Tokens"]) for row in rows if row["Name"] == "Total Tokens")
    assert sum(row["value"] for row in lab_rows) == total_tokens
    assert {row["apimSubscription"] for row in lab_rows} == set(info.subscriptions)
    assert all(row["apiId"] == "inference-api" and row["clientIP"] == "" for row in lab_rows)

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


def test_timers_run_through_the_local_host(local_stack: Stack) -> None:
    traffic = run_timer(local_stack, "traffic")
    assert traffic["status"] == "Succeeded", traffic
    flush_metrics(local_stack)
    costs = run_timer(local_stack, "costs")
    assert costs["status"] == "Succeeded", costs
    assert datetime.now(UTC).year >= 2026


def test_the_stack_settings_discover_the_simulator_deployments_through_arm(
    local_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run`'s settings point the costs run at the ARM stand-in: the simulator's deployments, SKUs included."""
    from shared.azure_clients import AzureAccess
    from shared.config import load_settings
    from shared.costs.clients import build_clients

    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        monkeypatch.setenv(name, local_stack.settings[name])
    settings = load_settings(local_stack.settings).costs
    monkeypatch.setattr(AzureAccess, "state_table", lambda *args, **kwargs: None)  # only the discovery is wanted
    discovery = build_clients(settings).discovery
    assert discovery is not None
    found = {d.name: (d.model, d.model_version, d.sku) for d in discovery.deployments()}
    assert found == {
        "gpt-5.6-luna": ("gpt-5.6-luna", "2026-07-09", "GlobalStandard"),
        "gpt-5.6-sol": ("gpt-5.6-sol", "2026-07-09", "GlobalStandard"),
        "gpt-5.6-terra": ("gpt-5.6-terra", "2026-07-09", "DataZoneStandard"),
    }


def test_cost_summaries_match_client_usage_and_prices_and_reruns_change_nothing(
    local_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients' usage through the gateway = the cost summaries' tokens per subscription x user x model;
    costs = tokens x prices in force for each deployment's model and type (terra is DataZoneStandard in the
    ARM stand-in, priced above Global); re-running the costs timer 3 times changes no total."""
    from decimal import Decimal

    from shared.azure_clients import ModelAccount
    from shared.costs.clients import build_clients
    from shared.costs.deployments import deployment_map_for_run
    from shared.costs.pricing import load_deployment_map, load_price_table, price_usage
    from shared.costs.run import run_costs
    from shared.logs.kql import load_query
    from shared.money import round_summary_cost
    from tests.support.sections import cost_section

    info = local_stack.info
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        monkeypatch.setenv(name, local_stack.settings[name])
    settings = cost_section(
        workspace_id=info.monitor.workspace_id,
        query_endpoint=info.monitor.endpoint,
        ingestion_endpoint=info.ingestion.endpoint,
        ingestion_rule_id=info.ingestion.rule_id,
        state_connection_string=info.storage.connection_string,
        state_table_name=f"e2e{time.time_ns()}",
        ca_bundle=str(info.monitor.ca_cert),
        retry_delay_seconds=0,
        # The deployments (and their types) from the ARM stand-in, as `make run` and Azure do.
        model_accounts=(ModelAccount.parse(info.arm.account_id),),
        resource_manager_endpoint=info.arm.endpoint,
    )
    run_user = f"costs-e2e-{time.time_ns()}"
    seen: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # prompt, cached, completion
    messages = [{"role": "user", "content": "Price me, please."}]
    for subscription, key in info.subscriptions.items():
        client = AzureOpenAI(
            azure_endpoint=f"{info.gateway_url}/inference",
            api_key=key,
            api_version=info.api_version,
            max_retries=0,
        )
        for deployment in ("gpt-5.6-luna", "gpt-5.6-sol", "gpt-5.6-terra"):
            response = client.chat.completions.create(
                model=deployment,
                messages=messages,  # type: ignore[arg-type]
                extra_headers={"x-user-id": run_user},
            )
            assert response.usage is not None
            cached = response.usage.prompt_tokens_details.cached_tokens if response.usage.prompt_tokens_details else 0
            for index, tokens in enumerate(
                (response.usage.prompt_tokens, cached or 0, response.usage.completion_tokens)
            ):
                seen[(subscription, deployment)][index] += tokens
    flush_metrics(local_stack)

    def summaries() -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        query = load_query(
            "cost-summary-latest.kql", {"start_time": now - timedelta(hours=3), "end_time": now + timedelta(hours=1)}
        )
        return [
            row
            for row in _query_rows(logs_client(local_stack, monkeypatch), local_stack, query)
            if row["UserId"] == run_user
        ]

    first = run_costs(settings)
    assert not first.failed_windows
    rows = summaries()
    got: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        for index, column in enumerate(("PromptTokens", "CachedPromptTokens", "CompletionTokens")):
            got[(row["SubscriptionId"], row["Model"])][index] += row[column]
    assert dict(got) == dict(seen)

    prices = load_price_table(settings.price_table_path)
    # The run's own map and lookup (file over ARM discovery; PriceTable.prices_for by model and type).
    file_map = load_deployment_map(settings.deployment_map_path)
    models = deployment_map_for_run(file_map, build_clients(settings).discovery)
    types: dict[str, str | None] = {}
    for row in rows:
        deployment_type = models.deployment_type_for(row["Deployment"])
        types[row["Deployment"]] = deployment_type
        model_prices = prices.prices_for(models.model_for(row["Deployment"]), row["WindowStart"], deployment_type)
        assert model_prices is not None
        exact = price_usage(model_prices, row["PromptTokens"], row["CachedPromptTokens"], row["CompletionTokens"])
        assert Decimal(str(row["TotalCost"])) == round_summary_cost(exact.total_cost)
    assert types == {
        "gpt-5.6-luna": "GlobalStandard",
        "gpt-5.6-sol": "GlobalStandard",
        "gpt-5.6-terra": "DataZoneStandard",
    }
    terra = prices.prices_for("gpt-5.6-terra", rows[0]["WindowStart"], "DataZoneStandard")
    assert terra is not None and terra.deployment_type == "DataZoneStandard"  # its own period, not the Global one

    totals = sorted((r["SubscriptionId"], r["Model"], r["TotalTokens"], r["TotalCost"]) for r in rows)
    for _ in range(3):
        run_costs(settings)
        assert (
            sorted((r["SubscriptionId"], r["Model"], r["TotalTokens"], r["TotalCost"]) for r in summaries()) == totals
        )
