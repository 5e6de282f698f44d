"""The bypass check against the ARM stand-in's metrics API through azure-mgmt-monitor: what the account meters, how
it is read per window and deployment, and what happens when the metrics are throttled, down or refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openai
import pytest

from shared.alerts.findings import Finding
from shared.meters.outputs import BypassReport
from shared.meters.read import Budget, read_account_tokens, retry_after_seconds
from shared.meters.run import check_bypass
from standins.arm import ArmDeployment, RunningArm
from standins.simulator import load_simulator_config, start_simulator
from standins.simulator.meters import TokenMeters
from standins.simulator.server import meters_of
from tests import ROOT
from tests.support.arm import MODEL_ACCOUNT
from tests.support.loop import LoopThread
from tests.support.meters import bypass_findings, gateway_summary, hour_window, meter_clients, meter_settings

WINDOW = hour_window(datetime(2026, 11, 30, 8, tzinfo=UTC))
MakeArm = Callable[..., RunningArm]


def _meters(usage: dict[str, list[tuple[int, int]]], at: datetime | None = None) -> TokenMeters:
    """Meters holding these calls (deployment -> [(prompt, generated)]), all at `at` (default: in WINDOW)."""
    at = at or WINDOW.start + timedelta(minutes=5)
    meters = TokenMeters(clock=lambda: at)
    for deployment, calls in usage.items():
        for prompt, generated in calls:
            meters.record(deployment, prompt, generated)
    return meters


def _arm(make_arm: MakeArm, meters: TokenMeters, **options: object) -> RunningArm:
    names = ("gpt-5.6-luna", "gpt-5.6-terra")
    return make_arm([ArmDeployment(name, name, "2026-07-09") for name in names], meters=meters, **options)


def _findings(report: BypassReport) -> list[Finding]:
    return bypass_findings(report, WINDOW.end + timedelta(minutes=20))


def test_the_account_meters_what_the_simulator_served_and_the_sdk_reads_it_per_window_and_deployment(
    make_arm: MakeArm, loop_thread: LoopThread
) -> None:
    config = replace(load_simulator_config(ROOT / "standins" / "stack.config.json"), latency_ms=0,
                     time_to_first_token_ms=0, tokens_per_second=100_000, disable_local_auth=False)  # fmt: skip
    simulator = loop_thread.run(start_simulator(config, meters=TokenMeters(clock=lambda: WINDOW.start)))
    try:
        client = openai.AzureOpenAI(azure_endpoint=simulator.url, api_key="k", api_version="2025-04-01-preview")
        served: dict[str, list[int]] = {"gpt-5.6-luna": [0, 0], "gpt-5.6-terra": [0, 0]}
        for index in range(6):
            deployment = "gpt-5.6-luna" if index % 2 else "gpt-5.6-terra"
            messages = [{"role": "user", "content": f"summarise item {index} " * (20 + index)}]
            usage = client.chat.completions.create(model=deployment, messages=messages).usage  # type: ignore[arg-type]
            assert usage is not None
            served[deployment][0] += usage.prompt_tokens
            served[deployment][1] += usage.completion_tokens  # reasoning included, as billed
        meters = meters_of(simulator)
        arm = _arm(make_arm, meters)
        budget = Budget(10, 1, 0)
        found, reads, retries = read_account_tokens(
            meter_clients(arm).client_for(MODEL_ACCOUNT.subscription_id), MODEL_ACCOUNT, WINDOW.start,
            WINDOW.end + timedelta(hours=1), 60, budget,
        )  # fmt: skip
    finally:
        loop_thread.run(simulator.stop())
    assert (reads, retries) == (1, 0)
    assert {name: [t.prompt_tokens, t.generated_tokens] for (_, name), t in found.items()} == served
    assert {start for start, _ in found} == {WINDOW.start}


def test_a_throttled_read_waits_its_retry_after_then_compares(make_arm: MakeArm) -> None:
    arm = _arm(make_arm, _meters({"gpt-5.6-terra": [(5000, 500)] * 2}))
    arm.service.fail_metrics(429, retry_after_seconds=2)
    slept: list[float] = []
    summary = gateway_summary(WINDOW, {"gpt-5.6-terra": (5500, 0)})

    report = check_bypass(meter_settings(arm), summary, clients=meter_clients(arm), sleep=slept.append)

    assert slept == [2.0]
    assert (report.reads, report.retries, report.pending) == (2, 1, False)
    assert report.line().startswith(
        "bypass check: 1 final window 2026-11-30 08:00–2026-11-30 09:00 UTC, 1 window x deployment pairs, 1 compared; "
        "largest gap 5500 tokens (gpt-5.6-terra, 08:00 UTC: account 11000, gateway 5500); 2 metrics reads (1 retries)"
    )
    [terra] = report.comparisons
    assert (terra.status, terra.account_tokens, terra.gateway_tokens) == ("compared", 11000, 5500)
    assert terra.gap_tokens == 5500
    [finding] = _findings(report)
    assert finding.firing and finding.level == "critical" and finding.value == Decimal(5500)


def test_metrics_down_leave_the_comparison_pending_visible_in_the_log_line_and_never_alert(
    make_arm: MakeArm, caplog: pytest.LogCaptureFixture
) -> None:
    arm = _arm(make_arm, _meters({"gpt-5.6-terra": [(5000, 500)] * 2}))
    arm.service.fail_metrics(503, times=10)
    summary = gateway_summary(WINDOW, {"gpt-5.6-terra": (5500, 0), "gpt-5.6-luna": (800, 400)})
    caplog.set_level("INFO", logger="shared.meters.run")

    report = check_bypass(meter_settings(arm, attempts=3), summary, clients=meter_clients(arm), sleep=lambda _: None)

    assert arm.service.metrics_requests == 3
    assert report.pending and {c.status for c in report.comparisons} == {"pending"}
    [line] = [record for record in caplog.records if record.name == "shared.meters.run"]
    assert line.levelname == "WARNING"
    message = line.getMessage()
    assert "PENDING 2" in message and "HTTP 503" in message and "after 3 attempts" in message
    findings = _findings(report)
    assert sorted(f.member for f in findings) == ["gpt-5.6-luna", "gpt-5.6-terra"]
    assert all(f.pending and not f.firing for f in findings)


def test_a_retry_after_past_the_budget_is_not_waited_for(make_arm: MakeArm) -> None:
    arm = _arm(make_arm, _meters({"gpt-5.6-terra": [(5000, 500)]}))
    arm.service.fail_metrics(429, retry_after_seconds=120)
    slept: list[float] = []
    summary = gateway_summary(WINDOW, {"gpt-5.6-terra": (5500, 0)})

    settings = meter_settings(arm, budget_seconds=60)
    report = check_bypass(settings, summary, clients=meter_clients(arm), sleep=slept.append)

    assert slept == [] and report.pending
    assert "asked to wait 120 s" in report.line() and "HTTP 429" in report.line()


def test_a_refused_read_is_pending_and_names_the_role(make_arm: MakeArm) -> None:
    arm = _arm(make_arm, _meters({"gpt-5.6-terra": [(5000, 500)]}))
    arm.service.metrics_granted_client_ids = set()
    summary = gateway_summary(WINDOW, {"gpt-5.6-terra": (5500, 0)})

    report = check_bypass(meter_settings(arm), summary, clients=meter_clients(arm))

    assert report.pending and arm.service.metrics_requests == 0  # refused before the metrics are read
    assert "HTTP 403" in report.line() and "Microsoft.Insights/metrics/read" in report.line()


def test_minutes_the_account_has_not_published_yet_are_no_bypass(make_arm: MakeArm) -> None:
    # The stand-in serves a minute only once its latency has passed: the account reads lower, never higher.
    now = WINDOW.start + timedelta(minutes=30)
    arm = _arm(make_arm, _meters({"gpt-5.6-terra": [(5000, 500)]}, at=now - timedelta(seconds=30)),
               metrics_latency_seconds=120, clock=lambda: now)  # fmt: skip
    report = check_bypass(meter_settings(arm), gateway_summary(WINDOW, {"gpt-5.6-terra": (5500, 0)}),
                          clients=meter_clients(arm))  # fmt: skip
    [terra] = report.comparisons
    assert (terra.status, terra.account_tokens) == ("compared", 0)
    assert not any(f.firing for f in _findings(report))


def test_without_accounts_the_check_is_off_and_says_so() -> None:
    from tests.support.sections import settings_with

    report = check_bypass(settings_with().meters, gateway_summary(WINDOW, {"gpt-5.6-terra": (5500, 0)}))
    assert not report.enabled and report.comparisons == []
    assert report.line().startswith("bypass check: off")
    assert _findings(report) == []


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"Retry-After": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({"Retry-After": "soon"}, None), ({}, None),
     ({"Retry-After": "Mon, 30 Nov 2026 10:00:30 GMT"}, 30.0)],
)  # fmt: skip
def test_retry_after_is_read_in_each_of_its_forms(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers, now=datetime(2026, 11, 30, 10, tzinfo=UTC)) == seconds
