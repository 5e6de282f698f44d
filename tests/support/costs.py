"""The costs pipeline's test world: a monitor stand-in, its settings and clients (CostStack), and
AppMetrics rows as App Insights writes them from policy.xml. The fixtures that build it are in tests/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
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
