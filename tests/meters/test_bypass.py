"""The issue's acceptance: 5% of one deployment's calls bypassing the gateway alerts within one window, 0% does not.

Everything real but the clock: synthetic calls with the openai SDK through the gateway stand-in (policy.xml) to the
simulator, the gateway's token metrics into the Azure Monitor stand-in (Application Insights track API), one costs
run (LogsQueryClient, pricing, upload), the bypass check reading the account's meters with azure-mgmt-monitor
from the ARM stand-in, and the `bypass` rule with its defaults. The calls are stamped inside a window that ended
more than the ingestion delay ago, so that window is final in the costs run that follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest

from shared.costs.run import run_costs
from shared.meters.run import check_bypass
from standins.arm import ArmDeployment, RunningArm
from standins.gateway.config import BypassConfig
from standins.gateway.pair import GatewayPair, start_gateway_pair
from standins.gateway.sinks import AppInsightsTrackSink
from standins.simulator.meters import TokenMeters
from tests.support.costs import CostStack
from tests.support.loop import LoopThread
from tests.support.meters import bypass_findings, meter_clients, meter_settings

NOW = datetime.now(UTC)
WINDOW_START = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
CALLED_AT = WINDOW_START + timedelta(minutes=10)
DEPLOYMENTS = ("gpt-5.6-luna", "gpt-5.6-sol", "gpt-5.6-terra")
WORDS = "the quarterly report lists revenue costs margins and a forecast for each region and product line".split()  # noqa: SIM905


def _prompt(index: int, words: int) -> str:
    return " ".join(WORDS[(index + n) % len(WORDS)] for n in range(words)) + f" (request {index})"


@pytest.fixture
def make_pair(loop_thread: LoopThread) -> Iterator[Callable[..., GatewayPair]]:
    started: list[GatewayPair] = []

    def make(stack: CostStack, bypass_share: float) -> GatewayPair:
        sink = AppInsightsTrackSink(
            stack.monitor.url, stack.config.instrumentation_key, ca_cert=stack.monitor.ca_path
        )
        bypass = BypassConfig("gpt-5.6-terra", bypass_share) if bypass_share else None
        pair = loop_thread.run(
            start_gateway_pair(
                sink=sink,
                simulator_settings={"latency_ms": 0, "time_to_first_token_ms": 0, "tokens_per_second": 100_000},
                gateway_settings={"bypass": bypass},
                clock=lambda: CALLED_AT,
                meters=TokenMeters(clock=lambda: CALLED_AT),
            )
        )
        started.append(pair)
        return pair

    yield make
    for pair in started:
        loop_thread.run(pair.stop())


def _send(pair: GatewayPair, deployment: str, calls: int, *, stream_every: int = 0) -> None:
    """`calls` chat completions like the sample personas' (reasoning effort minimal); every `stream_every`-th
    one streamed."""
    client = openai.AzureOpenAI(
        azure_endpoint=pair.inference_url,
        api_key=pair.keys["team-support"],
        api_version=pair.config.api_version,
        max_retries=0,
    )
    for index in range(calls):
        options: dict[str, Any] = {
            "model": deployment,
            "messages": [{"role": "user", "content": _prompt(index, 600)}],
            "max_completion_tokens": 120,
            "reasoning_effort": "minimal",
        }
        if stream_every and index % stream_every == 0:
            for _ in client.chat.completions.create(**options, stream=True, stream_options={"include_usage": True}):
                pass
        else:
            client.chat.completions.create(**options)


@pytest.mark.parametrize(("share", "alerted"), [(0.05, ["gpt-5.6-terra"]), (0.0, [])])
def test_a_bypass_of_five_percent_of_one_deployments_calls_alerts_within_one_window(
    make_cost_stack: Callable[..., CostStack],
    make_pair: Callable[..., GatewayPair],
    make_arm: Callable[..., RunningArm],
    loop_thread: LoopThread,
    share: float,
    alerted: list[str],
) -> None:
    stack = make_cost_stack()
    pair = make_pair(stack, share)
    _send(pair, "gpt-5.6-terra", 40)  # plain calls: APIM meters them from the response's usage
    _send(pair, "gpt-5.6-luna", 20, stream_every=2)  # half streamed: APIM estimates those
    _send(pair, "gpt-5.6-sol", 10, stream_every=1)
    loop_thread.run(pair.exporter.flush_all())
    summary = run_costs(stack.settings, now=NOW, clients=stack.clients())
    arm = make_arm([ArmDeployment(name, name, "2026-07-09") for name in DEPLOYMENTS], meters=pair.meters)

    report = check_bypass(meter_settings(arm), summary, clients=meter_clients(arm))

    window = [c for c in report.comparisons if c.window.start == WINDOW_START]
    assert sorted(c.deployment for c in window) == list(DEPLOYMENTS)
    assert {c.status for c in report.comparisons} == {"compared"}
    terra = next(c for c in window if c.deployment == "gpt-5.6-terra")
    bypassed = pair.meters.records()  # what the account processed: every call, bypassed or not
    assert terra.account_tokens == sum(
        r.prompt_tokens + r.generated_tokens for r in bypassed if r.deployment == "gpt-5.6-terra"
    )
    assert (terra.gap_tokens > 0) == (share > 0)
    findings = bypass_findings(report, NOW)
    assert sorted(f.member for f in findings if f.firing) == alerted
    assert not any(f.pending for f in findings)
    label = f"{WINDOW_START:%Y-%m-%d %H:%M}–{WINDOW_START + timedelta(hours=1):%H:%M} UTC"
    for finding in findings:
        if finding.firing:
            assert finding.window_label == label and "not seen by the gateway" in finding.summary
