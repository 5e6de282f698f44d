"""`python -m tools.reprice`: repricing final windows on purpose (shared/costs/reprice.py), run through its
main() with the app's settings pointed at the Azure Monitor stand-in and Azurite (clients built from them as
in the app), reading the summaries back as readers do."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from shared.costs.run import run_costs
from tests.support.costs import CostStack, usage_rows, write_price_table
from tests.support.sections import REQUIRED
from tools.reprice import main

UTC = dt.UTC
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
NOVEMBER = dt.datetime(2026, 11, 1, tzinfo=UTC)
NOW = NOVEMBER + 40 * M  # the costs run made October's windows final at 00:20
REASON = "mystery-model priced from 2026-01-01 (ticket 42)"
OCTOBER_31 = ["--from", "2026-10-31", "--to", "2026-11-01", "--reason", REASON]

MakeStack = Callable[..., CostStack]


@pytest.fixture
def october(make_cost_stack: MakeStack, tmp_path: Path) -> CostStack:
    """31 October costed with price version A (mystery-model unpriced) by the run at 00:20 on 1 November;
    the price table has since become version B, which prices mystery-model at $1 per 1M input tokens."""
    prices = write_price_table(tmp_path / "prices.json", "A")
    stack = make_cost_stack(price_table_path=prices)
    stack.insert_metrics(usage_rows(NOVEMBER - 3 * H + 10 * M, 1000, 500)
                         + usage_rows(NOVEMBER - 2 * H + 10 * M, 1_000_000, 0, deployment="mystery-model")
                         + usage_rows(NOVEMBER + 5 * M, 2_000_000, 0, deployment="mystery-model"))  # fmt: skip
    run = run_costs(stack.settings, now=NOVEMBER + 20 * M, clients=stack.clients())
    assert run.final_through == NOVEMBER
    write_price_table(prices, "B", **{"mystery-model": {"input": 1.00, "output": 2.00}})
    return stack


def rows_by_window(stack: CostStack) -> dict[tuple[dt.datetime, str], dict[str, Any]]:
    return {(row["WindowStart"], row["Deployment"]): row for row in stack.latest(NOVEMBER - 24 * H, NOVEMBER + H)}


def stored_rows(stack: CostStack) -> int:
    count: int = stack.kql("TokenCostSummary_CL | count")[0]["Count"]
    return count


def reprice(stack: CostStack, argv: list[str], **kwargs: Any) -> tuple[int, list[str]]:
    printed: list[str] = []
    status = main(argv, environ=stack.app_settings(), now=NOW, out=printed.append, **kwargs)
    return status, printed


def test_reprice_writes_new_revisions_for_the_range_and_leaves_the_rest_alone(
    october: CostStack, caplog: pytest.LogCaptureFixture
) -> None:
    before = rows_by_window(october)
    caplog.set_level("INFO", logger="shared.costs.reprice")
    status, printed = reprice(october, OCTOBER_31)
    assert status == 0
    assert printed == [
        f"reprice 2026-10-31 to 2026-11-01 (UTC days, the last one excluded), reason {REASON!r}: 24 windows; "
        "rewrote 1 with prices A -> B, 1 unchanged, 22 without usage; cost difference +1.000000 USD "
        "(0.007500 -> 1.007500); 1 rows uploaded",
        "  2026-10-31 22:00 UTC: 1 rows, prices A -> B",
    ]
    assert [record.getMessage() for record in caplog.records if record.name == "shared.costs.reprice"] == [printed[0]]

    after = rows_by_window(october)
    repriced = after[(NOVEMBER - 2 * H, "mystery-model")]
    assert (repriced["Unpriced"], Decimal(str(repriced["TotalCost"])), repriced["PriceVersion"]) == (
        False, Decimal("1.00"), "B")  # fmt: skip
    assert repriced["IsFinal"] is True and repriced["PromptTokens"] == 1_000_000
    # Same content: the gpt-4o window keeps its revision; November's open window is outside the range.
    assert after[(NOVEMBER - 3 * H, "gpt-4o")] == before[(NOVEMBER - 3 * H, "gpt-4o")]
    assert after[(NOVEMBER, "mystery-model")] == before[(NOVEMBER, "mystery-model")]
    assert after[(NOVEMBER, "mystery-model")]["Unpriced"] is True
    progress = october.clients().progress.windows(NOVEMBER - 24 * H)
    window = progress[NOVEMBER - 2 * H]
    assert (window.price_version, window.reprice_reason, window.final) == ("B", REASON, True)
    assert window.unpriced_models == ()
    assert progress[NOVEMBER - 3 * H].reprice_reason is None

    # The next run finds October at the new prices: nothing to hold or restate there; November is restated.
    run = run_costs(october.settings, now=NOW, clients=october.clients())
    statuses = {o.window.start: o.status for o in run.windows}
    assert (statuses[NOVEMBER - 2 * H], statuses[NOVEMBER]) == ("unchanged", "uploaded")
    assert run.restated_windows == 1


def test_a_dry_run_prints_what_would_change_and_uploads_nothing(october: CostStack) -> None:
    rows, progress = stored_rows(october), october.clients().progress.windows(NOVEMBER - 24 * H)
    status, printed = reprice(october, [*OCTOBER_31, "--dry-run"])
    assert status == 0
    assert printed[0].startswith(f"reprice 2026-10-31 to 2026-11-01 (UTC days, the last one excluded), reason "
                                 f"{REASON!r} (dry run: nothing uploaded): 24 windows; would rewrite 1 with prices "
                                 "A -> B, 1 unchanged, 22 without usage; cost difference +1.000000 USD")  # fmt: skip
    assert printed[0].endswith("; 0 rows uploaded") and printed[1:] == ["  2026-10-31 22:00 UTC: 1 rows, prices A -> B"]
    assert stored_rows(october) == rows
    assert october.clients().progress.windows(NOVEMBER - 24 * H) == progress


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2026-10-31", "--to", "2026-10-31", "--reason", REASON],
         "the range's end 2026-10-31 is not after its start 2026-10-31"),
        (["--from", "2026-10-31", "--to", "2026-11-02", "--reason", REASON],
         "the range ends at 2026-11-02 00:00 UTC, but the windows from 2026-11-01 00:00 UTC on are not final yet "
         "(the open one is 2026-11-01 00:00 UTC)"),
        (["--from", "2026-10-31", "--to", "31.10.2026", "--reason", REASON], "'31.10.2026' is not a date YYYY-MM-DD"),
        (["--from", "2026-10-31", "--to", "2026-11-01", "--reason", "  "], "is empty: say why"),
        (["--from", "2026-10-31", "--to", "2026-11-01"], "the following arguments are required: --reason"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_the_problem(
    october: CostStack, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = stored_rows(october)
    status, printed = reprice(october, argv)
    assert (status, printed) == (2, [])
    assert message in capsys.readouterr().err
    assert stored_rows(october) == rows


def test_bad_settings_exit_2_naming_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(OCTOBER_31, environ={**REQUIRED, "COST_WINDOW_MINUTES": "7"}, now=NOW)
    assert status == 2
    assert "app setting COST_WINDOW_MINUTES='7' is invalid" in capsys.readouterr().err


class FailingQueries:
    def query_workspace(self, workspace_id: str, query: str, **kwargs: Any) -> Any:
        raise HttpResponseError("503 Service Unavailable")


def test_a_failed_service_exits_1_and_uploads_nothing(october: CostStack, capsys: pytest.CaptureFixture[str]) -> None:
    rows = stored_rows(october)
    status, printed = reprice(october, OCTOBER_31, clients=october.clients(query=FailingQueries()))
    assert (status, printed) == (1, [])
    assert "503 Service Unavailable" in capsys.readouterr().err
    assert stored_rows(october) == rows


def test_settings_can_come_from_a_local_settings_file(
    october: CostStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    values = october.app_settings()
    for name in values:  # restored (to not set) after the test, whatever the file sets
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    printed: list[str] = []
    assert main([*OCTOBER_31, "--dry-run", "--settings", str(settings_file)], now=NOW, out=printed.append) == 0
    assert "would rewrite 1 with prices A -> B" in printed[0]

    assert main([*OCTOBER_31, "--settings", str(tmp_path / "missing.json")], now=NOW) == 2
    assert "missing.json: settings file not found" in capsys.readouterr().err
