"""MeterComparison_CL (issue 13: "the pending state is visible in the log line and the workbook"): each bypass
comparison, pending or compared, written through the Logs Ingestion API to the Azure Monitor stand-in and read
back through the shipped meter-comparison-latest.kql, as the workbook reads it.

The account's metrics come from the ARM stand-in (azure-mgmt-monitor, as the app reads them); the gateway's side
is a costs run's summary of the window."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.costs.outputs import WindowOutcome
from shared.logs.kql import load_query
from shared.meters.outputs import Allowance, BypassReport
from shared.meters.run import check_bypass
from shared.meters.table import NOTHING_METERED, LogsComparisons
from standins.arm import ArmDeployment, RunningArm
from standins.simulator.meters import TokenMeters
from tests.support.costs import CostStack
from tests.support.meters import gateway_summary, hour_window, meter_clients, meter_settings

WINDOW = hour_window(datetime(2026, 11, 30, 8, tzinfo=UTC))
NEXT = hour_window(WINDOW.end)
SAMPLE_RULE = Allowance(Decimal(1), Decimal(10))  # the sample bypass rule's tolerances
MakeArm = Callable[..., RunningArm]


class World:
    """One account (terra, luna), its meters holding what it processed in WINDOW, MeterComparison_CL in a fresh
    workspace of the monitor stand-in."""

    def __init__(self, stack: CostStack, arm: RunningArm) -> None:
        self.stack, self.arm = stack, arm
        self.settings = meter_settings(
            arm, workspace_id=stack.config.workspace_id, query_endpoint=stack.monitor.url,
            ingestion_endpoint=stack.monitor.url, ingestion_rule_id=stack.config.dcr_immutable_id,
        )  # fmt: skip
        self.table = LogsComparisons(self.settings, stack.query, stack.clients().ingestion)

    def check(self, windows: dict[str, tuple[int, int]], **options: Any) -> BypassReport:
        summary = gateway_summary(WINDOW, windows)
        summary.windows.append(WindowOutcome(NEXT, True, 0, "empty"))  # a final window nobody called in
        return check_bypass(
            self.settings, summary, allowance=SAMPLE_RULE, clients=meter_clients(self.arm, self.table),
            sleep=lambda _: None, **options,
        )  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        """The table as readers see it: the shipped KQL file, through LogsQueryClient."""
        query = load_query("meter-comparison-latest.kql", {"start_time": WINDOW.start, "end_time": NEXT.end})
        return self.stack.kql(query)


@pytest.fixture
def world(make_cost_stack: Callable[..., CostStack], make_arm: MakeArm) -> World:
    meters = TokenMeters(clock=lambda: WINDOW.start + timedelta(minutes=5))
    meters.record("gpt-5.6-terra", 10_000, 1_000)  # 11,000 tokens: the gateway saw 10,000 of them
    meters.record("gpt-5.6-luna", 2_000, 500)
    deployments = [ArmDeployment(name, name, "2026-07-09") for name in ("gpt-5.6-luna", "gpt-5.6-terra")]
    return World(make_cost_stack(), make_arm(deployments, meters=meters))


# The gateway's side of WINDOW: deployment -> (total tokens, estimated (streamed) tokens).
GATEWAY = {"gpt-5.6-terra": (10_000, 2_000), "gpt-5.6-luna": (2_500, 0), "gpt-5.6-sol": (700, 0)}


def test_a_pending_read_writes_pending_rows_the_kql_file_shows(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.arm.service.fail_metrics(503, times=10)
    caplog.set_level(logging.INFO, logger="shared.meters.run")

    report = world.check(GATEWAY)

    assert report.pending and report.rows_written == 4 and not report.table_problem
    rows = world.rows()
    assert [(row["WindowStart"], row["Deployment"], row["Status"]) for row in rows] == [
        (WINDOW.start, "gpt-5.6-luna", "pending"),
        (WINDOW.start, "gpt-5.6-sol", "pending"),
        (WINDOW.start, "gpt-5.6-terra", "pending"),
        (NEXT.start, "", "pending"),  # no pair seen in it, and nothing known of the accounts: not clean either
    ]
    for row in rows:
        assert "HTTP 503" in row["Reason"] and "after 3 attempts" in row["Reason"]
        assert row["AccountTokens"] is None and row["GapTokens"] is None  # unknown, never 0
    terra = rows[2]
    assert (terra["GatewayTokens"], terra["GatewayExactTokens"], terra["GatewayEstimatedTokens"]) == (10000, 8000, 2000)
    [line] = [record for record in caplog.records if record.name == "shared.meters.run"]
    assert line.levelname == "WARNING" and "PENDING" in line.getMessage()
    assert "4 comparison rows written" in line.getMessage()


def test_a_compared_read_writes_the_figures_and_supersedes_the_pending_rows(world: World) -> None:
    world.arm.service.fail_metrics(503, times=world.settings.attempts)  # every attempt of the first check
    world.check(GATEWAY)

    report = world.check(GATEWAY)

    assert not report.pending and report.rows_written == 4
    rows = {row["Deployment"]: row for row in world.rows()}
    assert {name: row["Status"] for name, row in rows.items()} == {
        "gpt-5.6-luna": "compared", "gpt-5.6-terra": "compared", "gpt-5.6-sol": "unpublished", "": "compared",
    }  # fmt: skip
    terra = rows["gpt-5.6-terra"]
    assert terra["Account"] == world.settings.model_accounts[0].resource_id
    assert (terra["AccountPromptTokens"], terra["AccountGeneratedTokens"]) == (10000, 1000)
    assert terra["AccountTokens"] == 11000
    assert (terra["GatewayTokens"], terra["GapTokens"]) == (10000, 1000)
    # The sample rule's allowance: 1% of the 8,000 exact tokens + 10% of the 2,000 estimated ones.
    assert terra["AllowanceTokens"] == pytest.approx(280.0) and terra["Reason"] == ""
    luna = rows["gpt-5.6-luna"]
    assert (luna["AccountTokens"], luna["GatewayTokens"], luna["GapTokens"]) == (2500, 2500, 0)
    sol = rows["gpt-5.6-sol"]  # the gateway metered it; the account published nothing of it
    assert sol["Account"] == "" and sol["AccountTokens"] == 0 and "published no tokens" in sol["Reason"]
    assert (rows[""]["WindowStart"], rows[""]["Reason"]) == (NEXT.start, NOTHING_METERED)
    assert len({row["Revision"] for row in rows.values()}) == 1


def test_the_same_comparison_is_not_written_again_and_a_later_pending_read_leaves_it_standing(world: World) -> None:
    first = world.check(GATEWAY)
    again = world.check(GATEWAY)
    world.arm.service.fail_metrics(429, retry_after_seconds=600)
    throttled = world.check(GATEWAY)

    assert (first.rows_written, again.rows_written, throttled.rows_written) == (4, 0, 0)
    assert throttled.pending and "asked to wait 600 s" in throttled.line()
    assert {row["Status"] for row in world.rows() if row["Deployment"] != "gpt-5.6-sol"} == {"compared"}
    stored = world.stack.kql("MeterComparison_CL | summarize count()")
    assert stored == [{"count_": 4}]


def test_a_changed_figure_is_a_new_revision_readers_take(world: World) -> None:
    world.check(GATEWAY)
    late = dict(GATEWAY, **{"gpt-5.6-terra": (11_000, 2_000)})  # late gateway metrics: the recomputed window

    report = world.check(late)

    assert report.rows_written == 1
    [terra] = [row for row in world.rows() if row["Deployment"] == "gpt-5.6-terra"]
    assert (terra["GatewayTokens"], terra["GapTokens"]) == (11000, 0)
    assert len(world.stack.kql('MeterComparison_CL | where Deployment == "gpt-5.6-terra"')) == 2


def test_a_table_that_cannot_be_written_is_named_in_the_line_and_the_comparisons_still_count(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    world.settings = replace(world.settings, ingestion_rule_id="dcr-" + "0" * 29 + "bad", upload_attempts=1)
    world.table = LogsComparisons(world.settings, world.stack.query, world.stack.clients().ingestion)
    caplog.set_level(logging.INFO, logger="shared.meters.run")

    report = world.check(GATEWAY)

    assert not report.pending and report.rows_written == 0
    assert "NOT WRITTEN" in report.line() and "rows not accepted" in report.table_problem
    terra = next(item for item in report.comparisons if item.deployment == "gpt-5.6-terra")
    assert (terra.status, terra.gap_tokens) == ("compared", 1000)  # the alert rules still judge it
    assert world.rows() == []
    [line] = [record for record in caplog.records if record.name == "shared.meters.run"]
    assert line.levelname == "WARNING"
