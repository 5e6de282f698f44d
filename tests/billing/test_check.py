"""The bill check (issue 13): our summaries per account and day against Cost Management, through the real SDKs.

Everything real but the clock: usage as APIM's metrics in the Azure Monitor stand-in, one costs run (pricing, upload),
ARM discovery and azure-mgmt-costmanagement's query.usage against the Cost Management stand-in (standins/
cost_management.py on the ARM stand-in), whose bill is the simulator's meters for the same calls x a billed price
list; the comparisons go to BillReconciliation_CL in the monitor stand-in and are read back; the `bill_gap` rule
with its defaults judges the report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shared.alerts.data import AlertData, ranges_for, traffic_frame, usage_frame
from shared.alerts.evaluate import Clock, evaluate
from shared.alerts.findings import Finding
from shared.alerts.rules import parse_rules
from shared.billing.outputs import PRICE, UNPRICED, BillReport
from shared.billing.run import BillClients, check_bill
from shared.billing.state import InMemoryLastCheck
from shared.config import BillSettings
from shared.costs.deployments import ArmDeploymentDiscovery
from shared.costs.run import run_costs
from standins.arm import ArmDeployment, RunningArm
from standins.cost_management import BilledPrice, BillingConfig
from standins.simulator.meters import TokenMeters
from tests.support.arm import MODEL_ACCOUNT, arm_client
from tests.support.costs import CostStack, usage_rows, write_price_table
from tests.support.sections import local_azure, settings_with

DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
CALLED_AT = DAY + timedelta(hours=10, minutes=5)
CHECK_AT = DAY + timedelta(days=1, hours=25)  # the day ended 25 hours ago: settled after 24
PRICES = {"input": 0.2, "cached_input": 0.02, "output": 1.2}
BILLED = {
    "gpt-5.6-luna": BilledPrice("5.6 luna", {kind: Decimal(str(price)) for kind, price in PRICES.items()}),
    "gpt-5.6-terra": BilledPrice(
        "5.6 terra", {"input": Decimal(2), "cached_input": Decimal("0.2"), "output": Decimal(12)}
    ),
}
# The test day costs cents: the rule's minimum gap in money is lowered to match.
RULES = (
    '{"recipient_groups": {"finops": ["finops@example.com"]}, '
    '"rules": [{"name": "bill", "kind": "bill_gap", "min_amount": 0.001}]}'
)
CALLS = {"gpt-5.6-luna": (40_000, 6_000), "gpt-5.6-terra": (20_000, 3_000)}  # prompt, completion tokens


@pytest.fixture
def world(
    make_cost_stack: Callable[..., CostStack], make_arm: Callable[..., RunningArm], tmp_path: Path
) -> Callable[..., tuple[CostStack, RunningArm, BillSettings, BillClients]]:
    """The day's calls metered by the gateway (summaries) and by the account (the bill), priced by a table with
    `priced` models; the bill at `price_factor` x the list prices."""

    def make(*, price_factor: str = "1", priced: tuple[str, ...] = ("gpt-5.6-luna", "gpt-5.6-terra")):
        prices = {model: PRICES if model == "gpt-5.6-luna" else {"input": 2.0, "cached_input": 0.2, "output": 12.0}
                  for model in priced}  # fmt: skip
        table = write_price_table(tmp_path / "prices.json", "bill-test", **prices)
        document = json.loads(table.read_text(encoding="utf-8"))
        for model in set(CALLS) - set(priced):
            document["models"].pop(model, None)  # no price at all: its usage is flagged unpriced
        table.write_text(json.dumps(document), encoding="utf-8")
        stack = make_cost_stack(price_table_path=table, recompute_windows=48, deployment_map_path=None)
        meters = TokenMeters(clock=lambda: CALLED_AT)
        rows = []
        for deployment, (prompt, completion) in CALLS.items():
            rows += usage_rows(CALLED_AT, prompt, completion, requests=10, deployment=deployment)
            meters.record(deployment, prompt, completion)
        stack.insert_metrics(rows)
        deployments = [ArmDeployment(name, name, "2026-07-09") for name in CALLS]
        arm = make_arm(deployments, meters=meters, clock=lambda: CHECK_AT,
                       billing=BillingConfig(BILLED, price_factor=Decimal(price_factor)))  # fmt: skip
        summary = run_costs(stack.settings, now=DAY + timedelta(days=1, minutes=30), clients=stack.clients(
            discovery=ArmDeploymentDiscovery([MODEL_ACCOUNT], lambda subscription: arm_client(arm))
        ))  # fmt: skip
        assert summary.rows_uploaded > 0
        access = local_azure(arm.ca_path)
        settings = replace(
            settings_with(COST_MODEL_ACCOUNTS=MODEL_ACCOUNT.resource_id).bill,
            resource_manager_endpoint=arm.url, workspace_id=stack.config.workspace_id,
            query_endpoint=stack.monitor.url, ingestion_endpoint=stack.monitor.url,
            ingestion_rule_id=stack.config.dcr_immutable_id, retry_delay_seconds=0.0, days=1, azure=access,
        )  # fmt: skip
        clients = BillClients(
            query=stack.query, ingestion=stack.clients().ingestion,
            cost=lambda: access.cost_management_client(arm.url),
            discovery=ArmDeploymentDiscovery([MODEL_ACCOUNT], lambda subscription: arm_client(arm)),
            state=InMemoryLastCheck(),
        )  # fmt: skip
        return stack, arm, settings, clients

    return make


def findings(report: BillReport) -> list[Finding]:
    data = AlertData(ranges_for([], CHECK_AT, 60), usage_frame([]), traffic_frame([]))
    rules = parse_rules(RULES, source="rules.json")
    return evaluate(rules, data, Clock(CHECK_AT, 60), (), None, report)


def stored(stack: CostStack) -> list[dict[str, object]]:
    return stack.kql("BillReconciliation_CL | project Day, MeterGroup, Status, Revision, LikelyCause, GapPercent")


def test_a_bill_15_percent_above_ours_is_named_a_price_difference(world: Callable[..., tuple]) -> None:
    stack, _arm, settings, clients = world(price_factor="1.15")

    report = check_bill(settings, now=CHECK_AT, clients=clients)

    assert report.queried and not report.pending and report.days == [DAY]
    [day] = report.comparisons
    assert (day.status, day.cause) == ("compared", PRICE)
    assert day.gap_percent is not None and abs(day.gap_percent - Decimal(15)) < Decimal("0.01")
    assert "billed" in day.detail and "+15.0%" in day.detail
    [finding] = findings(report)
    assert finding.firing and finding.level == "warning" and "discount/price differs" in finding.summary
    rows = stored(stack)
    assert {row["MeterGroup"] for row in rows} == {"all", "input", "output"}
    assert {row["Status"] for row in rows} == {"compared"}


def test_a_gap_from_unpriced_tokens_is_named_as_such(world: Callable[..., tuple]) -> None:
    _stack, _arm, settings, clients = world(priced=("gpt-5.6-luna",))  # terra has no price in our table

    report = check_bill(settings, now=CHECK_AT, clients=clients)

    [day] = report.comparisons
    assert day.cause == UNPRICED and day.unpriced_tokens == sum(CALLS["gpt-5.6-terra"])
    assert "gpt-5.6-terra" in day.detail
    [finding] = findings(report)
    assert finding.firing and finding.level == "critical" and "unpriced tokens" in finding.summary


def test_a_matching_bill_does_not_alert(world: Callable[..., tuple]) -> None:
    _stack, _arm, settings, clients = world()
    report = check_bill(settings, now=CHECK_AT, clients=clients)
    [day] = report.comparisons
    assert day.gap_cost == 0 and day.cause == ""
    assert not any(f.firing for f in findings(report))


def test_a_throttled_query_waits_its_qpu_retry_after_then_compares(world: Callable[..., tuple]) -> None:
    _stack, arm, settings, clients = world(price_factor="1.15")
    arm.service.fail_cost_queries(429, retry_after_seconds=2)
    slept: list[float] = []

    report = check_bill(settings, now=CHECK_AT, clients=clients, sleep=slept.append)

    assert slept == [2.0] and (report.requests, report.retries) == (2, 1)
    assert [item.status for item in report.comparisons] == ["compared"]


def test_cost_management_down_leaves_the_day_pending_logged_and_written_never_alerted(
    world: Callable[..., tuple], caplog: pytest.LogCaptureFixture
) -> None:
    stack, arm, settings, clients = world(price_factor="1.15")
    arm.service.fail_cost_queries(503, times=settings.attempts)
    caplog.set_level(logging.INFO, logger="shared.billing.run")

    report = check_bill(settings, now=CHECK_AT, clients=clients, sleep=lambda _: None)

    assert arm.service.cost_requests == settings.attempts
    assert report.pending and [item.status for item in report.comparisons] == ["pending"]
    [line] = [record for record in caplog.records if record.name == "shared.billing.run"]
    assert line.levelname == "WARNING" and "PENDING" in line.getMessage() and "HTTP 503" in line.getMessage()
    assert [(row["MeterGroup"], row["Status"]) for row in stored(stack)] == [("all", "pending")]
    [finding] = findings(report)
    assert finding.pending and not finding.firing
    assert clients.state.last_check() is None  # retried by the next costs run

    # The next run reads the bill: the day is compared, as a new revision over the pending row.
    retried = check_bill(settings, now=CHECK_AT + timedelta(minutes=15), clients=clients)
    assert [item.status for item in retried.comparisons] == ["compared"] and retried.revisions_written == 1


def test_late_billing_rows_restate_the_day_once_and_the_alert_reads_the_latest(world: Callable[..., tuple]) -> None:
    stack, arm, settings, clients = world()
    first = check_bill(settings, now=CHECK_AT, clients=clients)
    assert first.revisions_written == 1 and not any(f.firing for f in findings(first))

    # Not due again within the interval: the latest comparison is handed on, Cost Management is not asked.
    skipped = check_bill(settings, now=CHECK_AT + timedelta(hours=1), clients=clients)
    assert not skipped.queried and arm.service.cost_requests == 1
    assert [item.gap_cost for item in skipped.comparisons] == [0]

    billing = arm.service.config.billing
    assert billing is not None
    late = {"account": MODEL_ACCOUNT.resource_id, "day": DAY, "cost": 0.05, "quantity": 0.04,
            "meter": "5.6 luna ShortCo Opt Std Gl 1M Tokens"}  # fmt: skip
    billing.late_rows.append(late)
    later = CHECK_AT + timedelta(hours=2)  # the same settled day; the last read a whole interval ago
    clients.state.save(later - timedelta(hours=settings.interval_hours))
    restated = check_bill(settings, now=later, clients=clients)
    [day] = restated.comparisons
    assert restated.revisions_written == 1 and day.restated and day.billed_cost > day.our_cost
    assert day.revision is not None and first.comparisons[0].revision is not None
    assert day.revision > first.comparisons[0].revision
    [finding] = findings(restated)
    assert finding.firing and finding.period_key == f"{DAY:%Y-%m-%d}"

    clients.state.save(later + timedelta(hours=1) - timedelta(hours=settings.interval_hours))
    again = check_bill(settings, now=later + timedelta(hours=1), clients=clients)
    assert again.queried and again.revisions_written == 0  # the same bill: no third revision
    revisions = {row["Revision"] for row in stored(stack) if row["MeterGroup"] == "all"}
    assert len(revisions) == 2
