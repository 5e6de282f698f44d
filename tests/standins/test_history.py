"""The bill demo's history (standins/history.py): yesterday's calls as the gateway and the account would have
recorded them, the same every time, seeded once per data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openai import AsyncAzureOpenAI

from standins.gateway.config import load_gateway_config
from standins.gateway.pair import STACK_CONFIG, start_gateway_pair
from standins.gateway.sinks import InMemorySink
from standins.history import (
    BillDemo,
    Caller,
    SeededDays,
    calls_of_day,
    emissions,
    meter_records,
    metric_rows,
    previous_day,
    seed_meters,
)
from standins.simulator.meters import read_meters_file

FAST_SIMULATOR = {"latency_ms": 0.0, "time_to_first_token_ms": 0.0, "tokens_per_second": 50_000.0}
DAY = datetime(2026, 11, 29, tzinfo=UTC)
DEMO = BillDemo.from_stack(json.loads(STACK_CONFIG.read_text(encoding="utf-8")))


async def test_the_history_carries_the_dimensions_a_call_through_the_gateway_emits() -> None:
    sink = InMemorySink()
    pair = await start_gateway_pair(sink=sink, simulator_settings=FAST_SIMULATOR)
    try:
        client = AsyncAzureOpenAI(azure_endpoint=pair.inference_url, api_key=pair.keys["team-batch"],
                                  api_version=pair.config.api_version, max_retries=0)  # fmt: skip
        await client.chat.completions.create(
            model="gpt-5.6-terra", messages=[{"role": "user", "content": "index this"}],
            extra_headers={"x-user-id": "doc-indexer"},
        )  # fmt: skip
        await pair.exporter.flush_all()
        caller = Caller("team-batch", "doc-indexer", "gpt-5.6-terra", 2, 5000, 300)
        seeded = emissions(pair.config, caller)
    finally:
        await pair.stop()
    live = {(row.namespace, tuple(sorted(row.properties.items()))) for row in sink.rows}
    assert {(item.namespace, tuple(sorted(item.dimensions.items()))) for item in seeded} == live
    assert {row.name for row in sink.rows} == {"Prompt Tokens", "Completion Tokens", "Total Tokens"}


def test_the_meters_and_the_metrics_hold_the_same_calls_the_same_every_time(tmp_path: Path) -> None:
    calls = calls_of_day(DEMO, DAY)
    assert calls == calls_of_day(DEMO, DAY) and calls != calls_of_day(DEMO, DAY + timedelta(days=1))
    assert {call.minute.date() for call in calls} == {DAY.date()}
    assert len(calls) == sum(24 * 60 // caller.every_minutes for caller in DEMO.callers)
    names = [sub["name"] for sub in json.loads(STACK_CONFIG.read_text(encoding="utf-8"))["subscriptions"]]
    gateway = load_gateway_config(STACK_CONFIG, subscription_keys={name: f"k-{name}" for name in names})
    rows = metric_rows(gateway, calls)
    for name, field in (("Prompt Tokens", "prompt_tokens"), ("Completion Tokens", "generated_tokens")):
        metered: dict[tuple[str, datetime], float] = {}
        for row in rows:
            if row.name == name:
                key = (row.properties["Deployment"], row.minute)
                metered[key] = metered.get(key, 0) + row.total
        assert metered == {(r.deployment, r.minute): getattr(r, field) for r in meter_records(calls)}
    assert {row.properties["Streamed"] for row in rows} == {"False"}  # plain calls: exact metrics


def test_a_day_is_seeded_into_the_meters_file_once(tmp_path: Path) -> None:
    meters_file = tmp_path / "meters.json"
    seed_meters(DEMO, DAY, tmp_path, meters_file)
    once = read_meters_file(meters_file)
    seed_meters(DEMO, DAY, tmp_path, meters_file)  # the next start of the same data directory
    assert read_meters_file(meters_file) == once and len(once) == len(meter_records(calls_of_day(DEMO, DAY)))
    assert SeededDays.read(tmp_path).meters == ["2026-11-29"] and SeededDays.read(tmp_path).metrics == []
    assert previous_day(datetime(2026, 12, 1, 0, 3, tzinfo=UTC)) == datetime(2026, 11, 30, tzinfo=UTC)
