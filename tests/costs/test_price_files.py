"""Price table files: the shipped catalog, catalog rows -> periods, PTU-hour prices, and what is refused."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.costs.catalog import FORMAT
from shared.costs.pricing import PriceTable, load_price_table, price_usage
from shared.errors import InputFileError
from tests import ROOT

SHIPPED_CATALOG = ROOT / "shared" / "costs" / "prices" / "catalog.json"
NOV_2026 = datetime(2026, 11, 30, tzinfo=UTC)
M = Decimal(1_000_000)


@pytest.fixture(scope="module")
def shipped() -> PriceTable:
    return load_price_table(SHIPPED_CATALOG)


def _per_million(value: Decimal | None) -> Decimal | None:
    return None if value is None else (value * M).normalize()


def _figures(table: PriceTable, model: str, deployment_type: str | None, version: str | None = None) -> tuple[Any, ...]:
    prices = table.prices_for(model, NOV_2026, deployment_type, version)
    assert prices is not None, f"{model} {deployment_type} {version} should be priced"
    return tuple(
        _per_million(value)
        for value in (
            prices.input_price_per_token,
            prices.cached_input_price_per_token if prices.has_cached_input_price else None,
            prices.cache_write_price_per_token,
            prices.output_price_per_token,
        )
    )


# --- the shipped catalog: built by tools.prices from LiteLLM 1.110.2 + supplement.json --------------


def test_the_shipped_catalog_is_the_default_table_and_its_version_names_its_content(shipped: PriceTable) -> None:
    # That it is COST_PRICE_TABLE's default: tests/test_config.py.
    document = json.loads(SHIPPED_CATALOG.read_text(encoding="utf-8"))
    assert document["format"] == FORMAT
    digest = hashlib.sha256(SHIPPED_CATALOG.read_bytes()).hexdigest()[:8]
    assert (shipped.file_format, shipped.version) == ("catalog", f"{document['version']}+{digest}")
    assert all(row["source"] for row in document["prices"]), "every price names its source"


def test_two_catalogs_under_one_declared_version_never_share_a_price_version(tmp_path: Path) -> None:
    first = load_price_table(_catalog(tmp_path, [_row("m", "input", "2"), _row("m", "output", "8")], version="v"))
    second = load_price_table(_catalog(tmp_path, [_row("m", "input", "3"), _row("m", "output", "8")], version="v"))
    assert first.version.startswith("v+") and second.version.startswith("v+")
    assert first.version != second.version


@pytest.mark.parametrize(
    ("model", "deployment_type", "version", "expected"),
    [
        # (input, cached input, cache write, output) USD per 1M tokens, read by hand from LiteLLM 1.110.2's
        # model_prices_and_context_window_backup.json (key in the comment) on 2026-11-30.
        ("gpt-5.6-luna", "GlobalStandard", None, ("0.2", "0.02", "0.25", "1.2")),  # azure/gpt-5.6-luna
        ("gpt-5.6-terra", "DataZoneStandard", None, ("2.2", "0.22", "2.75", "13.2")),  # azure/eu/gpt-5.6-terra
        ("gpt-4o", "GlobalBatch", None, ("1.25", None, None, "5")),  # azure/gpt-4o *_batches
        ("gpt-4o-mini", "GlobalBatch", None, ("0.075", None, None, "0.3")),  # azure/gpt-4o-mini *_batches
        ("gpt-4o", "GlobalStandard", "2024-05-13", ("5", None, None, "15")),  # azure/gpt-4o-2024-05-13
        ("gpt-4o", None, "2024-11-20", ("2.5", "1.25", None, "10")),  # azure/gpt-4o-2024-11-20, unknown type
        ("gpt-35-turbo", None, None, ("0.5", None, None, "1.5")),  # azure/gpt-35-turbo
    ],
)
def test_known_prices_of_the_shipped_catalog(
    shipped: PriceTable, model: str, deployment_type: str | None, version: str | None, expected: tuple[Any, ...]
) -> None:
    assert _figures(shipped, model, deployment_type, version) == tuple(
        None if value is None else Decimal(value) for value in expected
    )


def test_the_shipped_catalog_prices_regional_ptus_and_leaves_global_ptus_to_the_user(shipped: PriceTable) -> None:
    regional = shipped.ptu_hour_price("gpt-4o", NOV_2026, "ProvisionedManaged")
    assert regional is not None and regional.price_per_ptu_hour == Decimal(2) and "Packt" in regional.source
    assert shipped.ptu_hour_price("gpt-4o", NOV_2026, "GlobalProvisionedManaged") is None  # no citable figure
    assert shipped.prices_for("gpt-4o", NOV_2026, "ProvisionedManaged") is None  # no per-token price


def test_data_zone_prices_that_differ_by_zone_are_left_out_not_guessed(shipped: PriceTable) -> None:
    # LiteLLM: azure/us/gpt-6-astra input 11, azure/eu/gpt-6-astra 12 per 1M: which zone is ours is unknown.
    assert shipped.prices_for("gpt-6-astra", NOV_2026, "DataZoneStandard") is None
    assert any(
        line.startswith("gpt-6-astra (DataZoneStandard) input: prices differ by region") for line in shipped.left_out
    )
    assert shipped.prices_for("gpt-6-astra", NOV_2026, "GlobalStandard") is not None


# --- catalog rows -> periods ------------------------------------------------------------------------


def _row(model: str, kind: str, price: str, **values: Any) -> dict[str, Any]:
    ptu = kind == "ptu_hour"
    row = {
        "model": model,
        "version": None,
        "deployment_type": "ProvisionedManaged" if ptu else "GlobalStandard",
        "tier": "",
        "token_kind": kind,
        "price": price,
        "unit": "per_ptu_hour" if ptu else "per_1m_tokens",
        "currency": "USD",
        "effective_from": None,
        "region": None,
        "source": "test",
    }
    row.update(values)
    return row


def _catalog(tmp_path: Path, rows: list[dict[str, Any]], version: str | None = "t.1") -> Path:
    lines = [
        "{",
        f'  "format": "{FORMAT}",',
        *([f'  "version": "{version}",'] if version else []),
        '  "prices": [',
        ",\n".join("    " + json.dumps(row).replace(f'"{row["price"]}"', row["price"]) for row in rows),
        "  ]",
        "}",
    ]
    path = tmp_path / "catalog.json"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_a_new_period_starts_wherever_one_kind_changes_price(tmp_path: Path) -> None:
    table = load_price_table(
        _catalog(
            tmp_path,
            [
                _row("m", "input", "2", effective_from="2026-01-01"),
                _row("m", "output", "8", effective_from="2026-01-01"),
                _row("m", "input", "1", effective_from="2026-07-30"),  # a price cut of input only
                _row("m", "cached_input", "0.1", effective_from="2026-07-30"),
            ],
        )
    )
    before, after = table.periods("m")
    assert (before.effective_from, before.effective_to) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 7, 30, tzinfo=UTC),
    )
    assert _figures(table, "m", None)[0] == Decimal(1)
    june = table.prices_for("m", datetime(2026, 6, 1, tzinfo=UTC))
    assert june is not None and (june.input_price_per_token * M, june.output_price_per_token * M) == (2, 8)
    assert not june.has_cached_input_price and after.has_cached_input_price
    assert after.output_price_per_token * M == 8  # carried over: unchanged
    assert table.prices_for("m", datetime(2025, 12, 31, tzinfo=UTC)) is None  # before the first date


def test_an_exact_model_version_is_priced_before_every_version(tmp_path: Path) -> None:
    table = load_price_table(
        _catalog(
            tmp_path,
            [
                _row("m", "input", "2"),
                _row("m", "output", "8"),
                _row("m", "input", "5", version="2024-05-13"),
                _row("m", "output", "15", version="2024-05-13"),
            ],
        )
    )
    assert _figures(table, "m", None, "2024-05-13") == (5, None, None, 15)
    assert _figures(table, "m", "GlobalStandard", "2025-01-01") == (2, None, None, 8)  # no own row: every version


def test_a_key_without_an_output_price_is_left_out_and_unpriced(tmp_path: Path) -> None:
    table = load_price_table(
        _catalog(tmp_path, [_row("m", "input", "2"), _row("n", "input", "1"), _row("n", "output", "4")])
    )
    assert table.prices_for("m", NOV_2026) is None
    assert table.left_out == ("m (GlobalStandard): no output price; left unpriced",)
    assert table.prices_for("n", NOV_2026) is not None


def test_tier_rows_do_not_price_the_default_tier(tmp_path: Path) -> None:
    table = load_price_table(
        _catalog(
            tmp_path,
            [_row("m", "input", "2"), _row("m", "output", "8"), _row("m", "input", "4", tier="priority")],
        )
    )
    assert _figures(table, "m", None)[0] == 2


def test_one_key_in_two_currencies_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _catalog(
        tmp_path, [_row("m", "input", "2"), _row("m", "output", "8"), _row("m", "output", "7", currency="EUR")]
    )
    with pytest.raises(InputFileError) as raised:
        load_price_table(path)
    assert "m (GlobalStandard) output is priced in EUR and USD" in str(raised.value)
    assert f"{path}:" in str(raised.value)


def test_a_catalog_without_a_version_is_versioned_by_its_content(tmp_path: Path) -> None:
    first = load_price_table(_catalog(tmp_path, [_row("m", "input", "2"), _row("m", "output", "8")], version=None))
    second = load_price_table(_catalog(tmp_path, [_row("m", "input", "3"), _row("m", "output", "8")], version=None))
    assert first.version.startswith("sha256:") and second.version.startswith("sha256:")
    assert first.version != second.version


def test_a_model_ptu_price_comes_before_the_any_model_one(tmp_path: Path) -> None:
    table = load_price_table(
        _catalog(
            tmp_path,
            [
                _row("m", "input", "2"),
                _row("m", "output", "8"),
                _row("*", "ptu_hour", "2"),
                _row("m", "ptu_hour", "1.5"),
                _row("*", "ptu_hour", "1", deployment_type="GlobalProvisionedManaged", effective_from="2026-02-01"),
            ],
        )
    )
    own = table.ptu_hour_price("m", NOV_2026, "ProvisionedManaged")
    other = table.ptu_hour_price("other-model", NOV_2026, "ProvisionedManaged")
    assert own is not None and own.price_per_ptu_hour == Decimal("1.5")
    assert other is not None and other.price_per_ptu_hour == 2
    assert table.ptu_hour_price("m", datetime(2026, 1, 31, tzinfo=UTC), "GlobalProvisionedManaged") is None
    assert table.ptu_hour_price("m", NOV_2026, "GlobalProvisionedManaged") is not None


# --- cache writes ------------------------------------------------------------------------------------


def test_cache_write_tokens_are_priced_at_the_cache_write_price(shipped: PriceTable) -> None:
    luna = shipped.prices_for("gpt-5.6-luna", NOV_2026, "GlobalStandard")
    assert luna is not None
    # 1M prompt tokens: 200k read from the cache, 300k written to it, 500k plain; 100k output.
    cost = price_usage(luna, 1_000_000, 200_000, 100_000, cache_write_tokens=300_000)
    assert cost.prompt_cost == Decimal("0.1")  # 500k x 0.20 / 1M
    assert cost.cached_prompt_cost == Decimal("0.004")  # 200k x 0.02 / 1M
    assert cost.cache_write_cost == Decimal("0.075")  # 300k x 0.25 / 1M
    assert cost.completion_cost == Decimal("0.12")  # 100k x 1.20 / 1M
    assert cost.total_cost == Decimal("0.299")
    with pytest.raises(ValueError, match="exceed prompt_tokens"):
        price_usage(luna, 100, 60, 0, cache_write_tokens=50)


# --- the native table's PTU and version fields --------------------------------------------------------


def _native(tmp_path: Path, models: dict[str, Any]) -> Path:
    path = tmp_path / "native.json"
    path.write_text(
        json.dumps({"version": "n.1", "currency": "USD", "unit": "per_1m_tokens", "models": models}, indent=2),
        encoding="utf-8",
    )
    return path


def test_a_native_table_prices_ptu_hours_versions_and_cache_writes(tmp_path: Path) -> None:
    table = load_price_table(
        _native(
            tmp_path,
            {
                "m": [
                    {"effective_from": "2026-01-01", "prices": {"input": 2, "cache_write": 2.5, "output": 8}},
                    {"effective_from": "2026-01-01", "version": "v1", "prices": {"input": 3, "output": 9}},
                ],
                "*": [
                    {
                        "effective_from": "2026-01-01",
                        "deployment_type": "GlobalProvisionedManaged",
                        "prices": {"ptu_hour": 1},
                    }
                ],
            },
        )
    )
    assert _figures(table, "m", None) == (2, None, Decimal("2.5"), 8)
    assert _figures(table, "m", None, "v1") == (3, None, None, 9)
    ptu = table.ptu_hour_price("m", NOV_2026, "GlobalProvisionedManaged")
    assert ptu is not None and ptu.price_per_ptu_hour == 1


@pytest.mark.parametrize(
    ("models", "field", "message"),
    [
        (
            {"*": [{"effective_from": "2026-01-01", "deployment_type": "ProvisionedManaged", "prices": {}}]},
            'models["*"][0].prices.ptu_hour',
            "missing; expected the price of one PTU-hour for ProvisionedManaged",
        ),
        (
            {
                "m": [
                    {
                        "effective_from": "2026-01-01",
                        "deployment_type": "ProvisionedManaged",
                        "prices": {"ptu_hour": 2, "input": 1},
                    }
                ]
            },
            "models.m[0].prices.input",
            "unknown field of a ProvisionedManaged period (its per-token prices are zero",
        ),
        (
            {"*": [{"effective_from": "2026-01-01", "prices": {"input": 1, "output": 2}}]},
            'models["*"][0].deployment_type',
            'model "*" is for PTU-hour prices',
        ),
        (
            {"m": [{"effective_from": "2026-01-01", "prices": {"input": 1, "output": 2, "ptu_hour": 3}}]},
            "models.m[0].prices.ptu_hour",
            "a PTU-hour price belongs to a provisioned deployment type",
        ),
        (
            {"m": [{"effective_from": "2026-01-01", "prices": {"input": 1, "output": 2, "cache_write": -1}}]},
            "models.m[0].prices.cache_write",
            "expected a price, 0 to 1e9, at most 30 digits, got -1",
        ),
    ],
    ids=[
        "ptu without hourly price",
        "ptu with token price",
        "any-model token period",
        "ptu_hour untyped",
        "negative cache write",
    ],
)
def test_bad_native_ptu_and_cache_write_entries_are_refused_naming_the_field(
    tmp_path: Path, models: dict[str, Any], field: str, message: str
) -> None:
    path = _native(tmp_path, models)
    with pytest.raises(InputFileError) as raised:
        load_price_table(path)
    found = [problem for problem in raised.value.problems if problem.field == field]
    assert found and message in found[0].message, str(raised.value)
    assert found[0].line is not None and found[0].line > 1


# --- what a review found ------------------------------------------------------------------------------


def test_a_model_name_with_a_version_suffix_is_priced_as_that_version(shipped: PriceTable) -> None:
    # A deployments.json entry "gpt-4o-2024-05-13" (or a deployment of that name found nowhere): the catalog's
    # gpt-4o version 2024-05-13 kept its launch price, 5.00 / 15.00 per 1M (LiteLLM azure/gpt-4o-2024-05-13).
    assert _figures(shipped, "gpt-4o-2024-05-13", "GlobalStandard") == (5, None, None, 15)
    assert _figures(shipped, "gpt-4o-2024-05-13", None) == (5, None, None, 15)
    assert _figures(shipped, "gpt-4o", "GlobalStandard")[0] == Decimal("2.5")


def test_a_global_standard_period_is_preferred_to_an_untyped_one(tmp_path: Path) -> None:
    table = load_price_table(
        _native(
            tmp_path,
            {
                "m": [
                    {"effective_from": "2024-01-01", "prices": {"input": 5, "output": 15}},
                    {"effective_from": "2026-01-01", "deployment_type": "GlobalStandard",
                     "prices": {"input": 2.5, "output": 10}},
                ]
            },
        )
    )  # fmt: skip
    assert _figures(table, "m", "GlobalStandard")[0] == Decimal("2.5")
    assert _figures(table, "m", None)[0] == Decimal("2.5")
    june_2025 = table.prices_for("m", datetime(2025, 6, 1, tzinfo=UTC), "GlobalStandard")
    assert june_2025 is not None and june_2025.input_price_per_token * M == 5  # before the typed period


def test_an_undated_kind_joins_the_dated_prices_from_their_first_date(tmp_path: Path) -> None:
    # A supplement's undated cached price next to a dated source's input and output.
    table = load_price_table(
        _catalog(
            tmp_path,
            [
                _row("m", "input", "2", effective_from="2026-01-01"),
                _row("m", "output", "8", effective_from="2026-01-01"),
                _row("m", "cached_input", "0.2"),
            ],
        )
    )
    assert table.left_out == ()
    assert _figures(table, "m", None) == (2, Decimal("0.2"), None, 8)
    assert table.prices_for("m", datetime(2025, 12, 31, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"currency": "usd$"}, "currency", "expected an ISO 4217 code"),
        ({"version": "2024-11-20"}, "version", "a PTU-hour price is per deployment type"),
    ],
    ids=["unknown currency", "ptu price with a model version"],
)
def test_a_catalog_row_is_refused_naming_its_line_and_field(
    tmp_path: Path, change: dict[str, Any], field: str, message: str
) -> None:
    path = _catalog(tmp_path, [_row("m", "input", "2"), _row("m", "output", "8"), _row("*", "ptu_hour", "2", **change)])
    with pytest.raises(InputFileError) as raised:
        load_price_table(path)
    [problem] = raised.value.problems
    assert (problem.field, problem.line) == (f"prices[2].{field}", 7), str(raised.value)
    assert message in problem.message
