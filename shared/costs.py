"""The costs run: read the emitted token metrics (KQL summarized by Log Analytics).

This is the foundation's minimal run: token totals per metric over the last window, through the
real query path (LogsQueryClient → workspace). Pricing, windows and uploads build on it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.kql_files import load_query

if TYPE_CHECKING:
    from shared.config import Settings

log = logging.getLogger(__name__)


@dataclass
class CostRunSummary:
    window_start: datetime
    window_end: datetime
    tokens_by_metric: dict[str, int] = field(default_factory=dict)
    measurements: int = 0
    duration_seconds: float = 0.0

    def line(self) -> str:
        tokens = ", ".join(f"{name}={value}" for name, value in sorted(self.tokens_by_metric.items())) or "no metrics"
        return (
            f"costs run: window {self.window_start:%Y-%m-%d %H:%M}–{self.window_end:%H:%M} UTC; {tokens}; "
            f"{self.measurements} measurements; {self.duration_seconds:.1f}s"
        )


def run_costs(settings: Settings, *, now: datetime | None = None) -> CostRunSummary:
    from azure.monitor.query import LogsQueryStatus

    from shared.azure_clients import logs_query_client

    started = time.monotonic()
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=settings.cost_window_minutes)
    query = load_query("token-totals-by-metric.kql", {"start_time": start, "end_time": end})
    with logs_query_client(settings) as client:
        result = client.query_workspace(settings.log_analytics_workspace_id, query, timespan=(start, end))
    if result.status != LogsQueryStatus.SUCCESS:
        raise RuntimeError(f"token metrics query returned a partial result: {result.partial_error}")
    summary = CostRunSummary(window_start=start, window_end=end)
    for row in result.tables[0].rows:
        summary.tokens_by_metric[str(row[0])] = int(row[1])
        summary.measurements += int(row[2]) if row[0] == "Total Tokens" else 0
    summary.duration_seconds = time.monotonic() - started
    log.info(summary.line())
    return summary
