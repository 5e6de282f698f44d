"""The price catalog file: rows in, the same rows out, in one order; bad rows named by file, line and field."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from shared.costs.catalog import (
    CatalogPrice,
    ImportResult,
    carry_history,
    catalog_text,
    diff_catalogs,
    read_catalog,
)
from shared.errors import InputFileError


def _row(**changes: object) -> CatalogPrice:
    values: dict[str, object] = {
        "model": "gpt-5.6-luna",
        "version": None,
        "deployment_type": "GlobalStandard",
        "tier": "",
        "token_kind": "input",
        "price": Decimal("0.2"),
        "unit": "per_1m_tokens",
        "currency": "USD",
        "effective_from": None,
        "region": None,
        "source": "test",
    }
    values.update(changes)
    return CatalogPrice(**values)  # type: ignore[arg-type]


ROWS = [
    _row(deployment_type="DataZoneStandard", price=Decimal("0.22"), region="us"),
    _row(token_kind="output", price=Decimal("1.2")),
    _row(token_kind="cache_write", price=Decimal("0.25"), effective_from=date(2026, 7, 31)),
    _row(token_kind="cache_write", price=Decimal("1.25"), effective_from=date(2026, 7, 9)),
    _row(),
    _row(tier="priority", price=Decimal("0.4")),
    _row(model="*", deployment_type="GlobalProvisionedManaged", token_kind="ptu_hour", unit="per_ptu_hour",
         price=Decimal("1"), region="eastus"),
]  # fmt: skip


def _write(tmp_path: Path, prices: list[str]) -> Path:
    path = tmp_path / "catalog.json"
    lines = ["{", '  "format": "apim-token-costs price catalog v1",', '  "prices": [']
    lines += [f"    {row}{',' if index < len(prices) - 1 else ''}" for index, row in enumerate(prices)]
    path.write_text("\n".join([*lines, "  ]", "}", ""]), encoding="utf-8")
    return path


def test_a_written_catalog_reads_back_as_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(catalog_text(ROWS, note="test"), encoding="utf-8")
    assert read_catalog(path) == sorted(ROWS, key=CatalogPrice.sort_key)


def test_the_file_is_sorted_one_row_a_line_whatever_the_order_given() -> None:
    text = catalog_text(ROWS)
    assert catalog_text(list(reversed(ROWS))) == text
    rows = [json.loads(line.rstrip(",")) for line in text.splitlines() if line.startswith("    {")]
    # by model ("*", the PTU-hour price of every model, first), version, deployment type, tier, kind, date
    assert [(row["deployment_type"], row["tier"], row["token_kind"], row["effective_from"]) for row in rows] == [
        ("GlobalProvisionedManaged", "", "ptu_hour", None),
        ("GlobalStandard", "", "input", None),
        ("GlobalStandard", "", "cache_write", "2026-07-09"),
        ("GlobalStandard", "", "cache_write", "2026-07-31"),
        ("GlobalStandard", "", "output", None),
        ("GlobalStandard", "priority", "input", None),
        ("DataZoneStandard", "", "input", None),
    ]
    assert '"price": 0.22,' in text and '"price": 1,' in text  # exact, no exponent, no float noise


def test_every_bad_row_is_named_with_its_line_and_field(tmp_path: Path) -> None:
    good = catalog_text([_row()]).splitlines()[4].strip().rstrip(",")

    def bad(**changes: object) -> str:
        row = json.loads(good)
        row.update(changes)
        return json.dumps(row)

    path = _write(
        tmp_path,
        [
            good,  # line 4
            bad(deployment_type="Global Standard"),
            bad(token_kind="reasoning"),
            bad(price=-0.1),
            bad(price="0.20"),
            bad(effective_from="2026-13-01"),
            bad(deployment_type="ProvisionedManaged"),  # a PTU deployment bills hours, not input tokens
            bad(model="GPT-5.6-Luna"),
            good,  # line 12: the same key and dates as line 4
        ],
    )
    with pytest.raises(InputFileError) as raised:
        read_catalog(path)
    lines = [str(problem).removeprefix(f"{path}:") for problem in raised.value.problems]
    assert lines == [
        "5: prices[1].deployment_type: expected one of GlobalStandard, DataZoneStandard, Standard, GlobalBatch, "
        "DataZoneBatch, GlobalProvisionedManaged, DataZoneProvisionedManaged, ProvisionedManaged, "
        'got "Global Standard"',
        '6: prices[2].token_kind: expected one of input, cached_input, cache_write, output, ptu_hour, got "reasoning"',
        "7: prices[3].price: expected a price, 0 to 1e9, at most 30 digits, got -0.1",
        '8: prices[4].price: expected a price, 0 to 1e9, at most 30 digits, got "0.20"',
        '9: prices[5].effective_from: expected a date YYYY-MM-DD, got "2026-13-01"',
        "10: prices[6].token_kind: expected ptu_hour (a provisioned deployment bills PTU-hours) for "
        'ProvisionedManaged, got "input"',
        '11: prices[7].model: expected a model name in lower case (as Azure names it), got "GPT-5.6-Luna"',
        "12: prices[8].effective_from: gpt-5.6-luna GlobalStandard input USD is given twice for the same dates "
        "(also on line 4): one key needs a different effective_from per price",
    ]


def test_the_diff_says_what_a_refresh_adds_removes_and_changes() -> None:
    old = [_row(), _row(token_kind="output", price=Decimal("6")), _row(tier="flex", price=Decimal("0.1"))]
    new = [_row(), _row(token_kind="output", price=Decimal("1.2")), _row(tier="priority", price=Decimal("0.4"))]
    diff = diff_catalogs(old, new)
    assert diff.text().splitlines() == [
        "1 added, 1 removed, 1 changed",
        "+ gpt-5.6-luna GlobalStandard priority input USD: 0.4 per_1m_tokens",
        "- gpt-5.6-luna GlobalStandard flex input USD: 0.1 per_1m_tokens",
        "~ gpt-5.6-luna GlobalStandard output USD: 6 -> 1.2 per_1m_tokens",
    ]
    assert not diff_catalogs(new, list(reversed(new)))


def test_an_import_keeps_one_of_two_equal_prices_and_neither_of_two_that_disagree() -> None:
    result = ImportResult()
    for row in (_row(source="a"), _row(source="b"), _row(token_kind="output", price=Decimal("1.2")),
                _row(token_kind="output", price=Decimal("1.3"))):  # fmt: skip
        result.add(row)
    result.finish()
    assert [(row.token_kind, row.source) for row in result.rows] == [("input", "a")]
    assert result.conflicts == ["gpt-5.6-luna GlobalStandard output USD: 1.2 (test) vs 1.3"]


def test_a_refresh_from_an_undated_source_keeps_the_past_priced_as_it_was() -> None:
    old = [
        _row(price=Decimal("0.25")),  # input: changed by the source today
        _row(token_kind="output", price=Decimal("1.2")),  # unchanged
        _row(token_kind="cached_input", price=Decimal("0.03")),
        _row(token_kind="cached_input", price=Decimal("0.02"), effective_from=date(2026, 8, 1)),  # a history
        _row(model="gpt-4-retired", price=Decimal("30")),  # no longer in the source
    ]
    result = ImportResult(
        rows=[
            _row(price=Decimal("0.2"), source="new"),
            _row(token_kind="output", price=Decimal("1.2")),
            _row(token_kind="cached_input", price=Decimal("0.02")),
            _row(model="gpt-9", price=Decimal("9"), effective_from=date(2026, 11, 1)),  # dated by the source
        ]
    )
    notes = carry_history(old, result, date(2026, 11, 30))
    got = {(row.model, row.token_kind, row.effective_from, row.price) for row in result.rows}
    assert got == {
        ("gpt-5.6-luna", "input", None, Decimal("0.25")),
        ("gpt-5.6-luna", "input", date(2026, 11, 30), Decimal("0.2")),
        ("gpt-5.6-luna", "output", None, Decimal("1.2")),
        ("gpt-5.6-luna", "cached_input", None, Decimal("0.03")),
        ("gpt-5.6-luna", "cached_input", date(2026, 8, 1), Decimal("0.02")),
        ("gpt-4-retired", "input", None, Decimal("30")),
        ("gpt-9", "input", date(2026, 11, 1), Decimal("9")),
    }
    assert notes == [
        "gpt-5.6-luna GlobalStandard input USD: 0.25 until 2026-11-30, then 0.2",
        "gpt-4-retired GlobalStandard input USD: no longer in the source; its 1 price(s) kept",
    ]
    # A second refresh the same day changes nothing more.
    again = ImportResult(rows=[_row(price=Decimal("0.2"), source="new")])
    carry_history(result.rows, again, date(2026, 11, 30))
    def rows(found: ImportResult) -> list[tuple[object, ...]]:
        return sorted((row.model, row.token_kind, row.effective_from or date.min, row.price) for row in found.rows)

    assert rows(again) == rows(result)  # every row once: the dated input, the others kept as the source dropped them
