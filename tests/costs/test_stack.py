"""Fixtures for the costs tests: the Azure Monitor stand-in (HTTPS, in process), the identity
endpoint and Azurite, used through the real SDK clients. Other test_cost*.py modules import them.
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.query import LogsQueryClient

from shared.azure_clients import open_table
from shared.config import CostSettings
from shared.costs.progress import TableProgressStore
from shared.costs.run import CostClients, progress_scope
from shared.logs.kql import load_query
from standins._server import free_port
from standins.identity import identity_env, start_identity
from standins.monitor import MonitorConfig, RunningMonitor, start_monitor
from standins.stack import AZURITE_ACCOUNT, AZURITE_KEY
from tests import ROOT
from tests.sections import cost_section
from tests.standins.test_monitor import LoopThread, fresh_monitor_config

AZURITE = ROOT / "node_modules" / ".bin" / "azurite-table"


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    """A Table storage connection string (Azurite, its own process, killed by its pid)."""
    if not AZURITE.exists():
        pytest.skip("Azurite is not installed (run `make setup`)")
    port = free_port()
    process = subprocess.Popen(
        [str(AZURITE), "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--inMemoryPersistence",
         "--tableHost", "127.0.0.1",
         "--tablePort", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        for line in process.stdout:
            if "successfully" in line:  # "successfully listening" or "successfully started"
                break
            if time.monotonic() > deadline:
                raise RuntimeError("Azurite did not start")
        else:
            raise RuntimeError(f"Azurite exited with {process.wait()}")
        yield (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
               f"TableEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")
    finally:
        process.terminate()
        process.wait(10)


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


@pytest.fixture(scope="module")
def cost_loop() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def identity(cost_loop: LoopThread) -> Iterator[tuple[str, dict[str, str]]]:
    secret, header = secrets.token_hex(32), secrets.token_urlsafe(16)
    server = cost_loop.run(start_identity(secret, header))
    yield secret, identity_env(server.url, header)
    cost_loop.run(server.stop())


@pytest.fixture
def make_cost_stack(
    cost_loop: LoopThread,
    identity: tuple[str, dict[str, str]],
    azurite: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., CostStack]]:
    """A fresh workspace (own DuckDB file) and progress scope per call; monitor limits overridable."""
    secret, env = identity
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IDENTITY_SERVER_THUMBPRINT", raising=False)
    started: list[RunningMonitor] = []

    def make(*, max_rows: int = 500_000, **settings: Any) -> CostStack:
        config = fresh_monitor_config(tmp_path, secret, db_name=f"monitor-{len(started)}.duckdb", max_rows=max_rows)
        monitor = cost_loop.run(start_monitor(config))
        started.append(monitor)
        cost_settings = cost_section(
            workspace_id=config.workspace_id,
            ingestion_endpoint=monitor.url,
            ingestion_rule_id=config.dcr_immutable_id,
            query_endpoint=monitor.url,
            state_connection_string=azurite,
            state_table_name="CostProgress" + uuid.uuid4().hex[:8],
            retry_delay_seconds=0,
            ca_bundle=monitor.ca_path,
            **settings,
        )
        query = LogsQueryClient(ManagedIdentityCredential(), endpoint=monitor.url,
                                connection_verify=str(monitor.ca_path))
        return CostStack(monitor, config, cost_settings, query)

    yield make
    for monitor in started:
        cost_loop.run(monitor.stop())


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
    import json

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
