"""The LiteLLM importer on a trimmed copy of LiteLLM 1.110.2's price map (tests/costs/fixtures/litellm)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from shared.costs.catalog import catalog_text, read_catalog
from shared.costs.catalog_litellm import import_litellm
from tests import ROOT
from tools import prices

MAP = ROOT / "tests/costs/fixtures/litellm/model_prices_trimmed.json"


def _prices(**key: str | None) -> set[Decimal]:
    rows = import_litellm(MAP).rows
    return {row.price for row in rows if all(getattr(row, name) == value for name, value in key.items())}


@pytest.mark.parametrize(
    ("key", "usd_per_1m"),
    [
        # By hand from the map: azure/gpt-5.6-luna input_cost_per_token 2e-07 = 0.20 USD per 1M, ...
        ({"deployment_type": "GlobalStandard", "tier": "", "token_kind": "input"}, "0.2"),
        ({"deployment_type": "GlobalStandard", "tier": "", "token_kind": "cached_input"}, "0.02"),
        ({"deployment_type": "GlobalStandard", "tier": "", "token_kind": "cache_write"}, "0.25"),
        ({"deployment_type": "GlobalStandard", "tier": "", "token_kind": "output"}, "1.2"),
        ({"deployment_type": "GlobalStandard", "tier": "priority", "token_kind": "input"}, "0.4"),
        ({"deployment_type": "GlobalStandard", "tier": "flex", "token_kind": "output"}, "0.6"),
        ({"deployment_type": "GlobalStandard", "tier": "above_272k_tokens", "token_kind": "input"}, "0.4"),
        ({"deployment_type": "GlobalStandard", "tier": "above_272k_tokens_priority", "token_kind": "cache_write"}, "1"),
        # azure/us/ and azure/eu/ are Data Zone Standard: 10% more.
        ({"deployment_type": "DataZoneStandard", "tier": "", "token_kind": "input", "region": "us"}, "0.22"),
        ({"deployment_type": "DataZoneStandard", "tier": "", "token_kind": "cache_write", "region": "eu"}, "0.275"),
    ],
)
def test_known_gpt_5_6_luna_prices(key: dict[str, str], usd_per_1m: str) -> None:
    assert _prices(model="gpt-5.6-luna", version=None, **key) == {Decimal(usd_per_1m)}


def test_versions_batches_and_what_is_skipped() -> None:
    result = import_litellm(MAP)
    assert _prices(model="gpt-5.6-luna", version="2026-07-09", deployment_type="GlobalStandard", tier="",
                   token_kind="input") == {Decimal("0.2")}  # fmt: skip
    assert _prices(model="gpt-4o-mini", version="2024-07-18", token_kind="output", tier="",
                   deployment_type="GlobalStandard") == {Decimal("0.6")}  # fmt: skip
    # `_batches` fields are the Batch deployment type of the entry's zone (about half the standard price).
    assert _prices(model="gpt-4.1", deployment_type="GlobalBatch", token_kind="input") == {Decimal("1")}
    assert _prices(model="gpt-4.1", deployment_type="DataZoneBatch", token_kind="input", region="us") == {
        Decimal("1.1")
    }
    # azure/global-standard/gpt-4o-mini says what azure/gpt-4o-mini says: one row, no conflict.
    assert _prices(model="gpt-4o-mini", version=None, deployment_type="GlobalStandard", token_kind="input",
                   tier="") == {Decimal("0.15")}  # fmt: skip
    assert result.conflicts == [] and result.unknown == []
    assert dict(result.skipped) == {"cloud us-gov": 1, "mode embedding": 1, "mode image_generation": 1}
    # The map's openai entry "gpt-5.6-luna" is OpenAI's own price, not Azure's: not read.
    assert {row.model for row in result.rows} == {"gpt-5.6-luna", "gpt-4.1", "gpt-4o-mini"}
    assert all(row.source.startswith("LiteLLM model_prices_and_context_window.json key azure/") for row in result.rows)


def test_the_command_writes_a_catalog_that_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "catalog.json"
    assert prices.main(["litellm", str(MAP), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert read_catalog(out) == import_litellm(MAP).rows
    assert "GlobalBatch:" in printed and "DataZoneBatch:" in printed and "unknown 0" in printed


def test_an_unreadable_diff_catalog_stops_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "old.json"
    broken.write_text('{"format": "apim-token-costs price catalog v1", "prices": [{"model": "x"}]}', encoding="utf-8")
    assert prices.main(["litellm", str(MAP), "--out", str(tmp_path / "new.json"), "--diff", str(broken)]) == 2
    assert "old.json:1: prices[0].deployment_type: missing" in capsys.readouterr().err


def test_a_file_that_is_no_price_map_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_map = tmp_path / "prices.json"
    not_a_map.write_text("[1, 2]", encoding="utf-8")
    assert prices.main(["litellm", str(not_a_map), "--out", str(tmp_path / "catalog.json")]) == 1
    assert "prices.json: expected an object of model entries (LiteLLM's format)" in capsys.readouterr().err


def test_a_supplement_adds_prices_the_source_lacks_and_a_contradiction_stops_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = ROOT / "shared/costs/prices/supplement.json"
    out = tmp_path / "catalog.json"
    args = ["litellm", str(MAP), "--out", str(out), "--supplement", str(shipped), "--version", "v9"]
    assert prices.main(args) == 0
    rows = read_catalog(out)
    assert [row.price for row in rows if row.token_kind == "ptu_hour"] == [Decimal(2)]
    assert '"version": "v9"' in out.read_text(encoding="utf-8")
    # A hand price for a key and date the source prices differently: nothing written, the clash named.
    luna_input = next(
        row
        for row in rows
        if (row.model, row.deployment_type, row.tier, row.token_kind) == ("gpt-5.6-luna", "GlobalStandard", "", "input")
    )
    clash = tmp_path / "clash.json"
    clash.write_text(catalog_text([replace(luna_input, price=Decimal("0.19"), source="by hand")]), encoding="utf-8")
    out.unlink()
    assert prices.main(["litellm", str(MAP), "--out", str(out), "--supplement", str(clash)]) == 1
    assert not out.exists()
    assert "gpt-5.6-luna GlobalStandard input USD: 0.19 vs the source's 0.2" in capsys.readouterr().err
