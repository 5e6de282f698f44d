"""Fuzz: any JSON value at any field of a price table (catalog, native table, LiteLLM map) or of the
deployment map loads into something the costs run prices with, or is refused as the documented
InputFileError naming file, line and field; valid catalogs round-trip through their writer."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.costs.catalog import (
    DEPLOYMENT_TYPES,
    PAY_PER_TOKEN_TYPES,
    PER_1M_TOKENS,
    TOKEN_KINDS,
    CatalogPrice,
    catalog_text,
    read_catalog,
)
from shared.costs.deployments import load_deployment_map
from shared.costs.price_files import load_price_table
from shared.costs.price_table import PriceTable
from shared.costs.pricing import price_usage
from shared.errors import InputFileError
from shared.money import ISO_4217_MINOR_UNITS, MONEY_CONTEXT, to_micros
from tests import ROOT
from tests.support.fuzz import Mutation, hostile_text, json_text, loads, mutations, refused_clearly

PRICES = ROOT / "shared" / "costs" / "prices"
CATALOG = loads((PRICES / "catalog.json").read_text(encoding="utf-8"))
CATALOG["prices"] = CATALOG["prices"][:9]  # the PTU row and a model's kinds: every shape of row, few paths
NATIVE = loads((ROOT / "tests" / "costs" / "fixtures" / "native-price-table.json").read_text(encoding="utf-8"))
LITELLM = loads((ROOT / "tests" / "costs" / "fixtures" / "litellm" / "model_prices_trimmed.json").read_text("utf-8"))
DEPLOYMENTS = loads((PRICES / "deployments.json").read_text(encoding="utf-8"))
_files = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-prices")


def _written(folder: Path, document: Any) -> Path:
    path = folder / f"table-{next(_files)}.json"
    path.write_text(json_text(document), encoding="utf-8")
    return path


def _prices_every_period(table: PriceTable) -> None:
    """What the costs run does with a table: every period prices a large usage to micro-units, every
    PTU-hour price a large capacity for an hour."""
    for model in table.models:
        for period in table.periods(model):
            cost = price_usage(period, 10**12, 10**11, 10**12, cache_write_tokens=10**10)
            assert to_micros(cost.total_cost) >= 0 and cost.currency in ISO_4217_MINOR_UNITS
    for ptu in table.ptu_periods():
        assert to_micros(MONEY_CONTEXT.multiply(ptu.price_per_ptu_hour, Decimal(10_000))) >= 0


def _loads_or_is_refused(folder: Path, document: Any) -> None:
    path = _written(folder, document)
    try:
        table = load_price_table(path)
    except InputFileError as error:
        refused_clearly(error, str(path))
        return
    _prices_every_period(table)


@given(mutations(CATALOG))
@example(Mutation("replace", ("prices", 1, "price"), 10**400))  # priced at more than 60 digits
@example(Mutation("replace", ("prices", 2, "price"), 1234567890123456789012345678901234567890123456789012345678901))
def test_any_value_in_a_catalog_prices_or_is_refused_by_field(folder: Path, mutation: Mutation) -> None:
    _loads_or_is_refused(folder, mutation.apply(CATALOG))


@given(mutations(NATIVE))
@example(Mutation("replace", ("models", "gpt-4o", 0, "effective_from"), "0001-01-01T00:00:00+01:00"))
@example(Mutation("replace", ("models", "gpt-4o", 0, "effective_to"), "9999-12-31T23:59:59-01:00"))
@example(Mutation("replace", ("models", "gpt-4o-mini", 0, "prices", "input"), 10**70))
def test_any_value_in_a_native_table_prices_or_is_refused_by_field(folder: Path, mutation: Mutation) -> None:
    _loads_or_is_refused(folder, mutation.apply(NATIVE))


@given(mutations(LITELLM))
@example(Mutation("replace", ("azure/gpt-5.6-luna", "input_cost_per_token"), 10**70))
def test_any_value_in_a_litellm_map_prices_or_is_refused_by_field(folder: Path, mutation: Mutation) -> None:
    _loads_or_is_refused(folder, mutation.apply(LITELLM))


@given(mutations(DEPLOYMENTS))
def test_any_value_in_the_deployment_map_loads_or_is_refused_by_field(folder: Path, mutation: Mutation) -> None:
    path = _written(folder, mutation.apply(DEPLOYMENTS))
    try:
        deployments = load_deployment_map(path)
    except InputFileError as error:
        refused_clearly(error, str(path))
        return
    for entry in deployments.entries:
        assert deployments.deployment(entry.name.upper()) is not None and entry.model.strip() == entry.model
        assert entry.sku is None or entry.sku in DEPLOYMENT_TYPES


_rows = st.builds(
    CatalogPrice,
    model=st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True),
    version=st.none() | st.from_regex(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", fullmatch=True),
    deployment_type=st.sampled_from(PAY_PER_TOKEN_TYPES),
    tier=st.sampled_from(["", "priority", "flex"]),
    token_kind=st.sampled_from(TOKEN_KINDS),
    price=st.decimals(min_value=0, max_value=10**6, places=6),
    unit=st.just(PER_1M_TOKENS),
    currency=st.sampled_from(sorted(ISO_4217_MINOR_UNITS)),
    effective_from=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    region=st.none() | st.sampled_from(["us", "eu", "swedencentral"]),
    source=hostile_text.map(str.strip).filter(lambda text: bool(text) and not _lone_surrogates(text)),
)


def _lone_surrogates(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)  # not text: the reader refuses them (own test)


@given(
    st.lists(_rows, max_size=8, unique_by=lambda row: (*row.key, row.effective_from)),
    hostile_text.filter(lambda text: not _lone_surrogates(text)),
)
def test_a_written_catalog_reads_back_the_same_rows(folder: Path, rows: list[CatalogPrice], note: str) -> None:
    path = folder / f"catalog-{next(_files)}.json"
    path.write_text(catalog_text(rows, note=note, version="2026-11-30.1"), encoding="utf-8")
    if not rows:
        with pytest.raises(InputFileError, match="prices: "):
            read_catalog(path)
        return
    assert read_catalog(path) == sorted(rows, key=CatalogPrice.sort_key)
