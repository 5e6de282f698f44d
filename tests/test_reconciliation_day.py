"""A simulated day of the sample personas through the whole local pipeline: no false reconciliation alarm.

Each simulated hour the traffic timer's code sends the sample personas' calls (shared/traffic/personas.sample.json:
plain calls, streams with and without include_usage) through the gateway stand-in running policy.xml;
the gateway's token metrics go to the Azure Monitor stand-in over the Application Insights track
API, the ground truth through the Logs Ingestion API. After each hour the costs run summarizes and
the sample reconciliation rule (shared/alerts/alerts.sample.json) is evaluated on what the alert path reads.
Plain calls must match to the token and streamed calls (APIM's estimates) within their own
tolerance, so the day must end with comparisons made and none firing.

The clock is simulated (wall times of the traffic records and the gateway's metric minutes); the
calls themselves are real HTTP through the official SDKs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from azure.identity import ManagedIdentityCredential
from azure.monitor.ingestion import LogsIngestionClient

from shared.alerts.data import ranges_for, read_alert_data
from shared.alerts.evaluate import Clock, evaluate
from shared.alerts.rules import RuleSet, load_rules
from shared.config import TrafficSettings
from shared.costs.run import run_costs
from shared.traffic.run import run_traffic
from standins.gateway.pair import start_gateway_pair
from standins.gateway.sinks import AppInsightsTrackSink
from tests import ROOT
from tests.support.costs import CostStack
from tests.support.loop import LoopThread

pytestmark = pytest.mark.slow

H = dt.timedelta(hours=1)
HOURS = 24
CALLS_PER_HOUR = 12
FAST_SIMULATOR = {"latency_ms": 0.0, "time_to_first_token_ms": 0.0, "tokens_per_second": 20_000.0}


class SimulatedClock:
    """The traffic run's clock (shared/traffic/pacing.Clock): real monotonic time and sleeps, wall
    time from the simulated hour; also the gateway's clock for its metric minutes."""

    def __init__(self, start: dt.datetime) -> None:
        self.base, self._since = start, time.monotonic()

    def at(self, moment: dt.datetime) -> None:
        self.base, self._since = moment, time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> dt.datetime:
        return self.base + dt.timedelta(seconds=time.monotonic() - self._since)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def _reconciliation_rules() -> RuleSet:
    rules = load_rules(ROOT / "shared" / "alerts" / "alerts.sample.json")
    return replace(rules, rules=tuple(rule for rule in rules.rules if rule.kind == "reconciliation"))


def test_a_simulated_day_of_the_sample_personas_raises_no_reconciliation_alarm(
    make_cost_stack: Callable[..., CostStack], loop_thread: LoopThread
) -> None:
    stack = make_cost_stack()
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    clock = SimulatedClock(day)
    sink = AppInsightsTrackSink(
        f"{stack.monitor.url}/", stack.config.instrumentation_key, ca_cert=stack.monitor.ca_path
    )
    pair = loop_thread.run(start_gateway_pair(sink=sink, simulator_settings=FAST_SIMULATOR, clock=clock.wall))
    personas = json.loads((ROOT / "shared/traffic/personas.sample.json").read_text(encoding="utf-8"))["personas"]
    settings = TrafficSettings(
        gateway_url=pair.gateway.url,
        openai_api_version=pair.config.api_version,
        personas_file=ROOT / "shared/traffic/personas.sample.json",
        seed=None,
        requests_per_run=CALLS_PER_HOUR,
        concurrency=8,
        # Calls are paced over budget - upload reserve (2 s) - request timeout: 2 s a simulated hour.
        time_budget_seconds=10.0,
        request_timeout_seconds=6.0,
        max_retries=2,
        failure_warn_ratio=0.0,
        ingestion_endpoint=stack.monitor.url,
        ingestion_rule_id=stack.config.dcr_immutable_id,
        ingestion_stream="Custom-SyntheticTraffic_CL",
        subscription_keys={p["subscription_key_setting"]: pair.keys[p["subscription"]] for p in personas},
    )

    def ingestion(endpoint: str) -> LogsIngestionClient:
        return LogsIngestionClient(endpoint, ManagedIdentityCredential(), connection_verify=str(stack.monitor.ca_path))

    rules = _reconciliation_rules()
    [rule] = rules.rules
    findings = []
    calls = 0
    try:
        for hour in range(HOURS):
            clock.at(day + hour * H + dt.timedelta(minutes=5))
            traffic = run_traffic(settings, ingestion, clock=clock)
            assert traffic.calls_failed == traffic.calls_not_sent == 0, traffic.line()
            calls += traffic.calls_ok
            assert loop_thread.run(pair.exporter.flush_all()) >= 0
            # The costs timer and the alert path after the hour, past the ingestion delay and grace.
            now = day + (hour + 1) * H + dt.timedelta(minutes=20)
            run_costs(stack.settings, now=now, clients=stack.clients())
            data = read_alert_data(stack.query, stack.config.workspace_id, ranges_for(rules.rules, now, 60),
                                   with_traffic=True, now=now)  # fmt: skip
            findings += [f for f in evaluate(rules, data, Clock(now, 60)) if f.rule is rule]
    finally:
        loop_thread.run(pair.stop())

    assert calls == HOURS * CALLS_PER_HOUR
    firing = [f"{f.window_label} {f.scope_label}: {f.summary}" for f in findings if f.firing]
    assert firing == []
    # Not vacuous: every subscription was compared, plain calls and streams alike.
    assert {f.member for f in findings} == {p["subscription"] for p in personas}
    assert any("plain calls:" in f.summary for f in findings)
    assert any("streamed calls (APIM estimates):" in f.summary for f in findings)
