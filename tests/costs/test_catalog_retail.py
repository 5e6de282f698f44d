"""The Retail Prices importer on recorded pages (tests/costs/fixtures/retail-prices, sources in its README),
served from 127.0.0.1 so paging and the filter run the same code as against prices.azure.com."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from shared.costs.catalog import CatalogPrice, read_catalog
from shared.costs.catalog_retail import fetch_pages, import_pages, parse_meter, query_url
from shared.errors import AzureServiceError
from tests import ROOT
from tests.support.retail_prices import serve_pages
from tools import prices

PAGES = sorted((ROOT / "tests/costs/fixtures/retail-prices").glob("page-*.json"))
EXPECTED_QUERY = {
    "$filter": "serviceName eq 'Foundry Models' and priceType eq 'Consumption' and armRegionName eq 'eastus'",
    "currencyCode": "'USD'",
}


def _price(rows: list[CatalogPrice], model: str, deployment_type: str, token_kind: str) -> tuple[Decimal, date | None]:
    (row,) = [r for r in rows if (r.model, r.deployment_type, r.token_kind) == (model, deployment_type, token_kind)]
    return row.price, row.effective_from


def test_the_importer_pages_through_next_page_link_with_the_service_filter() -> None:
    with serve_pages(PAGES, EXPECTED_QUERY) as (endpoint, seen):
        url = query_url(region="eastus", currency="USD", endpoint=endpoint)
        result = import_pages(fetch_pages(url), url)
    assert len(seen) == 2 and seen[1].endswith("&$skip=100")
    rows = result.rows
    # By hand from the sources (fixtures README): gpt-5.6-luna eastus, USD per 1M tokens.
    assert _price(rows, "gpt-5.6-luna", "GlobalStandard", "input") == (Decimal("0.2"), date(2026, 8, 1))
    assert _price(rows, "gpt-5.6-luna", "GlobalStandard", "cached_input")[0] == Decimal("0.02")
    assert _price(rows, "gpt-5.6-luna", "GlobalStandard", "cache_write")[0] == Decimal("0.25")
    assert _price(rows, "gpt-5.6-luna", "GlobalStandard", "output")[0] == Decimal("1.2")
    assert _price(rows, "gpt-5.6-luna", "DataZoneStandard", "input")[0] == Decimal("0.22")
    assert _price(rows, "gpt-5.6-luna", "DataZoneStandard", "cached_input")[0] == Decimal("0.022")
    # 1K meters become per 1M: o4-mini 0.0011 USD per 1K tokens = 1.1 per 1M; its version from "0416".
    (o4,) = [row for row in rows if row.model == "o4-mini"]
    assert (o4.version, o4.price, o4.token_kind) == ("2025-04-16", Decimal("1.1"), "input")
    assert _price(rows, "gpt-4.1", "GlobalStandard", "input")[0] == Decimal("2")
    assert _price(rows, "gpt-4o-mini", "GlobalStandard", "cached_input")[0] == Decimal("0.075")
    assert _price(rows, "*", "GlobalProvisionedManaged", "ptu_hour")[0] == Decimal("1")
    assert {row.region for row in rows} == {"eastus"} and {row.currency for row in rows} == {"USD"}
    meter = "meterName '5.6 luna ShortCo Inp Std Gl 1M Tokens' armRegionName 'eastus'"
    (luna_input,) = [row for row in rows if row.source.endswith(meter)]
    assert (luna_input.model, luna_input.token_kind) == ("gpt-5.6-luna", "input")
    assert luna_input.source.startswith(endpoint)  # the query URL, then the meter
    assert dict(result.skipped) == {"unit 1": 1}
    assert len(result.unknown) == 2
    assert result.unknown[0].startswith("Azure Grok Models: 'Grok 4.1 Inp Glbl Tokens': model words 'grok 4.1'")
    assert result.unknown[1].startswith("Azure OpenAI: 'text-embedding-3-large-regional Tokens': no deployment word")


def test_a_query_the_api_would_not_answer_fails_loudly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve_pages(PAGES, EXPECTED_QUERY) as (endpoint, _), pytest.raises(AzureServiceError) as raised:
        list(fetch_pages(query_url(region="westus", currency="USD", endpoint=endpoint)))
    assert "HTTP 400" in str(raised.value) and "BadRequest" in str(raised.value)
    out = tmp_path / "catalog.json"
    assert (
        prices.main(["retail", "--region", "eastus", "--endpoint", "http://127.0.0.1:9/none", "--out", str(out)]) == 1
    )
    assert "127.0.0.1:9" in capsys.readouterr().err and not out.exists()  # no catalog from part of a source


@pytest.mark.parametrize(
    ("meter", "expected"),
    [
        ("5.6 luna ShortCo Cd Wr Std Gl 1M Tokens", ("gpt-5.6-luna", None, "GlobalStandard", "", "cache_write")),
        ("5.6 sol ShortCo Cd Inp Std DZ 1M Tokens", ("gpt-5.6-sol", None, "DataZoneStandard", "", "cached_input")),
        ("5.4 mini cd Inp Gl 1M Tokens", ("gpt-5.4-mini", None, "GlobalStandard", "", "cached_input")),
        ("gpt-4o-mini-0718-Inp-glbl", ("gpt-4o-mini", "2024-07-18", "GlobalStandard", "", "input")),
        ("gpt 4o 1120 Outp glbl Tokens", ("gpt-4o", "2024-11-20", "GlobalStandard", "", "output")),
        ("5.5 ShortCo opt Dz 1M Tokens", ("gpt-5.5", None, "DataZoneStandard", "", "output")),
        ("GPT 5 Inpt Glbl 1M Tokens", ("gpt-5", None, "GlobalStandard", "", "input")),
    ],
)
def test_meter_names_read_word_by_word(meter: str, expected: tuple[str, ...]) -> None:
    assert parse_meter(meter) == expected


@pytest.mark.parametrize("meter", ["5.6 luna LongCo Inp Std Gl 1M Tokens", "5 mini pp Inp Gl 1M Tokens", "Hosted vCPU"])
def test_a_meter_we_cannot_read_is_never_guessed(meter: str) -> None:
    assert isinstance(parse_meter(meter), str)


def test_the_command_writes_the_catalog_and_shows_the_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, again = tmp_path / "catalog.json", tmp_path / "again.json"
    with serve_pages(PAGES, EXPECTED_QUERY) as (endpoint, _):
        args = ["retail", "--region", "eastus", "--currency", "USD", "--endpoint", endpoint]
        assert prices.main([*args, "--out", str(out)]) == 0
        first = capsys.readouterr().out
        assert prices.main([*args, "--out", str(again), "--diff", str(out)]) == 0
    assert "10 prices\n  GlobalStandard: 7\n  DataZoneStandard: 2\n  GlobalProvisionedManaged: 1\n" in first
    assert "skipped 1" in first and "unknown 2" in first
    assert len(read_catalog(out)) == 10
    assert capsys.readouterr().out.endswith("0 added, 0 removed, 0 changed\n")
