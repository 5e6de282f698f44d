"""Provisioned (PTU) deployments: each window's PTU-hour cost shared by its callers to the micro-unit, a row for
the hours nobody called, unpriced ones flagged with the reason, and a whole costs run on the ARM and Azure Monitor
stand-ins (shared/costs/ptu.py, shared/costs/frame.py).

Expected figures are written out from the price table ($2 per PTU-hour for ProvisionedManaged, model "*",
shared/costs/prices/catalog.json) or computed here with Fractions, independently of the code.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shared.costs.deployments import Deployment, DeploymentMap, load_deployment_map
from shared.costs.frame import PricedUsage, price_frame, upload_records, usage_frame, window_fingerprints
from shared.costs.pricing import load_price_table
from shared.costs.ptu import billed_minutes
from shared.costs.query import USAGE_COLUMNS
from shared.errors import InputFileError
from shared.windows import Window
from tests import ROOT

UTC = dt.UTC
START = dt.datetime(2026, 11, 27, 9, tzinfo=UTC)
H = dt.timedelta(hours=1)
CATALOG = load_price_table(ROOT / "shared" / "costs" / "prices" / "catalog.json")
HOUR = Window(START, START + H)
REGIONAL = Deployment("ptu-prod", "gpt-4o", "acct", "2024-11-20", "ProvisionedManaged", 3)
LOG_TABLES = json.loads((ROOT / "shared" / "logs" / "schemas" / "log_tables.json").read_text(encoding="utf-8"))


def usage(*rows: tuple[Any, ...]) -> pd.DataFrame:
    """Usage rows (window start, deployment, subscription, user, total tokens): prompt tokens only."""
    full = [(start, deployment, sub, user, "api", 1, tokens, 0, 0, tokens, 0, 0, 0, 0, 0)
            for start, deployment, sub, user, tokens in rows]  # fmt: skip
    return usage_frame({name: [row[index] for row in full] for index, name in enumerate(USAGE_COLUMNS)})


def priced(
    frame: pd.DataFrame, *deployments: Deployment, windows: Iterable[Window] = (HOUR,), prices: Any = CATALOG
) -> PricedUsage:
    return price_frame(frame, prices, DeploymentMap().with_discovered(deployments), windows=list(windows))


def micros_of(result: PricedUsage, deployment: str = "ptu-prod") -> dict[tuple[Any, ...], int]:
    rows = result.frame[result.frame["Deployment"].str.casefold() == deployment]
    return {(row.WindowStart.to_pydatetime(), row.SubscriptionId, row.UserId): int(row.TotalCostMicros)
            for row in rows.itertuples()}  # fmt: skip


def test_a_window_cost_is_shared_by_token_share_summing_exactly_to_the_micro_unit() -> None:
    result = priced(usage((START, "ptu-prod", "team-a", "alice", 100), (START, "PTU-Prod", "team-b", "bob", 200),
                          (START, "ptu-prod", "team-a", "carol", 400), (START, "gpt-4o", "team-a", "alice", 1000)),
                    REGIONAL)  # fmt: skip
    # 3 PTUs x $2 x 60/60 = $6.000000, shared 100 : 200 : 400 (the gateway's "PTU-Prod" is the same deployment):
    # exact 0.857142857.., 1.714285714.., 3.428571428..; floors 857142 + 1714285 + 3428571 = 5999998 micros, the
    # 2 left go to the largest remainders (.857 alice, .714 bob).
    assert micros_of(result) == {(START, "team-a", "alice"): 857_143, (START, "team-b", "bob"): 1_714_286,
                                 (START, "team-a", "carol"): 3_428_571}  # fmt: skip
    assert sum(micros_of(result).values()) == 6_000_000
    shares = result.frame[result.frame["CostBasis"] == "ptu_allocated"]
    assert len(shares) == 3 and set(shares["DeploymentType"]) == {"ProvisionedManaged"}
    # Only the total: the window's cost is exact, only its split rests on tokens (estimated or not).
    for name in ("PromptCostMicros", "CachedPromptCostMicros", "CompletionCostMicros", "EstimatedCostMicros"):
        assert shares[name].tolist() == [0, 0, 0], name
    assert not shares["Unpriced"].any() and set(shares["Currency"]) == {"USD"}
    [tokens] = result.frame[result.frame["Deployment"] == "gpt-4o"].itertuples()
    assert (tokens.CostBasis, tokens.DeploymentType, tokens.TotalCostMicros) == ("usage", "", 2500)  # $2.50 / 1M
    assert result.unpriced_models == ()


def test_equal_remainders_go_to_the_first_caller_by_key_whatever_the_row_order() -> None:
    callers = [(START, "ptu-prod", sub, "u", 7) for sub in ("team-c", "team-a", "team-b")]
    one_ptu = Deployment("ptu-prod", "gpt-4o", "acct", None, "ProvisionedManaged", 1)
    # 1 PTU x $2 for 20 minutes ($0.666666..): created at 09:40 -> 666_667 micros (rounded once, half to even),
    # 222_222.33 each: the one micro-unit left goes to team-a, first by SubscriptionId.
    created = replace(one_ptu, created_at=START + dt.timedelta(minutes=40))
    expected = {(START, "team-a", "u"): 222_223, (START, "team-b", "u"): 222_222, (START, "team-c", "u"): 222_222}
    assert micros_of(priced(usage(*callers), created)) == expected
    assert micros_of(priced(usage(*reversed(callers)), created)) == expected
    first, again = priced(usage(*callers), created), priced(usage(*reversed(callers)), created)
    assert window_fingerprints(first.frame) == window_fingerprints(again.frame)  # a rerun uploads nothing new


def test_shares_are_the_largest_remainder_split_for_any_tokens_and_costs() -> None:
    """Against a plain Fraction implementation, many windows and deployments at once, costs and token counts
    big enough to need Python integers (cost x tokens > 2^63)."""
    rng = random.Random(12)
    deployments = [Deployment(f"ptu-{n}", "gpt-4o", "acct", None, "ProvisionedManaged", capacity)
                   for n, capacity in enumerate((1, 7, 250_000))]  # fmt: skip
    windows = [Window(START + k * H, START + (k + 1) * H) for k in range(4)]
    rows = [(window.start, deployment.name, f"sub-{rng.randrange(5)}", f"user-{n}",
             rng.choice((0, 1, 10**13, rng.randrange(10**6))))
            for window in windows for deployment in deployments for n in range(rng.randrange(1, 9))]  # fmt: skip
    result = priced(usage(*rows), *deployments, windows=windows)
    got = result.frame.set_index(["WindowStart", "Deployment", "UserId"])["TotalCostMicros"]
    for window in windows:
        for deployment in deployments:
            mine = [row for row in rows if (row[0], row[1]) == (window.start, deployment.name)]
            cost = int(Fraction(2) * (deployment.capacity or 0) * 1_000_000)
            tokens = [row[4] for row in mine]
            weights = tokens if sum(tokens) else [1] * len(tokens)
            exact = [Fraction(cost * weight, sum(weights)) for weight in weights]
            floors = [int(share) for share in exact]
            order = sorted(range(len(mine)), key=lambda i: (-(exact[i] - floors[i]), mine[i][2], mine[i][3]))
            for rank, index in enumerate(order):
                floors[index] += rank < cost - sum(int(share) for share in exact)
            shares = [int(got[(pd.Timestamp(window.start), deployment.name, row[3])]) for row in mine]
            assert shares == floors and sum(shares) == cost


def test_a_window_nobody_called_gets_one_unused_row_with_the_whole_cost() -> None:
    windows = [HOUR, Window(START + H, START + 2 * H)]
    result = priced(usage((START, "ptu-prod", "team-a", "alice", 10)), REGIONAL, windows=windows)
    [unused] = result.frame[result.frame["CostBasis"] == "ptu_unused"].to_dict("records")
    assert unused["WindowStart"] == START + H and (unused["Deployment"], unused["Model"]) == ("ptu-prod", "gpt-4o")
    assert (unused["SubscriptionId"], unused["UserId"], unused["ApiId"]) == ("", "", "")
    assert unused["TotalCostMicros"] == 6_000_000 and unused["Currency"] == "USD" and not unused["Unpriced"]
    assert unused["DeploymentType"] == "ProvisionedManaged"
    assert all(unused[name] == 0 for name in ("Requests", "PromptTokens", "TotalTokens", "PromptCostMicros"))
    [record] = [json.loads(text) for text in upload_records(result.frame, window=windows[1], final=True,
                                                             revision=START + 3 * H, price_version="v")]  # fmt: skip
    assert (record["CostBasis"], record["TotalCost"], record["SubscriptionId"], record["RevisionRows"]) == (
        "ptu_unused", 6.0, "", 1)
    # Every column the summary table declares, the two that say how a row was priced among them.
    declared = [column["name"] for column in LOG_TABLES["custom"]["TokenCostSummary_CL"]["columns"]]
    assert sorted(record) == sorted(declared) and {"DeploymentType", "CostBasis"} <= set(record)


def test_no_usage_at_all_still_bills_every_planned_window() -> None:
    windows = [Window(START + k * H, START + (k + 1) * H) for k in range(3)]
    result = priced(usage(), REGIONAL, windows=windows)
    assert micros_of(result) == {(window.start, "", ""): 6_000_000 for window in windows}
    assert set(window_fingerprints(result.frame)) == {window.start for window in windows}


@pytest.mark.parametrize(("window_minutes", "micros"), [(15, 1_500_000), (60, 6_000_000)])
def test_the_window_cost_is_its_minutes_of_ptu_hours(window_minutes: int, micros: int) -> None:
    window = Window(START, START + dt.timedelta(minutes=window_minutes))
    # 3 PTUs x $2 per PTU-hour x 15/60 = $1.50; x 60/60 = $6.00, split 1 : 2.
    result = priced(usage((START, "ptu-prod", "a", "u", 1), (START, "ptu-prod", "b", "u", 2)), REGIONAL,
                    windows=[window])  # fmt: skip
    assert sum(micros_of(result).values()) == micros
    assert micros_of(result)[(START, "a", "u")] == micros // 3


def test_a_deployment_created_inside_a_window_bills_from_then_and_nothing_before() -> None:
    created = replace(REGIONAL, created_at=START + H + dt.timedelta(minutes=40, seconds=30))
    windows = [Window(START + k * H, START + (k + 1) * H) for k in range(3)]
    result = priced(usage(), created, windows=windows)
    # 10:40:30 -> 20 started minutes: 3 x $2 x 20/60 = $2.00; 11:00 the whole hour; 09:00 nothing (no row).
    assert micros_of(result) == {(START + H, "", ""): 2_000_000, (START + 2 * H, "", ""): 6_000_000}
    assert [billed_minutes(window, created.created_at) for window in windows] == [0, 20, 60]
    before = priced(usage((START, "ptu-prod", "a", "u", 5)), created, windows=windows)
    assert before.unpriced_models == ("gpt-4o (version 2024-11-20, ProvisionedManaged): called before its creation "
                                      "(2026-11-27T10:40:30Z)",)  # fmt: skip
    assert before.frame.loc[before.frame["UserId"] == "u", "Unpriced"].tolist() == [True]


def test_no_ptu_hour_price_or_no_capacity_is_unpriced_and_flagged_never_zero() -> None:
    global_ptu = Deployment("ptu-global", "gpt-4o", "acct", "2024-11-20", "GlobalProvisionedManaged", 5)
    no_capacity = Deployment("ptu-empty", "gpt-4o", "acct", None, "ProvisionedManaged", None)
    idle = Deployment("ptu-idle", "gpt-4o", "acct", None, "DataZoneProvisionedManaged", 2)
    result = priced(usage((START, "ptu-global", "a", "u", 50), (START, "ptu-empty", "a", "u", 60)),
                    global_ptu, no_capacity, idle)  # fmt: skip
    # The shipped catalog has no Global or Data Zone provisioned price; an idle one is named too: it bills anyway.
    assert result.unpriced_models == (
        "gpt-4o (DataZoneProvisionedManaged): no PTU-hour price",
        "gpt-4o (ProvisionedManaged): no capacity (PTUs) known",
        "gpt-4o (version 2024-11-20, GlobalProvisionedManaged): no PTU-hour price",
    )
    frame = result.frame
    assert len(frame) == 2 and frame["Unpriced"].all() and frame["TotalCostMicros"].isna().all()
    assert frame["CostBasis"].tolist() == ["", ""]
    assert frame["DeploymentType"].tolist() == ["GlobalProvisionedManaged", "ProvisionedManaged"]


def test_your_reservations_hourly_rate_in_a_table_of_your_own_prices_the_type(tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"version": "mine-1", "currency": "USD", "unit": "per_1m_tokens", "models": {
        "*": [{"effective_from": "2026-01-01", "deployment_type": "GlobalProvisionedManaged",
               "prices": {"ptu_hour": 1.2345678}}]}}))  # fmt: skip
    global_ptu = Deployment("ptu-global", "gpt-4o", "acct", "2024-11-20", "GlobalProvisionedManaged", 7)
    result = priced(usage(), global_ptu, windows=[Window(START, START + dt.timedelta(minutes=15))],
                    prices=load_price_table(table))  # fmt: skip
    # 7 x 1.2345678 x 15/60 = 2.16049365, rounded once (half to even) to 2.160494.
    assert micros_of(result, "ptu-global") == {(START, "", ""): 2_160_494}


def test_a_row_outside_the_planned_windows_is_a_caller_mistake() -> None:
    with pytest.raises(ValueError, match="not a planned window"):
        priced(usage((START + H, "ptu-prod", "a", "u", 1)), REGIONAL)


def test_a_deployments_json_entry_gives_the_capacity(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"deployments": {"ptu-file": {"model": "gpt-4o", "sku": "ProvisionedManaged",
                                                             "capacity": 50}}}))  # fmt: skip
    entry = load_deployment_map(path).deployment("ptu-file")
    assert entry is not None and (entry.sku, entry.capacity, entry.created_at) == ("ProvisionedManaged", 50, None)
    path.write_text('{"deployments": {\n"ptu-file": {"model": "gpt-4o", "capacity": 0}}}')
    expected = r':2: deployments\["ptu-file"\]\.capacity: expected a whole number of units >= 1 \(PTUs\), got 0'
    with pytest.raises(InputFileError, match=expected):
        load_deployment_map(path)


MakeStack = Callable[..., Any]


def test_a_costs_run_on_the_stand_ins_allocates_reports_and_alerts_on_ptu_hours(
    make_cost_stack: MakeStack, make_arm: Callable[..., Any]
) -> None:
    """Through ARM (capacity, createdAt), Azure Monitor and Azurite with the real SDKs: summaries as readers see
    them, the run's totals and line, the totals query, the workbook panel, and the alert rules."""
    from shared.alerts.data import ranges_for, read_alert_data
    from shared.alerts.evaluate import NO_CONSUMER_LABEL, Clock, evaluate
    from shared.alerts.rules import parse_rules
    from shared.costs.deployments import ArmDeploymentDiscovery
    from shared.costs.run import run_costs
    from shared.logs.kql import load_query
    from standins.arm import ArmDeployment
    from tests.support.arm import MODEL_ACCOUNT, arm_client
    from tests.support.costs import usage_rows
    from tools.build_workbook import PANELS

    now, day = dt.datetime(2026, 11, 27, 10, 20, tzinfo=UTC), dt.datetime(2026, 11, 27, tzinfo=UTC)
    arm = make_arm([ArmDeployment("ptu-prod", "gpt-4o", "2024-11-20", "ProvisionedManaged", 3,
                                  created_at="2026-11-27T08:40:30Z")])  # fmt: skip
    stack = make_cost_stack()
    at = day + 9 * H + dt.timedelta(minutes=5)
    stack.insert_metrics(usage_rows(at, 100, 0, deployment="ptu-prod", subscription="team-a", user="alice")
                         + usage_rows(at, 150, 50, deployment="ptu-prod", subscription="team-b", user="bob")
                         + usage_rows(at, 400, 0, deployment="ptu-prod", subscription="team-a", user="carol")
                         + usage_rows(at, 1_000_000, 0, deployment="gpt-4o", subscription="team-a", user="alice"))
    discovery = ArmDeploymentDiscovery([MODEL_ACCOUNT], lambda subscription: arm_client(arm))
    clients = stack.clients(discovery=discovery)
    summary = run_costs(stack.settings, now=now, clients=clients)

    rows = [row for row in stack.latest(day, day + 24 * H) if row["Deployment"] == "ptu-prod"]
    got = {(row["WindowStart"].hour, row["SubscriptionId"], row["UserId"]): (Decimal(str(row["TotalCost"])),
           row["CostBasis"]) for row in rows}  # fmt: skip
    assert got == {
        # 07:00 ended before the deployment was created (08:40:30): no row. 08:00: 20 started minutes, nobody.
        (8, "", ""): (Decimal("2"), "ptu_unused"),
        # 09:00: $6 by 100 : 200 : 400 tokens (as in the frame test above).
        (9, "team-a", "alice"): (Decimal("0.857143"), "ptu_allocated"),
        (9, "team-b", "bob"): (Decimal("1.714286"), "ptu_allocated"),
        (9, "team-a", "carol"): (Decimal("3.428571"), "ptu_allocated"),
        # 10:00, the open window: the whole hour, provisional.
        (10, "", ""): (Decimal("6"), "ptu_unused"),
    }
    assert {row["DeploymentType"] for row in rows} == {"ProvisionedManaged"}
    assert all(row["PromptCost"] == row["EstimatedCost"] == 0 and row["Unpriced"] is False for row in rows)
    [per_token] = [row for row in stack.latest(day, day + 24 * H) if row["Deployment"] == "gpt-4o"]
    assert (per_token["CostBasis"], Decimal(str(per_token["TotalCost"]))) == ("usage", Decimal("2.5"))

    assert summary.cost_by_currency == {"USD": Decimal("16.5")}  # 2.50 usage + 6 + 2 + 6 PTU-hours
    assert summary.provisioned_cost_by_currency == {"USD": Decimal(14)}
    assert summary.unused_provisioned_cost_by_currency == {"USD": Decimal(8)}
    assert "cost 16.50 USD (0.00 USD, 0.0% on estimated tokens, 14.00 USD on PTU-hours, 8.00 USD of it unused)" in (
        summary.line())
    assert "0 prompt tokens without a metered cache discount" in summary.line()  # PTU shares have no discount to miss
    spend = {s.subscription_id: s.day_cost for s in summary.spend}
    assert spend == {"team-a": Decimal("2.5") + Decimal("4.285714"), "team-b": Decimal("1.714286"), "": Decimal(8)}

    totals = stack.kql(load_query("cost-totals-by-subscription-day.kql", {"start_time": day, "end_time": day + 24 * H}))
    assert {row["SubscriptionId"]: row["CostMicros"] for row in totals} == {
        "team-a": 6_785_714, "team-b": 1_714_286, "": 8_000_000}
    panel = next(panel for panel in PANELS if panel.name == "cost-basis")
    shown = stack.kql(load_query(panel.source, {"start_time": day, "end_time": day + 24 * H}) + panel.tail)
    assert {(row["CostBasis"], row["Deployment"]): row["TotalCost"] for row in shown} == {
        ("ptu_unused", "ptu-prod"): 8.0, ("ptu_allocated", "ptu-prod"): 6.0, ("usage", "gpt-4o"): 2.5}

    again = run_costs(stack.settings, now=now, clients=clients)
    assert again.rows_uploaded == 0  # same allocation, same fingerprints: nothing uploaded twice
    assert [(o.window.start.hour, o.status) for o in again.windows] == [
        (7, "empty"), (8, "unchanged"), (9, "unchanged"), (10, "unchanged")]

    rules = parse_rules(json.dumps({"currency": "USD", "recipient_groups": {"p": ["p@example.com"]}, "rules": [
        {"name": "all", "kind": "budget", "scope": "all", "period": "day", "amount": 10},
        {"name": "per-sub", "kind": "budget", "scope": "each:subscription", "period": "day", "amount": 10},
        {"name": "per-user", "kind": "threshold", "metric": "cost", "window": "day", "scope": "each:user",
         "warning": 1}]}), source="t.json")  # fmt: skip
    data = read_alert_data(stack.query, stack.config.workspace_id, ranges_for(rules.rules, now, 60),
                           with_traffic=False, now=now)  # fmt: skip
    for fresh in (summary.spend, []):  # the run's own totals, and the summaries alone
        findings = {f.key: f for f in evaluate(rules, data, Clock(now, 60), fresh)}
        assert sorted(findings) == ["all|", "per-sub|team-a", "per-sub|team-b", "per-user|alice", "per-user|bob",
                                    "per-user|carol"]  # no member "" for the hours nobody called  # fmt: skip
        assert findings["all|"].value == Decimal("16.5") and findings["all|"].level == "100%"
        contributors = {c.name: c.value for c in findings["all|"].contributors if c.dimension == "subscription"}
        assert contributors[NO_CONSUMER_LABEL] == Decimal(8)


def test_the_run_line_names_an_unpriced_provisioned_deployment_nobody_called() -> None:
    from shared.costs.outputs import CostRunSummary

    summary = CostRunSummary(started_at=START, revision=START, price_version="v",
                             unpriced_models=("gpt-4o (DataZoneProvisionedManaged): no PTU-hour price",))  # fmt: skip
    assert "; 0 unpriced tokens (gpt-4o (DataZoneProvisionedManaged): no PTU-hour price); " in summary.line()


def test_a_provisioned_deployment_priced_at_last_counts_as_newly_priced(tmp_path: Path) -> None:
    """Its unpriced name carries the reason ("key: no PTU-hour price"): the window's content still names it,
    so the restatement line can say it became priced."""
    from shared.costs.query import KEY_COLUMNS, TOKEN_COLUMNS
    from shared.costs.recompute import _contents

    global_ptu = Deployment("ptu-global", "gpt-4o", "acct", "2024-11-20", "GlobalProvisionedManaged", 5)
    deployments = DeploymentMap().with_discovered([global_ptu])
    result = priced(usage((START, "ptu-global", "a", "u", 50)), global_ptu)
    usage_only = window_fingerprints(result.frame, KEY_COLUMNS + TOKEN_COLUMNS)
    contents = _contents(result, deployments, window_fingerprints(result.frame), usage_only)
    flagged = "gpt-4o (version 2024-11-20, GlobalProvisionedManaged): no PTU-hour price"
    assert contents[START].unpriced_models == (flagged,)
