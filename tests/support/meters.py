"""The bypass check's test world: its settings and clients pointed at the ARM stand-in, and a costs run summary
holding the gateway's side of a window."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.alerts.data import AlertData, ranges_for, traffic_frame, usage_frame
from shared.alerts.evaluate import Clock, evaluate
from shared.alerts.findings import Finding
from shared.alerts.rules import parse_rules
from shared.config import MeterSettings
from shared.costs.outputs import CostRunSummary, DeploymentTokens, WindowOutcome
from shared.meters.outputs import BypassReport
from shared.meters.run import MeterClients
from shared.meters.table import ComparisonStore, InMemoryComparisons
from shared.windows import Window
from standins.arm import RunningArm
from tests.support.arm import MODEL_ACCOUNT
from tests.support.sections import local_azure, settings_with


def meter_settings(arm: RunningArm, **values: Any) -> MeterSettings:
    """The declared defaults, the stand-in's account and endpoint, no pause between attempts."""
    base = replace(
        settings_with().meters,
        model_accounts=(MODEL_ACCOUNT,),
        resource_manager_endpoint=arm.url,
        retry_delay_seconds=0.0,
        azure=local_azure(arm.ca_path),
    )
    return replace(base, **values)


def meter_clients(arm: RunningArm, table: ComparisonStore | None = None) -> MeterClients:
    """The metrics clients the app builds (AzureAccess.monitor_client) for the stand-in; the comparisons go to
    `table` (default: the in-memory twin of MeterComparison_CL)."""
    access = local_azure(arm.ca_path)
    return MeterClients(
        lambda subscription: access.monitor_client(arm.url, subscription), table or InMemoryComparisons()
    )


def gateway_summary(window: Window, tokens: dict[str, tuple[int, int]], *, final: bool = True) -> CostRunSummary:
    """A costs run that computed one window: deployment -> (total tokens, estimated tokens) as the gateway metered."""
    summary = CostRunSummary(started_at=window.end + timedelta(minutes=20), revision=window.end, price_version="t")
    summary.windows = [WindowOutcome(window, final, len(tokens), "uploaded")]
    summary.deployment_tokens = [
        DeploymentTokens(window.start, name, total, estimated) for name, (total, estimated) in tokens.items()
    ]
    return summary


def hour_window(start: datetime) -> Window:
    return Window(start, start + timedelta(hours=1))


# One `bypass` rule with its defaults.
BYPASS_RULES = (
    '{"recipient_groups": {"platform": ["platform@example.com"]}, '
    '"rules": [{"name": "gateway-bypass", "kind": "bypass"}]}'
)


def bypass_findings(report: BypassReport, now: datetime) -> list[Finding]:
    """The default `bypass` rule's findings on the report (the rule reads nothing else)."""
    data = AlertData(ranges_for([], now, 60), usage_frame([]), traffic_frame([]))
    return evaluate(parse_rules(BYPASS_RULES, source="rules.json"), data, Clock(now, 60), (), report)
