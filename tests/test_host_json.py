"""host.json: the costs run fits in functionTimeout even when every query runs to its server timeout.

The worst case is measured, not restated: the real query code (shared/costs/query.py,
shared/alerts/data.py) runs against a query API whose every answer takes the query's whole server
timeout, with the settings' defaults (shared/config.py SETTINGS, which infra/main.bicep sets).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from azure.monitor.query import LogsQueryStatus

from shared.alerts.data import QUERY_COLUMNS, SIZE_COLUMNS, TRAFFIC_COLUMNS, ranges_for, read_alert_data
from shared.config import SETTINGS
from shared.costs.outputs import CostRunSummary, WindowOutcome
from shared.costs.query import usage_query
from shared.errors import QueryError
from shared.logs.parts import query_in_parts
from shared.meters.run import MeterClients, check_bypass
from shared.meters.table import LATEST_COLUMNS, LogsComparisons
from shared.windows import Window
from tests import ROOT
from tests.support.sections import settings_with

# LogsQueryClient without server_timeout: "The default timeout is 3 minutes, and the maximum timeout
# is 10 minutes" (azure-monitor-query, azure/monitor/query/_patch.py, query_workspace docstring).
API_DEFAULT_SERVER_TIMEOUT_SECONDS = 180
# Flex Consumption: default 30 minutes, no maximum, but a running execution gets a 60-minute grace
# period when the plan scales in (MicrosoftDocs/azure-docs includes/functions-timeout-duration.md,
# ms.date 2026-01-20): a longer timeout would not be honoured.
FLEX_SCALE_IN_GRACE = timedelta(minutes=60)
# Uploading the summaries and sending the alert email come after the queries.
UPLOAD_AND_EMAIL_ALLOWANCE = timedelta(minutes=5)
NOW = datetime(2026, 11, 30, 10, 20, tzinfo=UTC)
ACCOUNT = "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/ai-x"


class SlowLogsApi:
    """A query API whose every query runs for its whole server timeout; `partial` answers are
    partial (the kind that is retried, not split), the others complete and empty."""

    def __init__(self, *, partial: bool) -> None:
        self.partial = partial
        self.seconds = 0.0

    def query_workspace(self, workspace_id: str, query: str, **kwargs: Any) -> Any:
        self.seconds += kwargs.get("server_timeout") or API_DEFAULT_SERVER_TIMEOUT_SECONDS
        if self.partial:
            error = SimpleNamespace(code="GatewayTimeout", message="the query ran out of time", details=None)
            return SimpleNamespace(status=LogsQueryStatus.PARTIAL, partial_error=error)
        columns = (
            TRAFFIC_COLUMNS if "SyntheticTraffic_CL" in query
            else LATEST_COLUMNS if "MeterComparison_CL" in query
            else SIZE_COLUMNS if "KeyCharacters" in query
            else QUERY_COLUMNS
        )  # fmt: skip
        return SimpleNamespace(status=LogsQueryStatus.SUCCESS, tables=[SimpleNamespace(columns=columns, rows=[])])

    def query_resource(self, resource_id: str, query: str, **kwargs: Any) -> Any:
        return self.query_workspace(resource_id, query, **kwargs)


def function_timeout() -> timedelta:
    value = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["functionTimeout"]
    match = re.fullmatch(r"(?:(\d+)\.)?(\d\d):(\d\d):(\d\d)", value)  # [d.]hh:mm:ss
    assert match, f"functionTimeout {value!r} is not [d.]hh:mm:ss (and -1, unbounded, is not allowed here)"
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def usage_query_worst_case() -> timedelta:
    """COST_QUERY_ATTEMPTS answers that each take the server timeout, plus the pauses between them."""
    spec = usage_query(settings_with().costs)  # as the declared defaults ask it
    api, pauses = SlowLogsApi(partial=True), []
    with pytest.raises(QueryError):
        query_in_parts(api, "w", spec, NOW - timedelta(hours=3), NOW.replace(minute=0), sleep=pauses.append)  # type: ignore[arg-type]
    return timedelta(seconds=api.seconds + sum(pauses))


def alert_queries_worst_case() -> timedelta:
    """The alert rules' queries after a costs run (usage size, usage, synthetic traffic), each taking its
    server timeout."""
    api = SlowLogsApi(partial=False)
    read_alert_data(api, "w", ranges_for([], NOW, 60), with_traffic=True, now=NOW)  # type: ignore[arg-type]
    return timedelta(seconds=api.seconds)


class HangingMetricsApi:
    """A metrics API whose every answer times out: each request costs its whole timeout on `clock`."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.metrics = self

    def list(self, *args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import ServiceResponseError

        self.clock[0] += kwargs["read_timeout"]
        raise ServiceResponseError("read timed out")


def bypass_check_worst_case() -> timedelta:
    """The bypass check (shared/meters/) between the costs run and the alerts when no metrics read ever answers
    and the read of its latest comparisons (MeterComparison_CL) takes its whole server timeout."""
    clock = [0.0]
    settings = settings_with(COST_MODEL_ACCOUNTS=ACCOUNT).meters
    window = Window(NOW.replace(minute=0) - timedelta(hours=1), NOW.replace(minute=0))
    summary = CostRunSummary(started_at=NOW, revision=NOW, price_version="v")
    summary.windows = [WindowOutcome(window, True, 1, "uploaded")]
    api, logs = HangingMetricsApi(clock), SlowLogsApi(partial=False)
    table = LogsComparisons(settings, logs, SimpleNamespace(upload=lambda *args, **kwargs: None))  # type: ignore[arg-type]
    report = check_bypass(
        settings, summary, clients=MeterClients(lambda subscription: api, table),  # type: ignore[arg-type,return-value]
        sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds), clock=lambda: clock[0],
    )  # fmt: skip
    assert report.pending and report.rows_written == 1  # the window's pending row
    return timedelta(seconds=clock[0] + logs.seconds)


def focus_export_worst_case() -> timedelta:
    """The FOCUS export's one query (shared/focus/export.py), taking its whole server timeout; its blob writes are in
    the allowance."""
    from dataclasses import replace

    from shared.focus.export import export_focus
    from shared.focus.store import InMemoryDayFiles

    api = SlowLogsApi(partial=False)
    settings = replace(settings_with().focus, container="focus-exports")
    export_focus(settings, NOW, query=api, files=InMemoryDayFiles(), deployments=[])  # type: ignore[arg-type]
    return timedelta(seconds=api.seconds)


def test_worst_case_is_measured_from_the_query_code() -> None:
    # 3 attempts x 600 s + pauses of 5 s and 10 s; then the alert usage size (180 s), the usage (600 s, one
    # attempt) and the synthetic traffic (180 s).
    assert usage_query_worst_case() == timedelta(seconds=3 * 600 + 5 + 10)
    assert alert_queries_worst_case() == timedelta(seconds=180 + 600 + 180)
    # Its whole budget (BYPASS_METRICS_BUDGET_SECONDS), never more: a request's timeout is cut to what is left;
    # then the read of the latest comparisons, bounded by its server timeout (shared/logs/revisions.py).
    assert bypass_check_worst_case() == timedelta(seconds=60 + 60)
    assert focus_export_worst_case() == timedelta(seconds=120)  # one query, bounded by its server timeout
    with pytest.raises(QueryError):  # a partial alert answer ends the alert step (no retry)
        read_alert_data(SlowLogsApi(partial=True), "w", ranges_for([], NOW, 60), with_traffic=True, now=NOW)  # type: ignore[arg-type]


def test_function_timeout_covers_the_slowest_costs_run() -> None:
    """A run killed part-way leaves windows unpriced until the next run, and its alerts unsent."""
    defaults = {setting.name: setting.default for setting in SETTINGS}
    # The bill check's Cost Management reads end within their budget (the same loop the bypass check's worst case
    # measures, shared/azure_retry.py); its two Log Analytics queries and upload are in the allowance.
    bill_check = timedelta(seconds=float(defaults["BILL_CHECK_BUDGET_SECONDS"] or 0))
    needed = (
        usage_query_worst_case() + bypass_check_worst_case() + bill_check + focus_export_worst_case()
        + alert_queries_worst_case() + UPLOAD_AND_EMAIL_ALLOWANCE
    )
    timeout = function_timeout()
    assert timeout >= needed, f"host.json functionTimeout {timeout} < the slowest costs run {needed}"
    assert timeout <= FLEX_SCALE_IN_GRACE, f"functionTimeout {timeout} exceeds Flex's scale-in grace period"
    traffic_budget = {setting.name: setting.default for setting in SETTINGS}["TRAFFIC_TIME_BUDGET_SECONDS"]
    assert timedelta(seconds=float(traffic_budget)) < timeout, "a traffic run must end within functionTimeout"
