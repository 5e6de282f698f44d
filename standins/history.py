"""The bill demo's history: the previous UTC day as the local stack's services would have lived it.

The bill check compares a UTC day with Cost Management only once the day is over and settled, so a fresh `make run`
has nothing to compare. `BILL_DEMO=1 make run` (``python -m standins.stack --bill-demo``) makes the stack, never the
app, hand the stand-ins the previous UTC day's calls before the app starts, in each stand-in's own terms:
  - the gateway's token metrics of those calls: the inbound policy of policy.xml, compiled and run by the gateway
    stand-in's own code on each caller's request, gives the dimensions it emits; the gateway's own aggregator
    (standins/gateway/metrics.py) makes the per-minute rows and its own exporter (standins/gateway/sinks.py) sends
    them to the Azure Monitor stand-in's Application Insights track API: the AppMetrics rows the gateway would
    have sent yesterday;
  - the same calls in the simulator's token meters (standins/simulator/meters.py, its meters file), which the ARM
    stand-in serves as the account's platform metrics and the Cost Management stand-in bills.
The app then runs unchanged: its costs runs price yesterday's windows, the bypass check finds the account's meters
and the gateway's metrics equal, and the bill check compares yesterday with a bill priced by the stand-in's billed
price list. What the demo changes is in stack.config.json "bill_demo": the Cost Management stand-in's price factor
(1.15: billed 15% over our list prices, so a bill_gap alert names "discount/price differs") and lag (60 s instead
of 8 hours, so yesterday is billed in full), and two app settings written to .local/local.settings.json
(BILL_CHECK_SETTLE_HOURS 0.1: a day is compared 6 minutes after its end; COST_RECOMPUTE_WINDOWS 48: the first
costs run reaches back to yesterday's first window).

The calls: each "callers" entry calls its deployment every `every_minutes` minutes of the day through the gateway
(plain calls: exact metrics, no cached tokens), prompt and completion sizes drawn around their means by a generator
seeded with the day, so a day's history is the same on every start. A day is seeded once per data directory
(``bill-demo-days.json``), since the monitor's DuckDB file and the meters file persist there. The metrics are sent
with yesterday's timestamps, at most 48 hours old: the track API stand-in stores them as it stores every item;
how old an item Application Insights itself accepts was not checked (the app never sends such items: only this
local setup does).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from standins.gateway.config import GatewayConfig, SubscriptionConfig, load_gateway_config
from standins.gateway.context import GatewayIdentity, MetricEmission, RequestContext
from standins.gateway.executor import run_inbound
from standins.gateway.metrics import MetricAggregator
from standins.gateway.operations import API_ID, API_PATH, match_operation
from standins.gateway.policy import compile_policy
from standins.gateway.server import BASE_TOKEN_METRICS
from standins.gateway.sinks import AggregatedMetric, AppInsightsTrackSink
from standins.simulator.meters import MeterRecord, read_meters_file, write_meters_file

DAYS_FILE = "bill-demo-days.json"
EXPORT_BATCH = 2000  # envelopes per track request, as an exporter sends a backlog


class HistoryError(RuntimeError):
    """The history could not be handed to a stand-in (the stack stops with this message)."""


@dataclass(frozen=True)
class Caller:
    subscription: str  # an APIM subscription of stack.config.json
    user: str  # the x-user-id header
    deployment: str
    every_minutes: int
    prompt_tokens: int  # mean per call
    completion_tokens: int


@dataclass(frozen=True)
class BillDemo:
    """stack.config.json "bill_demo"."""

    callers: tuple[Caller, ...]
    seed: int
    price_factor: Decimal  # the Cost Management stand-in's, for the demo
    lag_seconds: float
    app_settings: Mapping[str, str]

    @classmethod
    def from_stack(cls, stack_config: Mapping[str, Any]) -> BillDemo:
        section = stack_config["bill_demo"]
        cost = section["cost_management"]
        callers = tuple(
            Caller(str(raw["subscription"]), str(raw["user"]), str(raw["deployment"]), int(raw["every_minutes"]),
                   int(raw["prompt_tokens"]), int(raw["completion_tokens"]))
            for raw in section["callers"]
        )  # fmt: skip
        return cls(
            callers=callers,
            seed=int(section.get("seed", 0)),
            price_factor=Decimal(str(cost["price_factor"])),
            lag_seconds=float(cost["lag_seconds"]),
            app_settings={str(name): str(value) for name, value in section["app_settings"].items()},
        )


@dataclass(frozen=True)
class Call:
    minute: datetime
    caller: Caller
    prompt_tokens: int
    completion_tokens: int


def previous_day(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def calls_of_day(demo: BillDemo, day: datetime) -> list[Call]:
    """The day's calls, the same for the same day and seed."""
    rng = random.Random(f"{demo.seed}:{day:%Y-%m-%d}")
    calls = []
    for caller in demo.callers:
        for offset in range(0, 24 * 60, caller.every_minutes):
            prompt = round(caller.prompt_tokens * rng.uniform(0.8, 1.2))
            completion = round(caller.completion_tokens * rng.uniform(0.8, 1.2))
            calls.append(Call(day + timedelta(minutes=offset), caller, prompt, completion))
    return sorted(calls, key=lambda call: (call.minute, call.caller.deployment, call.caller.user))


def meter_records(calls: Sequence[Call]) -> list[MeterRecord]:
    """The account's meters for the calls: per deployment and minute, as the simulator counts what it serves."""
    counts: dict[tuple[str, datetime], list[int]] = {}
    for call in calls:
        entry = counts.setdefault((call.caller.deployment, call.minute), [0, 0, 0])
        entry[0] += call.prompt_tokens
        entry[1] += call.completion_tokens
        entry[2] += 1
    return [MeterRecord(deployment, minute, *entry) for (deployment, minute), entry in sorted(counts.items())]


def emissions(gateway: GatewayConfig, caller: Caller) -> list[MetricEmission]:
    """What the gateway's inbound policy (policy.xml) emits for one of the caller's chat completions."""
    policy = compile_policy(
        gateway.policy_file.read_text(encoding="utf-8"), str(gateway.policy_file),
        placeholders=gateway.policy_placeholders,
    )  # fmt: skip
    matched = match_operation("POST", f"{API_PATH}/deployments/{caller.deployment}/chat/completions")
    assert matched is not None
    subscription = next((sub for sub in gateway.subscriptions if sub.name == caller.subscription), None)
    if subscription is None:
        raise HistoryError(f'bill_demo caller {caller.user}: no subscription "{caller.subscription}" in the stack')
    headers = CIMultiDict({"Content-Type": "application/json", "x-user-id": caller.user})
    body = {"messages": [{"role": "user", "content": "(history)"}], "stream": False}
    context = RequestContext(
        api_id=API_ID, operation_id=matched.operation.operation_id,
        subscription=SubscriptionConfig(subscription.name, "", subscription.product, subscription.user),
        ip_address="127.0.0.1", request_headers=CIMultiDictProxy(headers), matched_parameters=matched.parameters,
        gateway=GatewayIdentity(gateway.location, gateway.gateway_id), backend_id=None,
        outgoing_headers=CIMultiDict(headers), request_body=json.dumps(body).encode(),
    )  # fmt: skip
    run_inbound(policy, context, gateway.managed_identity_token)
    return context.emissions


def metric_rows(gateway: GatewayConfig, calls: Sequence[Call]) -> list[AggregatedMetric]:
    """The gateway's per-minute metric rows for the calls (its aggregator, every minute closed)."""
    now = [datetime.min.replace(tzinfo=UTC)]
    aggregator = MetricAggregator(clock=lambda: now[0])
    emitted = {caller: emissions(gateway, caller) for caller in {call.caller for call in calls}}
    for call in calls:
        now[0] = call.minute
        values = (call.prompt_tokens, call.completion_tokens, call.prompt_tokens + call.completion_tokens)
        for emission in emitted[call.caller]:
            for name, value in zip(BASE_TOKEN_METRICS, values, strict=True):
                aggregator.record(emission.namespace, name, value, emission.dimensions)
    return aggregator.drain(include_open_minute=True)


async def export(rows: Sequence[AggregatedMetric], sink: AppInsightsTrackSink) -> None:
    try:
        for first in range(0, len(rows), EXPORT_BATCH):
            rejected = await sink.export(rows[first : first + EXPORT_BATCH])
            if rejected:
                raise HistoryError(f"the Application Insights track API refused {len(rejected)} history rows")
    finally:
        await sink.close()


@dataclass
class SeededDays:
    """Which days a data directory's meters file and metrics store hold already (each part on its own)."""

    path: Path
    meters: list[str]
    metrics: list[str]

    @classmethod
    def read(cls, data_dir: Path) -> SeededDays:
        path = data_dir / DAYS_FILE
        raw = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return cls(path, list(raw.get("meters", [])), list(raw.get("metrics", [])))

    def save(self) -> None:
        self.path.write_text(json.dumps({"meters": self.meters, "metrics": self.metrics}) + "\n", encoding="utf-8")


def seed_meters(demo: BillDemo, day: datetime, data_dir: Path, meters_file: Path) -> list[Call]:
    """Before the simulator starts: the day's calls into its meters file (once); the calls."""
    calls = calls_of_day(demo, day)
    seeded = SeededDays.read(data_dir)
    if f"{day:%Y-%m-%d}" not in seeded.meters:
        write_meters_file(meters_file, [*read_meters_file(meters_file), *meter_records(calls)])
        seeded.meters.append(f"{day:%Y-%m-%d}")
        seeded.save()
    return calls


def seed_metrics(
    calls: Sequence[Call], day: datetime, data_dir: Path, config_file: Path, *, monitor_url: str,
    instrumentation_key: str, ca_cert: Path,
) -> bool:  # fmt: skip
    """Once the monitor is up: the gateway's metrics of the day's calls through its track API, once; whether they
    were sent now (False: an earlier start sent them)."""
    seeded = SeededDays.read(data_dir)
    if f"{day:%Y-%m-%d}" in seeded.metrics:
        return False
    names = [str(sub["name"]) for sub in json.loads(config_file.read_text(encoding="utf-8"))["subscriptions"]]
    gateway = load_gateway_config(config_file, subscription_keys={name: f"history-{name}" for name in names})
    sink = AppInsightsTrackSink(monitor_url, instrumentation_key, ca_cert=ca_cert, role=gateway.gateway_id)
    asyncio.run(export(metric_rows(gateway, calls), sink))
    seeded.metrics.append(f"{day:%Y-%m-%d}")
    seeded.save()
    return True
