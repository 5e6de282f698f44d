"""The FOCUS export (issue 15): the columns against the FOCUS 1.2 specification, and each day's file against the
cost summaries, through the real monitor stand-in, KQL and costs run; Blob storage in memory (test_store.py has
Azurite)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.costs.deployments import Deployment
from shared.costs.run import run_costs
from shared.focus import columns as focus
from shared.focus.export import FocusReport, blob_name, export_days, export_focus
from shared.focus.store import InMemoryDayFiles
from tests import ROOT
from tests.support.arm import MODEL_ACCOUNT
from tests.support.costs import CostStack, usage_rows, write_price_table
from tests.support.sections import settings_with

SPEC = json.loads((ROOT / "tests" / "focus" / "fixtures" / "focus-1.2-columns.json").read_text(encoding="utf-8"))
SPEC_COLUMNS = {column["id"]: column for column in SPEC["columns"]}
# specification/attributes/numeric_format.md (no exponent written here) and datetime_format.md.
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
LUNA = Deployment("gpt-5.6-luna", "gpt-5.6-luna", MODEL_ACCOUNT.resource_id, "2026-07-09", "GlobalStandard")


def test_the_export_has_every_mandatory_focus_column_with_the_specifications_type() -> None:
    mandatory = {name for name, column in SPEC_COLUMNS.items() if column["feature_level"] == "Mandatory"}
    assert len(mandatory) == 21  # FOCUS 1.2's mandatory set, as the fixture's source lists it
    ours = {column.name: column for column in focus.COLUMNS}
    assert sorted(mandatory - set(ours)) == []
    for name, column in ours.items():
        if name.startswith("x_"):
            continue
        assert name in SPEC_COLUMNS, f"{name} is neither a FOCUS 1.2 column nor prefixed x_"
        assert column.type == SPEC_COLUMNS[name]["data_type"], name
        if not SPEC_COLUMNS[name]["allows_nulls"]:
            assert not column.nullable, f"{name}: FOCUS allows no null"
    assert SPEC["version"] == focus.FOCUS_VERSION


@pytest.mark.parametrize(
    ("final_through", "days", "expected"),
    [
        (None, 3, []),
        (DAY + timedelta(days=1), 1, [DAY]),
        (DAY + timedelta(days=1, hours=23), 2, [DAY - timedelta(days=1), DAY]),
        (DAY + timedelta(hours=23), 1, [DAY - timedelta(days=1)]),  # DAY's last window not final: not DAY
    ],
)
def test_only_days_whose_every_window_is_final_are_exported(
    final_through: datetime | None, days: int, expected: list[datetime]
) -> None:
    assert export_days(final_through, days) == expected


def _focus_settings(stack: CostStack, **values: Any) -> Any:
    return replace(
        settings_with(FOCUS_EXPORT_CONTAINER="focus-exports", COST_STATE_CONNECTION_STRING="UseDevelopmentStorage=true")
        .focus,
        workspace_id=stack.config.workspace_id, query_endpoint=stack.monitor.url, days=1, **values,
    )  # fmt: skip


def _read(files: InMemoryDayFiles, day: datetime) -> tuple[list[str], list[dict[str, str]]]:
    content, _ = files.blobs[blob_name(day)]
    reader = csv.reader(io.StringIO(content.decode("utf-8"), newline=""))
    header, *rows = list(reader)
    return header, [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture
def costed_day(make_cost_stack: Callable[..., CostStack], tmp_path: Path) -> Callable[..., tuple[CostStack, Any]]:
    """A day of calls of two users on two deployments (one unpriced, some streamed), costed by one costs run made
    after the day's last window is final."""
    table = write_price_table(tmp_path / "prices.json", "focus-test",
                              **{"gpt-5.6-luna": {"input": 0.2, "cached_input": 0.02, "output": 1.2}})  # fmt: skip
    stack = make_cost_stack(price_table_path=table, recompute_windows=48, deployment_map_path=None)
    rows = []
    for hour, user, prompt, completion, cached, streamed in (
        (1, "alice", 12_345, 6_789, 1_000, "False"), (9, "bob", 7_777, 3_333, 0, "True"),
        (23, "alice", 1_001, 999, 0, "False"),
    ):  # fmt: skip
        rows += usage_rows(DAY + timedelta(hours=hour, minutes=7), prompt, completion, cached, requests=3,
                           deployment="gpt-5.6-luna", user=user, streamed=streamed)  # fmt: skip
    rows += usage_rows(DAY + timedelta(hours=5), 500, 500, requests=1, deployment="mystery-model", user="carol")
    stack.insert_metrics(rows)

    def run(at: datetime) -> Any:
        return run_costs(stack.settings, now=at, clients=stack.clients())

    return stack, run


def test_a_days_file_holds_its_final_windows_cost_to_the_micro_unit_in_focus_types(
    costed_day: tuple[CostStack, Any],
) -> None:
    stack, run = costed_day
    summary = run(DAY + timedelta(days=1, minutes=30))
    files = InMemoryDayFiles()

    report = export_focus(_focus_settings(stack), summary.final_through, query=stack.query, files=files,
                          deployments=[LUNA])  # fmt: skip

    assert report.problem == "" and report.written == [DAY] and report.provisional == []
    header, rows = _read(files, DAY)
    assert tuple(header) == focus.COLUMN_NAMES
    for row in rows:
        for name, value in row.items():
            spec = SPEC_COLUMNS.get(name)
            if spec is not None and not spec["allows_nulls"]:
                assert value != "", f"{name} is null"
            kind = spec["data_type"] if spec else {c.name: c.type for c in focus.COLUMNS}[name]
            if value and kind == "Decimal":
                assert DECIMAL.match(value), (name, value)
            if value and kind == "Date/Time" and spec:
                assert DATETIME.match(value), (name, value)
        for name, allowed in SPEC["allowed_values"].items():
            assert row[name] in allowed, (name, row[name])
    # The day's cost: every final window's TotalCost, as the costs run summed it, to the micro-unit.
    assert sum(Decimal(row["BilledCost"]) for row in rows) == summary.cost_by_currency["USD"]
    assert all(row["BilledCost"] == row["EffectiveCost"] == row["ListCost"] == row["ContractedCost"] for row in rows)
    latest = stack.kql(
        "TokenCostSummary_CL | summarize arg_max(Revision, *) by WindowStart, Deployment, UserId "
        "| summarize Micros = sum(tolong(round(TotalCost * 1000000))), Tokens = sum(TotalTokens)"
    )
    assert sum(Decimal(row["BilledCost"]) for row in rows) * 1_000_000 == latest[0]["Micros"]
    tokens = 12_345 + 6_789 + 7_777 + 3_333 + 1_001 + 999 + 500 + 500
    assert sum(int(row["x_TotalTokens"]) for row in rows) == latest[0]["Tokens"] == tokens
    by_meter = {(row["x_Deployment"], row["x_UserId"], row["x_TokenKind"]): row for row in rows}
    assert sorted(kind for (_, user, kind) in by_meter if user == "alice") == ["cached_input", "input", "output"]
    alice = by_meter[("gpt-5.6-luna", "alice", "cached_input")]
    assert alice["ResourceId"] == MODEL_ACCOUNT.resource_id.lower()
    assert alice["SubAccountId"] == alice["BillingAccountId"] == f"/subscriptions/{MODEL_ACCOUNT.subscription_id}"
    assert (alice["x_ModelVersion"], alice["x_Windows"], alice["x_CachedPromptTokens"]) == ("2026-07-09", "2", "1000")
    assert (alice["ConsumedQuantity"], alice["PricingQuantity"], alice["PricingUnit"]) == ("1000", "0.001000",
                                                                                           "1000000 Tokens")
    assert (alice["ChargePeriodStart"], alice["ChargePeriodEnd"]) == (f"{DAY:%Y-%m-%d}T00:00:00Z",
                                                                      f"{DAY + timedelta(days=1):%Y-%m-%d}T00:00:00Z")
    # A caller's day figures sit on its first meter's row, so the columns sum.
    alice_rows = [row for (_, user, _), row in by_meter.items() if user == "alice"]
    assert sorted(row["x_Requests"] for row in alice_rows) == ["0", "0", "6"]
    assert sum(int(row["x_PromptTokens"]) for row in alice_rows) == 12_345 + 1_001
    bob = [row for (_, user, _), row in by_meter.items() if user == "bob"]
    assert all(row["x_EstimatedShare"] == "1.000000" for row in bob)  # all streamed
    assert sum(Decimal(row["x_EstimatedCost"]) for row in bob) == sum(Decimal(row["BilledCost"]) for row in bob)
    carol = by_meter[("mystery-model", "carol", "input")]  # unpriced, in no account: no cost, no resource, no guess
    assert (carol["BilledCost"], carol["x_Unpriced"], carol["x_UnpricedTokens"]) == ("0.000000", "true", "500")
    assert carol["ResourceId"] == "" and carol["x_EstimatedShare"] == "" and carol["ListUnitPrice"] == ""


def test_each_token_kind_is_a_row_whose_unit_price_times_quantity_is_its_cost(
    costed_day: tuple[CostStack, Any],
) -> None:
    """FOCUS 1.2 (specification/columns/listunitprice.md): ListUnitPrice is not null for a usage row, and
    ListUnitPrice x PricingQuantity equals ListCost; every Mandatory column has a value on every row."""
    stack, run = costed_day
    summary = run(DAY + timedelta(days=1, minutes=30))
    files = InMemoryDayFiles()

    export_focus(_focus_settings(stack), summary.final_through, query=stack.query, files=files, deployments=[LUNA])

    _, rows = _read(files, DAY)
    mandatory = [name for name, column in SPEC_COLUMNS.items() if column["feature_level"] == "Mandatory"]
    table_price = {"input": Decimal("0.2"), "cached_input": Decimal("0.02"), "output": Decimal("1.2")}  # per 1M
    priced = [row for row in rows if row["x_Unpriced"] == "false"]
    assert len(priced) == 5  # alice: input, cached input, output; bob: input, output (no cache); carol unpriced
    for row in rows:
        # ChargeClass is null for anything but a correction, BillingAccountName when no name is known (FOCUS allows
        # both); every other Mandatory column has a value.
        assert [name for name in mandatory if row[name] == ""] == ["BillingAccountName", "ChargeClass"], row
        assert row["ChargeCategory"] == "Usage"
    for row in priced:
        unit_price, quantity = Decimal(row["ListUnitPrice"]), Decimal(row["PricingQuantity"])
        assert row["ContractedUnitPrice"] == row["ListUnitPrice"]
        assert quantity == Decimal(row["ConsumedQuantity"]) / 1_000_000
        # The spec's product, to the cost's own precision (6 decimals: the summaries' micro-units).
        assert round(unit_price * quantity, 6) == Decimal(row["ListCost"]), row
        # The price table's price per 1M tokens, moved only by the costs run's rounding of each window to a
        # micro-unit (half a micro-unit per window at most).
        allowance = Decimal(int(row["x_Windows"])) * Decimal("0.5") / Decimal(row["ConsumedQuantity"])
        assert abs(unit_price - table_price[row["x_TokenKind"]]) <= allowance, row
    by_kind = {(row["x_UserId"], row["x_TokenKind"]): row for row in rows}
    assert by_kind[("alice", "cached_input")]["ListUnitPrice"] == "0.02"  # 1,000 tokens at 0.02: nothing rounded
    assert by_kind[("alice", "input")]["ListUnitPrice"] == "0.1999838004"  # 1,001 x 0.2 = 200.2 micro-units -> 200
    assert ("bob", "cached_input") not in by_kind  # no cached tokens, no cost: no row


def test_a_rerun_keeps_the_file_and_a_restated_day_is_rewritten_and_says_so(
    costed_day: tuple[CostStack, Any],
) -> None:
    stack, run = costed_day
    summary = run(DAY + timedelta(days=1, minutes=30))
    files = InMemoryDayFiles()
    settings = _focus_settings(stack)

    def export(through: datetime | None) -> FocusReport:
        return export_focus(settings, through, query=stack.query, files=files, deployments=[LUNA])

    export(summary.final_through)
    first, metadata = files.blobs[blob_name(DAY)]
    again = export(summary.final_through)
    assert (again.unchanged, again.written, again.restated, files.writes) == ([DAY], [], [], 1)
    assert files.blobs[blob_name(DAY)][0] == first and metadata["restated"] == "false"

    # Late metrics land in a final window; the next costs run recomputes it, which restates the day.
    stack.insert_metrics(usage_rows(DAY + timedelta(hours=9, minutes=30), 100_000, 0, deployment="gpt-5.6-luna",
                                    user="bob"))  # fmt: skip
    later = run(DAY + timedelta(days=1, minutes=45))
    restated = export(later.final_through)

    assert (restated.restated, restated.written, files.writes) == ([DAY], [], 2)
    content, metadata = files.blobs[blob_name(DAY)]
    assert content != first and metadata["restated"] == "true"
    _, rows = _read(files, DAY)
    assert sum(int(row["x_PromptTokens"]) for row in rows) == 12_345 + 7_777 + 1_001 + 500 + 100_000
    assert "restated" in restated.line() and f"{DAY:%Y-%m-%d}" in restated.line()


def test_no_container_means_no_export() -> None:
    report = export_focus(settings_with().focus, DAY + timedelta(days=1))
    assert not report.enabled and report.line() == "focus export: off (FOCUS_EXPORT_CONTAINER empty)"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FOCUS_EXPORT_CONTAINER": "Focus_Exports"}, "app setting FOCUS_EXPORT_CONTAINER='Focus_Exports' is invalid"),
        ({"FOCUS_EXPORT_CONTAINER": "ab"}, "3-63 lowercase letters"),
        ({"FOCUS_EXPORT_CONTAINER": "focus-exports", "COST_STATE_CONNECTION_STRING": "",
          "COST_STATE_TABLE_ENDPOINT": "https://st.table.core.windows.net"},
         "app setting FOCUS_EXPORT_BLOB_ENDPOINT is empty with FOCUS_EXPORT_CONTAINER set"),
        ({"FOCUS_EXPORT_BLOB_ENDPOINT": "ftp://st.blob.core.windows.net"}, "FOCUS_EXPORT_BLOB_ENDPOINT"),
        ({"FOCUS_EXPORT_DAYS": "0"}, "FOCUS_EXPORT_DAYS='0' is invalid"),
    ],
)
def test_a_bad_export_setting_fails_at_start_naming_it(environ: dict[str, str], message: str) -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_with(**environ)
