"""Local Azure Monitor: Log Analytics query API (workspace- and resource-centric: the App Insights
component answers with its own tables), Logs Ingestion API and App Insights track API over an
embedded DuckDB file, KQL executed by duckdb-kql. See app.py for the server."""

from __future__ import annotations

from standins.monitor.app import RunningMonitor, build_monitor_app, start_monitor
from standins.monitor.config import MonitorConfig
from standins.monitor.store import MonitorStore, QueryResult, bulk_insert_app_metrics

__all__ = [
    "MonitorConfig",
    "MonitorStore",
    "QueryResult",
    "RunningMonitor",
    "build_monitor_app",
    "bulk_insert_app_metrics",
    "start_monitor",
]
