"""The costs pipeline's test world: a monitor stand-in, its settings and clients (CostStack), and
AppMetrics rows as App Insights writes them from policy.xml. The fixtures that build it are in tests/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from azure.identity import ManagedIdentityCredential
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.query import LogsQueryClient

from shared.azure_clients import open_table
from shared.config import CostSettings
from shared.costs.clients import CostClients, progress_scope
from shared.costs.progress import TableProgressStore
from shared.logs.kql import load_query
from standins.monitor import MonitorConfig, RunningMonitor
from tests import ROOT
from tests.support.sections import REQUIRED

# A native table declares its version as it is ("A"), where a catalog adds its content hash.
NATIVE_PRICE_TABLE = ROOT / "tests" / "costs" / "fixtures" / "native-price-table.json"


@dataclass
class CostStack:
    monitor: RunningMonitor
    config: MonitorConfig
    settings: CostSettings
    query: LogsQueryClient

    def clients(self, **overrides: Any) -> CostClients:
        ca = str(self.monitor.ca_path)
        clients = CostClients(
            query=self.query,
            ingestion=LogsIngestionClient(self.monitor.url, ManagedIdentityCredential(), connection_verify=ca),
            progress=TableProgressStore(
                open_table(
                    self.settings.state_table_name,
                    connection_string=self.settings.state_connection_string,
                    purpose="costs progress",
                ),
                progress_scope(self.settings),
            ),
        )
        return replace(clients, **overrides)

    def app_settings(self) -> dict[str, str]:
        """The app settings (environment) that load_settings turns into this stack's costs section."""
        costs = self.settings
        assert costs.state_connection_string is not None and costs.azure.ca_bundle is not None
        return {
            **REQUIRED,
            "LOG_ANALYTICS_WORKSPACE_ID": costs.workspace_id,
            "LOG_ANALYTICS_ENDPOINT": costs.query_endpoint,
            "LOGS_INGESTION_ENDPOINT": costs.ingestion_endpoint,
            "LOGS_INGESTION_RULE_ID": costs.ingestion_rule_id,
            "COST_STATE_CONNECTION_STRING": costs.state_connection_string,
            "COST_STATE_TABLE": costs.state_table_name,
            "COST_PRICE_TABLE": str(costs.price_table_path),
            "COST_RECOMPUTE_WINDOWS": str(costs.recompute_windows),
            "COST_RETRY_DELAY_SECONDS": str(costs.retry_delay_seconds),
            "AZURE_CA_BUNDLE": str(costs.azure.ca_bundle),
        }

    def insert_metrics(self, rows: list[dict[str, Any]]) -> None:
        self.monitor.store.insert_rows("AppMetrics", rows)

    def latest(self, start: dt.datetime, end: dt.datetime, *, direct: bool = False) -> list[dict[str, Any]]:
        """The summaries as readers see them (the shipped latest-revision query)."""
        query = load_query("cost-summary-latest.kql", {"start_time": start, "end_time": end})
        return self.kql(query, direct=direct)

    def kql(self, query: str, *, direct: bool = False) -> list[dict[str, Any]]:
        """Through LogsQueryClient; `direct` reads the store itself (past a test's tiny row limit)."""
        if direct:
            result = self.monitor.store.query(query, now=dt.datetime.now(dt.UTC), max_rows=10**9)
            return [dict(zip([name for name, _ in result.columns], row, strict=True)) for row in result.rows]
        response = self.query.query_workspace(self.config.workspace_id, query, timespan=None)
        table = response.tables[0]
        return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def write_price_table(path: Path, version: str, **models: dict[str, float]) -> Path:
    """The native price-table fixture under another version, plus `models` (prices per 1M tokens, in force
    since 2026-01-01): what a price-table change looks like to a run."""
    table = json.loads(NATIVE_PRICE_TABLE.read_text(encoding="utf-8"))
    table["version"] = version
    for model, prices in models.items():
        table["models"][model] = [{"effective_from": "2026-01-01", "prices": prices}]
    path.write_text(json.dumps(table, indent=1), encoding="utf-8")
    return path


def metric(
    at: dt.datetime,
    name: str,
    tokens: int,
    *,
    count: int = 1,
    subscription: str | None = "team-a",
    user: str | None = "alice",
    deployment: str | None = "gpt-4o",
    api: str | None = "inference-api",
    streamed: str | None = "False",
) -> dict[str, Any]:
    """An AppMetrics row as App Insights writes it from policy.xml (None leaves the dimension out)."""
    dims = {"Subscription ID": subscription, "User ID": user, "Deployment": deployment, "API ID": api,
            "Streamed": streamed}
    return {
        "TimeGenerated": at,
        "Name": name,
        "Sum": float(tokens),
        "ItemCount": count,
        "Min": 0.0,
        "Max": float(tokens),
        "Properties": json.dumps({key: value for key, value in dims.items() if value is not None}),
    }


def usage_rows(
    at: dt.datetime, prompt: int, completion: int, cached: int = 0, *, requests: int = 1, **dims: Any
) -> list[dict[str, Any]]:
    """The metric rows of `requests` calls pre-aggregated into one minute."""
    rows = [
        metric(at, "Prompt Tokens", prompt, count=requests, **dims),
        metric(at, "Completion Tokens", completion, count=requests, **dims),
        metric(at, "Total Tokens", prompt + completion, count=requests, **dims),
    ]
    if cached:
        rows.append(metric(at, "Prompt Cached Tokens", cached, count=requests, **dims))
    return rows
