"""Price versions across runs: a run restates the windows a price change touches and says so, and never
reprices a closed month unless its usage changed (shared/costs/recompute.py), on the Azure Monitor stand-in
and Azurite through the real SDK clients, reading the summaries back as readers do."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.costs.progress import WindowProgress
from shared.costs.recompute import EMPTY_FINGERPRINT, WindowContent, decide
from shared.costs.run import run_costs
from shared.windows import PlannedWindow, Window
from tests.support.costs import CostStack, usage_rows, write_price_table

UTC = dt.UTC
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
DAY = dt.datetime(2026, 11, 27, tzinfo=UTC)
MONTH_START = dt.datetime(2026, 12, 1, tzinfo=UTC)
MYSTERY_PRICES = {"input": 1.00, "output": 2.00}  # per 1M tokens, added by price version "B"

MakeStack = Callable[..., CostStack]


def latest_by_hour(stack: CostStack, start: dt.datetime, end: dt.datetime) -> dict[tuple[int, str], dict[str, Any]]:
    return {(row["WindowStart"].hour, row["Deployment"]): row for row in stack.latest(start, end)}


def revisions(stack: CostStack, window_start: dt.datetime) -> int:
    rows = stack.kql(f"TokenCostSummary_CL | where WindowStart == datetime({window_start:%Y-%m-%dT%H:%M:%SZ}) "
                     "| summarize by Revision")  # fmt: skip
    return len(rows)


def run_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "shared.costs.run"]


def test_a_price_added_for_an_unpriced_model_restates_its_windows_and_says_so(
    make_cost_stack: MakeStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prices = write_price_table(tmp_path / "prices.json", "A")
    stack = make_cost_stack(price_table_path=prices)
    stack.insert_metrics(usage_rows(DAY + 8 * H + 10 * M, 1000, 500)
                         + usage_rows(DAY + 9 * H + 30 * M, 2_000_000, 1_000_000, deployment="mystery-model"))
    now = DAY + 10 * H + 20 * M
    first = run_costs(stack.settings, now=now, clients=stack.clients())
    assert first.unpriced_models == ("mystery-model",) and first.restated_windows == 0

    write_price_table(prices, "B", **{"mystery-model": MYSTERY_PRICES})
    caplog.set_level("INFO", logger="shared.costs.run")
    second = run_costs(stack.settings, now=now + 10 * M, clients=stack.clients())
    assert {o.window.start.hour: o.status for o in second.windows} == {
        7: "empty", 8: "unchanged", 9: "uploaded", 10: "empty"}  # only the window whose costs changed
    assert second.restated_windows == 1 and "1 windows restated" in second.line()
    assert run_lines(caplog) == [
        second.line(),
        "costs run restated 1 windows (2026-11-27 09:00 UTC): prices A -> B; newly priced: mystery-model",
    ]
    rows = latest_by_hour(stack, DAY, DAY + 24 * H)
    mystery = rows[(9, "mystery-model")]
    assert (mystery["Unpriced"], mystery["PriceVersion"]) == (False, "B")
    assert Decimal(str(mystery["TotalCost"])) == Decimal("4.00")  # 2M in at $1 + 1M out at $2
    assert rows[(8, "gpt-4o")]["PriceVersion"] == "A"  # same costs: not uploaded again
    recorded = stack.clients().progress.windows(DAY)[DAY + 9 * H]
    assert (recorded.price_version, recorded.unpriced_models, recorded.reprice_reason) == ("B", (), None)

    caplog.clear()
    third = run_costs(stack.settings, now=now + 20 * M, clients=stack.clients())
    assert third.restated_windows == 0 and run_lines(caplog) == [third.line()]  # said once


def test_a_deployment_priced_now_under_the_same_price_version_is_restated_too(
    make_cost_stack: MakeStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deployments = tmp_path / "deployments.json"
    deployments.write_text(json.dumps({"deployments": {}}), encoding="utf-8")
    stack = make_cost_stack(price_table_path=write_price_table(tmp_path / "prices.json", "A"),
                            deployment_map_path=deployments)  # fmt: skip
    stack.insert_metrics(usage_rows(DAY + 9 * H + 30 * M, 1_000_000, 0, deployment="team-chat"))
    now = DAY + 10 * H + 20 * M
    assert run_costs(stack.settings, now=now, clients=stack.clients()).unpriced_models == ("team-chat",)
    deployments.write_text(json.dumps({"deployments": {"team-chat": "gpt-4o"}}), encoding="utf-8")
    caplog.set_level("INFO", logger="shared.costs.run")
    second = run_costs(stack.settings, now=now + 10 * M, clients=stack.clients())
    assert second.restated_windows == 1 and second.unpriced_models == ()
    assert run_lines(caplog)[1] == (
        "costs run restated 1 windows (2026-11-27 09:00 UTC): prices A (same version); newly priced: team-chat"
    )
    row = latest_by_hour(stack, DAY, DAY + 24 * H)[(9, "team-chat")]
    assert (row["Model"], Decimal(str(row["TotalCost"])), row["PriceVersion"]) == ("gpt-4o", Decimal("2.50"), "A")


def closed_month_world(make_cost_stack: MakeStack, tmp_path: Path) -> tuple[CostStack, Path]:
    """Usage on the last evening of November and the first minutes of December, costed by a run at
    00:20 on 1 December with price version A (mystery-model unpriced): November is a closed month."""
    prices = write_price_table(tmp_path / "prices.json", "A")
    stack = make_cost_stack(price_table_path=prices)
    stack.insert_metrics(usage_rows(MONTH_START - 2 * H + 10 * M, 1_000_000, 0, deployment="mystery-model")
                         + usage_rows(MONTH_START - H + 10 * M, 1000, 500)
                         + usage_rows(MONTH_START + 5 * M, 1_000_000, 0, deployment="mystery-model"))
    first = run_costs(stack.settings, now=MONTH_START + 20 * M, clients=stack.clients())
    assert [(o.window.start.hour, o.final, o.status) for o in first.windows] == [
        (21, True, "empty"), (22, True, "uploaded"), (23, True, "uploaded"), (0, False, "uploaded")]
    write_price_table(prices, "B", **{"mystery-model": MYSTERY_PRICES})
    return stack, prices


def test_a_closed_month_window_whose_prices_alone_changed_is_not_uploaded_again(
    make_cost_stack: MakeStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stack, _ = closed_month_world(make_cost_stack, tmp_path)
    caplog.set_level("INFO", logger="shared.costs.run")
    second = run_costs(stack.settings, now=MONTH_START + 30 * M, clients=stack.clients())
    assert [(o.window.start.hour, o.status) for o in second.windows] == [
        (21, "empty"), (22, "held"), (23, "unchanged"), (0, "uploaded")]
    assert second.rows_uploaded == 1 and second.restated_windows == 1  # December's open window only
    november = latest_by_hour(stack, MONTH_START - 24 * H, MONTH_START)[(22, "mystery-model")]
    assert (november["Unpriced"], november["TotalCost"], november["PriceVersion"]) == (True, None, "A")
    assert revisions(stack, MONTH_START - 2 * H) == 1
    december = latest_by_hour(stack, MONTH_START, MONTH_START + 24 * H)[(0, "mystery-model")]
    assert (december["Unpriced"], Decimal(str(december["TotalCost"])), december["PriceVersion"]) == (
        False, Decimal("1.00"), "B")  # fmt: skip
    [summary_line, restated, held] = run_lines(caplog)
    assert summary_line == second.line()
    assert restated == "costs run restated 1 windows (2026-12-01 00:00 UTC): prices A -> B; newly priced: mystery-model"
    assert held == (
        "costs run held 1 windows of a closed month (2026-11-30 22:00 UTC) at the prices they were uploaded with "
        "(A): only their prices changed (now B), not their usage; a closed month is repriced only on purpose: "
        "python -m tools.reprice --from 2026-11-30 --to 2026-12-01 --reason '...'"
    )
    assert caplog.records[-1].levelname == "WARNING"
    # Held, it keeps what it was uploaded with in progress too: the next run holds it again.
    recorded = stack.clients().progress.windows(MONTH_START - 2 * H)[MONTH_START - 2 * H]
    assert (recorded.price_version, recorded.unpriced_models) == ("A", ("mystery-model",))


def test_a_closed_month_window_with_late_usage_is_uploaded_and_the_line_says_why(
    make_cost_stack: MakeStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stack, _ = closed_month_world(make_cost_stack, tmp_path)
    stack.insert_metrics(usage_rows(MONTH_START - 2 * H + 50 * M, 500_000, 0, deployment="mystery-model"))  # late
    caplog.set_level("INFO", logger="shared.costs.run")
    second = run_costs(stack.settings, now=MONTH_START + 30 * M, clients=stack.clients())
    assert [(o.window.start.hour, o.status) for o in second.windows] == [
        (21, "empty"), (22, "uploaded"), (23, "unchanged"), (0, "uploaded")]
    assert second.restated_windows == 2
    november = latest_by_hour(stack, MONTH_START - 24 * H, MONTH_START)[(22, "mystery-model")]
    assert november["PromptTokens"] == 1_500_000  # nothing lost
    assert (november["Unpriced"], Decimal(str(november["TotalCost"])), november["PriceVersion"]) == (
        False, Decimal("1.50"), "B")  # fmt: skip
    assert run_lines(caplog)[1] == (
        "costs run restated 2 windows (2026-11-30 22:00, 2026-12-01 00:00 UTC): prices A -> B; newly priced: "
        "mystery-model; 1 of them in a closed month (2026-11-30 22:00 UTC), restated with prices B because their "
        "usage changed (late metrics)"
    )


WINDOW = Window(MONTH_START - H, MONTH_START)
CONTENT = WindowContent("2:000000000000000b", "2:000000000000000a", 2, ())


def recorded(**changes: Any) -> WindowProgress:
    """The window's last upload: by default the content above, priced with version B, final."""
    upload = WindowProgress(WINDOW.start, True, MONTH_START, CONTENT.fingerprint, 2, "B", CONTENT.usage_fingerprint, ())
    return replace(upload, **changes)


def test_an_explicit_reprice_holds_a_window_that_lost_rows_and_uploads_one_that_gained() -> None:
    """Metrics past the workspace's retention would replace a window's costs with part of them."""
    planned = PlannedWindow(WINDOW, True)
    fewer = recorded(rows=3, fingerprint="3:0c", usage_fingerprint="3:0d")  # stored 3 rows, 2 now
    more = recorded(rows=1, fingerprint="1:0c", usage_fingerprint="1:0d")  # stored 1 row, 2 now (late metrics)
    assert decide(planned, fewer, CONTENT, "B", None, hold_fewer_rows=True) == "held"
    assert decide(planned, more, CONTENT, "B", None, hold_fewer_rows=True) == "upload"
    assert decide(planned, fewer, CONTENT, "B", None) == "upload"  # the run (late metrics are only ever more)


@pytest.mark.parametrize(
    ("previous", "final", "closed", "decision"),
    [
        (None, True, True, "upload"),  # never uploaded
        (recorded(), True, True, "unchanged"),
        (recorded(price_version="A"), True, True, "unchanged"),  # new table, same costs: nothing to reprice
        (recorded(price_version="A", fingerprint="2:0c"), True, True, "held"),
        (recorded(price_version="A", fingerprint="2:0c"), True, False, "upload"),  # the current month: restated
        (recorded(fingerprint="2:0c"), True, True, "held"),  # same version, other costs (a deployment priced now)
        (recorded(price_version="A", final=False), True, True, "upload"),  # final now, same content: not repriced
        (recorded(final=False), True, True, "upload"),  # final now, same prices: a new revision, no repricing
        (recorded(price_version="A", fingerprint="2:0c", usage_fingerprint="2:0d"), True, True, "upload"),  # late
        # Recorded before usage fingerprints were kept: the usage cannot be shown the same, so nothing is lost.
        (recorded(price_version=None, fingerprint="2:0c", usage_fingerprint=None), True, True, "upload"),
    ],
)
def test_decide(previous: WindowProgress | None, final: bool, closed: bool, decision: str) -> None:
    closed_before = MONTH_START if closed else WINDOW.start
    assert decide(PlannedWindow(WINDOW, final), previous, CONTENT, "B", closed_before) == decision
    empty = WindowContent(EMPTY_FINGERPRINT, EMPTY_FINGERPRINT, 0, ())
    assert decide(PlannedWindow(WINDOW, final), previous, empty, "B", closed_before) == "empty"
