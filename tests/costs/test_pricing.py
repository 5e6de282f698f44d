"""Pricing: the price table (native and LiteLLM shapes), deployment map, exact costs (rounding: test_money.py)."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.costs.pricing import (
    CostBreakdown,
    DeploymentMap,
    PriceTable,
    load_deployment_map,
    load_price_table,
    price_usage,
)
from shared.errors import InputFileError
from shared.money import round_money, round_summary_cost, sum_money
from tests import ROOT

PRICES_DIR = ROOT / "shared" / "costs" / "prices"
NATIVE_TABLE = ROOT / "tests" / "costs" / "fixtures" / "native-price-table.json"  # the native shape
SAMPLE_DEPLOYMENTS = PRICES_DIR / "deployments.json"

JAN_2025 = datetime(2025, 1, 1, tzinfo=UTC)
JUN_2025 = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table(NATIVE_TABLE)


def _prices(table: PriceTable, model: str, at: datetime) -> Any:
    prices = table.prices_for(model, at)
    assert prices is not None, f"{model} should be priced at {at}"
    return prices


# --- the shipped table ------------------------------------------------------------------------


def test_shipped_table_has_the_list_prices_per_million_tokens(table: PriceTable) -> None:
    assert table.version == "2026-11-30.1"
    assert table.file_format == "native"
    expected = {  # model: (input, cached_input, output) USD per 1M tokens
        "gpt-4o-mini": ("0.15", "0.075", "0.60"),
        "gpt-4o": ("2.50", "1.25", "10.00"),
        "gpt-35-turbo": ("0.50", "0.50", "1.50"),  # no cached price: cached priced at input
        "gpt-4.1": ("2.00", "0.50", "8.00"),
        "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
        "gpt-4.1-nano": ("0.10", "0.025", "0.40"),
    }
    for model, (input_price, cached_price, output_price) in expected.items():
        prices = _prices(table, model, JUN_2025)
        assert prices.currency == "USD"
        assert prices.input_price_per_million_tokens == Decimal(input_price), model
        assert prices.cached_input_price_per_million_tokens == Decimal(cached_price), model
        assert prices.output_price_per_million_tokens == Decimal(output_price), model
    assert not _prices(table, "gpt-35-turbo", JUN_2025).has_cached_input_price
    note = json.loads(NATIVE_TABLE.read_text())["note"]
    assert "list prices" in note.lower() and "agreement" in note


@pytest.mark.parametrize(
    ("model", "global_prices", "data_zone_prices"),
    [  # USD per 1M (input, cached, output): LiteLLM 1.110.2 azure/gpt-5.6-* (Global Standard, untyped) and
        # azure/eu/gpt-5.6-* (Data Zone Standard); the entries' notes say so
        ("gpt-5.6-luna", ("0.20", "0.02", "1.20"), ("0.22", "0.022", "1.32")),
        ("gpt-5.6-terra", ("2.00", "0.20", "12.00"), ("2.20", "0.22", "13.20")),
        ("gpt-5.6-sol", ("4.00", "0.40", "20.00"), ("4.40", "0.44", "22.00")),
    ],
)
def test_shipped_table_prices_the_deployed_models_from_their_launch_by_deployment_type(
    table: PriceTable, model: str, global_prices: tuple[str, ...], data_zone_prices: tuple[str, ...]
) -> None:
    launch = datetime(2026, 7, 9, tzinfo=UTC)
    expected_by_type = {
        None: global_prices,  # no known type: the untyped (Global Standard) prices, as before types
        "GlobalStandard": global_prices,  # no period of its own: the untyped one (Global Standard list)
        "Standard": None,  # regional: no period of its own, unpriced rather than priced as Global
        "DataZoneStandard": data_zone_prices,
    }
    for deployment_type, expected in expected_by_type.items():
        assert table.prices_for(model, launch - timedelta(hours=1), deployment_type) is None
        for name in (model, f"{model}-2026-07-09"):  # the deployment's name or the response's model
            prices = table.prices_for(name, launch, deployment_type)
            if expected is None:
                assert prices is None
                continue
            assert prices is not None and prices.model == model
            assert (
                prices.input_price_per_million_tokens,
                prices.cached_input_price_per_million_tokens,
                prices.output_price_per_million_tokens,
            ) == tuple(Decimal(price) for price in expected), (name, deployment_type)
    untyped, data_zone = json.loads(NATIVE_TABLE.read_text())["models"][model]
    assert "LiteLLM 1.110.2" in untyped["note"] and "Global Standard" in untyped["note"]
    assert "deployment_type" not in untyped and "no deployment type yet" not in untyped["note"]
    assert data_zone["deployment_type"] == "DataZoneStandard"
    assert data_zone["effective_from"] == untyped["effective_from"]
    assert f"azure/eu/{model}" in data_zone["note"] and "read 2026-11-30" in data_zone["note"]


def test_a_data_zone_deployment_costs_the_data_zone_price_to_the_micro_unit(table: PriceTable) -> None:
    at = datetime(2026, 11, 30, 9, tzinfo=UTC)
    data_zone = table.prices_for("gpt-5.6-luna", at, "DataZoneStandard")
    global_ = table.prices_for("gpt-5.6-luna", at, "GlobalStandard")
    assert data_zone is not None and global_ is not None
    # 1,234,567 prompt (234,567 cached), 345,679 completion tokens:
    # Data Zone: (1,000,000 x 0.22 + 234,567 x 0.022 + 345,679 x 1.32) / 1M = 0.681456754 -> 0.681457
    # Global:    (1,000,000 x 0.20 + 234,567 x 0.020 + 345,679 x 1.20) / 1M = 0.61950614 -> 0.619506
    assert round_summary_cost(price_usage(data_zone, 1_234_567, 234_567, 345_679).total_cost) == Decimal("0.681457")
    assert round_summary_cost(price_usage(global_, 1_234_567, 234_567, 345_679).total_cost) == Decimal("0.619506")


def test_importing_pricing_does_not_import_pandas() -> None:
    code = "import sys, shared.costs.pricing; assert 'pandas' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- exact costs ------------------------------------------------------------------------------


def test_cost_with_cached_tokens_is_exact(table: PriceTable) -> None:
    prices = _prices(table, "gpt-4o-mini", JAN_2025)
    cost = price_usage(prices, 1_000_000, 400_000, 500_000)
    assert cost == CostBreakdown(
        prompt_cost=Decimal("0.09"),  # 600,000 uncached x 0.15 / 1M
        cached_prompt_cost=Decimal("0.03"),  # 400,000 cached x 0.075 / 1M
        completion_cost=Decimal("0.30"),
        total_cost=Decimal("0.42"),
        currency="USD",
    )


def test_cost_beyond_the_cent_and_its_rounding(table: PriceTable) -> None:
    prices = _prices(table, "gpt-4.1-nano", JUN_2025)
    cost = price_usage(prices, 1_234_567, 234_567, 7_654_321)
    assert cost.prompt_cost == Decimal("0.1")
    assert cost.cached_prompt_cost == Decimal("0.005864175")
    assert cost.completion_cost == Decimal("3.0617284")
    assert cost.total_cost == Decimal("3.167592575")
    assert round_money(cost.total_cost, "USD") == Decimal("3.17")
    assert str(round_summary_cost(cost.total_cost)) == "3.167593"
    assert str(round_summary_cost(cost.cached_prompt_cost)) == "0.005864"


def test_one_token_costs_are_exact_not_floats(table: PriceTable) -> None:
    prices = _prices(table, "gpt-4.1-nano", JUN_2025)
    assert price_usage(prices, 1, 1, 0).total_cost == Decimal("0.000000025")
    assert price_usage(prices, 0, 0, 1).total_cost == Decimal("0.0000004")
    assert price_usage(prices, 0, 0, 0).total_cost == 0


def test_model_without_cached_price_charges_cached_tokens_at_input(table: PriceTable) -> None:
    prices = _prices(table, "gpt-35-turbo", JUN_2025)
    cost = price_usage(prices, 1_000, 200, 0)
    assert cost.prompt_cost == Decimal("0.0004")
    assert cost.cached_prompt_cost == Decimal("0.0001")
    assert cost.total_cost == Decimal("0.0005")


def test_cached_more_than_prompt_is_an_error(table: PriceTable) -> None:
    prices = _prices(table, "gpt-4o", JUN_2025)
    with pytest.raises(
        ValueError,
        match=r"cached_prompt_tokens \(11\) and cache_write_tokens \(0\) exceed prompt_tokens \(10\).*gpt-4o",
    ):
        price_usage(prices, 10, 11, 0)


@pytest.mark.parametrize(
    ("tokens", "error"),
    [
        ((-1, 0, 0), ValueError),
        ((0, 0, -5), ValueError),
        ((10.0, 0, 0), TypeError),
        (("10", 0, 0), TypeError),
    ],
)
def test_bad_token_counts_are_refused(table: PriceTable, tokens: tuple[Any, Any, Any], error: type) -> None:
    with pytest.raises(error):
        price_usage(_prices(table, "gpt-4o", JUN_2025), *tokens)


def test_numpy_integer_token_counts_are_accepted(table: PriceTable) -> None:
    np = pytest.importorskip("numpy")
    prices = _prices(table, "gpt-4o", JUN_2025)
    cost = price_usage(prices, np.int64(1_000_000), np.int64(0), np.int64(0))
    assert cost.total_cost == Decimal("2.5")


def test_no_float_drift_a_million_one_token_rows_sum_to_the_cost_of_the_total(table: PriceTable) -> None:
    prices = _prices(table, "gpt-4.1-nano", JUN_2025)
    rows = [(1, 0, 0), (1, 1, 0), (0, 0, 1)]  # uncached prompt, cached prompt, completion
    row_count = 1_000_000
    summed = sum_money(price_usage(prices, *rows[index % 3]).total_cost for index in range(row_count))
    prompt = sum(rows[index % 3][0] for index in range(row_count))
    cached = sum(rows[index % 3][1] for index in range(row_count))
    completion = sum(rows[index % 3][2] for index in range(row_count))
    assert summed == price_usage(prices, prompt, cached, completion).total_cost
    assert summed == Decimal("0.174999925")  # (333,334 x 0.10 + 333,333 x 0.025 + 333,333 x 0.40) / 1M
    # The same sum in binary floats is not exact: this is what the Decimal path avoids.
    floats = [float(price_usage(prices, *rows[index % 3]).total_cost) for index in range(3)]
    assert sum(floats[index % 3] for index in range(row_count)) != float(summed)


# --- effective dates --------------------------------------------------------------------------


def test_window_is_priced_with_the_prices_in_force_at_its_start(table: PriceTable) -> None:
    change = datetime(2024, 8, 6, tzinfo=UTC)
    before = _prices(table, "gpt-4o", change - timedelta(hours=1))  # window 23:00-00:00 spans the change
    after = _prices(table, "gpt-4o", change)
    assert before.input_price_per_million_tokens == Decimal("5.00")
    assert before.output_price_per_million_tokens == Decimal("15.00")
    assert not before.has_cached_input_price
    assert before.effective_to == change
    assert after.input_price_per_million_tokens == Decimal("2.50")
    assert after.effective_to is None
    assert price_usage(before, 1_000_000, 0, 1_000_000).total_cost == Decimal("20")
    assert price_usage(after, 1_000_000, 0, 1_000_000).total_cost == Decimal("12.5")


def test_offset_times_are_compared_in_utc(table: PriceTable) -> None:
    # 01:00 at +02:00 is 23:00 UTC the day before the change.
    at = datetime(2024, 8, 6, 1, tzinfo=timezone(timedelta(hours=2)))
    assert _prices(table, "gpt-4o", at).input_price_per_million_tokens == Decimal("5.00")


def test_before_the_first_period_is_unpriced(table: PriceTable) -> None:
    assert table.prices_for("gpt-4o", datetime(2024, 5, 12, 23, tzinfo=UTC)) is None


def test_naive_time_is_refused(table: PriceTable) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        table.prices_for("gpt-4o", datetime(2025, 1, 1))


def test_gap_after_an_explicit_end_is_unpriced(tmp_path: Path) -> None:
    doc = _native_doc()
    doc["models"]["gpt-4o"] = [
        {"effective_from": "2024-01-01", "effective_to": "2024-02-01", "prices": {"input": 1, "output": 2}},
        {"effective_from": "2024-03-01T00:00:00Z", "prices": {"input": 3, "output": 4}},
    ]
    table = load_price_table(_write(tmp_path, doc))
    assert table.prices_for("gpt-4o", datetime(2024, 1, 31, 23, tzinfo=UTC)) is not None
    assert table.prices_for("gpt-4o", datetime(2024, 2, 1, tzinfo=UTC)) is None
    assert _prices(table, "gpt-4o", datetime(2024, 3, 1, tzinfo=UTC)).input_price_per_million_tokens == 3


# --- model names ------------------------------------------------------------------------------


def test_unpriced_model_is_none_never_zero(table: PriceTable) -> None:
    assert table.resolve("my-custom-finetune") is None
    assert table.prices_for("my-custom-finetune", JUN_2025) is None


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),  # Azure model names are lower case
        ("gpt-4o-2024-11-20", "gpt-4o"),  # version suffix falls back to the family
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # ...but an exact entry wins
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-3.5-turbo", "gpt-35-turbo"),  # OpenAI spelling -> Azure spelling
        ("gpt-35-turbo-0125", "gpt-35-turbo"),  # Azure short version suffix
        ("gpt-3.5-turbo-0125", "gpt-35-turbo"),
        ("gpt-4o-mini-realtime", None),
    ],
)
def test_model_name_resolution(table: PriceTable, name: str, key: str | None) -> None:
    assert table.resolve(name) == key


def test_deployment_map_then_price_table(table: PriceTable) -> None:
    deployments = load_deployment_map(SAMPLE_DEPLOYMENTS)
    assert deployments.model_for("my-gpt4o-prod") == "gpt-4o"
    assert deployments.model_for("MY-GPT4O-PROD") == "gpt-4o"  # Azure deployment names ignore case
    assert deployments.model_for("gpt-4.1-mini") == "gpt-4.1-mini"  # unmapped: named after its model
    assert deployments.model_for("someone-elses-name") == "someone-elses-name"
    legacy = _prices(table, deployments.model_for("legacy-chat"), JUN_2025)
    assert legacy.model == "gpt-35-turbo"
    assert table.prices_for(deployments.model_for("someone-elses-name"), JUN_2025) is None
    # The sample's object entry: a Data Zone deployment, priced at Data Zone prices.
    assert (deployments.model_for("agents-eu"), deployments.deployment_type_for("agents-eu")) == (
        "gpt-5.6-terra", "DataZoneStandard",
    )  # fmt: skip
    assert deployments.deployment_type_for("my-gpt4o-prod") is None


def test_a_deployment_map_entry_may_give_version_and_sku(tmp_path: Path, table: PriceTable) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"deployments": {
        "agents-eu": {"model": "gpt-5.6-terra", "version": "2026-07-09", "sku": "DataZoneStandard"},
        "agents": "gpt-5.6-terra",
        "bot": {"model": "gpt-5.6-terra"},
    }}))  # fmt: skip
    deployments = load_deployment_map(path)
    assert [deployments.model_for(name) for name in ("AGENTS-EU", "agents", "bot")] == ["gpt-5.6-terra"] * 3
    assert [deployments.deployment_type_for(name) for name in ("agents-eu", "agents", "bot", "elsewhere")] == [
        "DataZoneStandard", None, None, None,
    ]  # fmt: skip
    assert deployments.price_key_for("agents-eu") == "gpt-5.6-terra (version 2026-07-09, DataZoneStandard)"
    assert deployments.price_key_for("agents") == "gpt-5.6-terra"
    assert deployments.price_key_for("elsewhere") == "elsewhere"
    at = datetime(2026, 11, 30, tzinfo=UTC)
    priced = [
        table.prices_for(deployments.model_for(name), at, deployments.deployment_type_for(name))
        for name in ("agents-eu", "agents")
    ]
    assert [p.input_price_per_million_tokens for p in priced if p is not None] == [Decimal("2.20"), Decimal("2.00")]


def test_no_deployment_map_is_the_identity() -> None:
    assert load_deployment_map(None).model_for("gpt-4o") == "gpt-4o"
    assert DeploymentMap({"a": "gpt-4o"}).model_for("A") == "gpt-4o"


@pytest.mark.parametrize(
    ("text", "deployment", "problem"),
    [
        ('{"deployments": {"prod": ""}}', "prod", 'expected a model name (a non-empty string) or {"model"'),
        ('{"deployments": {"prod": 4}}', "prod", "got 4"),
        ('{"deployments": {"prod": "gpt-4o", "prod": "gpt-4o-mini"}}', "prod", "given more than once"),
        ('{"deployments": {"Prod": "gpt-4o", "prod": "gpt-4o-mini"}}', "prod", "letter case"),
        ('{"deployments": {"Prod": "gpt-4o", "prod": {"model": "gpt-4o", "sku": "Standard"}}}', "prod", "letter case"),
        ('{"deployments": {"prod": {"model": "gpt-4o", "sku": "DZ"}}}', "prod.sku", "expected one of GlobalStandard"),
        ('{"deployments": {"prod": {"sku": "Standard"}}}', "prod.model", "missing; expected a model name"),
        ('{"deployments": {"prod": {"model": "gpt-4o", "skus": "x"}}}', "prod.skus", "unknown field"),
        ('{"deployments": {"prod": {"model": "gpt-4o", "version": 5}}}', "prod.version", "expected a non-empty string"),
        ('{"deployments": {"prod": []}}', "prod", 'expected a model name (a non-empty string) or {"model"'),
    ],
)
def test_bad_deployment_map(tmp_path: Path, text: str, deployment: str, problem: str) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(text)
    with pytest.raises(InputFileError) as caught:
        load_deployment_map(path)
    message = str(caught.value)
    assert f"{path}:1: deployments.{deployment}: " in message and problem in message


def test_deployment_map_without_deployments_object(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text('{"my-gpt4o-prod": "gpt-4o"}')
    with pytest.raises(InputFileError, match=r"deployments\.json:1: deployments: missing; expected an object"):
        load_deployment_map(path)


# --- LiteLLM-shaped file ----------------------------------------------------------------------

LITELLM_SAMPLE = """{
    "sample_spec": {
        "input_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "max_tokens": "LEGACY parameter",
        "mode": "one of: chat, embedding, completion, image_generation",
        "output_cost_per_token": 0.0
    },
    "256-x-256/dall-e-2": {
        "input_cost_per_pixel": 2.4414e-07,
        "litellm_provider": "openai",
        "mode": "image_generation",
        "output_cost_per_pixel": 0.0
    },
    "gpt-4o": {
        "cache_read_input_token_cost": 1.25e-06,
        "input_cost_per_token": 2.5e-06,
        "litellm_provider": "openai",
        "max_input_tokens": 128000,
        "mode": "chat",
        "output_cost_per_token": 1e-05
    },
    "azure/gpt-4o": {
        "cache_read_input_token_cost": 1.25e-06,
        "input_cost_per_token": 2.75e-06,
        "litellm_provider": "azure",
        "mode": "chat",
        "output_cost_per_token": 1.1e-05
    },
    "azure/gpt-4o-mini": {
        "cache_read_input_token_cost": 8.3e-08,
        "input_cost_per_token": 1.65e-07,
        "litellm_provider": "azure",
        "mode": "chat",
        "output_cost_per_token": 6.6e-07
    },
    "azure_ai/gpt-4.1-mini": {
        "input_cost_per_token": 9e-07,
        "litellm_provider": "azure_ai",
        "mode": "chat",
        "output_cost_per_token": 9e-07
    },
    "azure/gpt-4.1-mini": {
        "cache_read_input_token_cost": 1e-07,
        "input_cost_per_token": 4e-07,
        "litellm_provider": "azure",
        "mode": "chat",
        "output_cost_per_token": 1.6e-06
    },
    "gpt-3.5-turbo": {
        "input_cost_per_token": 5e-07,
        "litellm_provider": "openai",
        "mode": "chat",
        "output_cost_per_token": 1.5e-06
    },
    "text-embedding-3-small": {
        "input_cost_per_token": 2e-08,
        "litellm_provider": "openai",
        "mode": "embedding",
        "output_cost_per_token": 0.0
    },
    "whisper-1": {
        "input_cost_per_second": 0.0001,
        "litellm_provider": "openai",
        "mode": "audio_transcription",
        "output_cost_per_second": 0.0001
    }
}
"""


@pytest.fixture
def litellm_path(tmp_path: Path) -> Path:
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(LITELLM_SAMPLE)
    return path


def test_litellm_file_is_accepted(litellm_path: Path) -> None:
    table = load_price_table(litellm_path)
    assert table.file_format == "litellm"
    assert table.version == "sha256:" + hashlib.sha256(litellm_path.read_bytes()).hexdigest()[:12]
    # No dates in LiteLLM: in force from the beginning of time.
    gpt4o = _prices(table, "gpt-4o", datetime(2001, 1, 1, tzinfo=UTC))
    assert (gpt4o.model, gpt4o.input_price_per_token, gpt4o.currency) == (
        "gpt-4o",
        Decimal("0.0000025"),
        "USD",
    )
    assert price_usage(gpt4o, 1_000_000, 200_000, 100_000).total_cost == Decimal("3.25")


def test_litellm_skips_sample_spec_and_non_token_models(litellm_path: Path) -> None:
    table = load_price_table(litellm_path)
    assert table.prices_for("sample_spec", JUN_2025) is None
    assert table.prices_for("256-x-256/dall-e-2", JUN_2025) is None
    assert table.prices_for("whisper-1", JUN_2025) is None
    embedding = _prices(table, "text-embedding-3-small", JUN_2025)
    assert price_usage(embedding, 1_000_000, 0, 0).total_cost == Decimal("0.02")


def test_litellm_names_exact_first_then_provider_prefix(litellm_path: Path) -> None:
    table = load_price_table(litellm_path)
    assert table.resolve("gpt-4o") == "gpt-4o"  # exact entry beats azure/gpt-4o
    assert table.resolve("azure/gpt-4o") == "azure/gpt-4o"
    assert table.resolve("gpt-4o-mini") == "azure/gpt-4o-mini"
    assert table.resolve("gpt-4o-mini-2024-07-18") == "azure/gpt-4o-mini"
    assert table.resolve("gpt-4.1-mini") == "azure/gpt-4.1-mini"  # azure preferred over azure_ai
    mini = _prices(table, "gpt-4o-mini", JUN_2025)
    assert mini.cached_input_price_per_token == Decimal("8.3E-8")
    assert price_usage(mini, 1_000, 1_000, 0).total_cost == Decimal("0.000083")


def test_litellm_gpt35_spelling_and_deployment_map(litellm_path: Path, tmp_path: Path) -> None:
    table = load_price_table(litellm_path)
    deployments = tmp_path / "deployments.json"
    deployments.write_text('{"deployments": {"chat-legacy": "gpt-35-turbo-0125"}}')
    model = load_deployment_map(deployments).model_for("chat-legacy")
    prices = _prices(table, model, JUN_2025)
    assert prices.model == "gpt-3.5-turbo"
    assert not prices.has_cached_input_price
    assert price_usage(prices, 2_000, 1_000, 1_000).total_cost == Decimal("0.0025")


def test_litellm_version_key_is_used(tmp_path: Path) -> None:
    doc = json.loads(LITELLM_SAMPLE)
    doc["version"] = "litellm-1.80.0"
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(doc))
    assert load_price_table(path).version == "litellm-1.80.0"


@pytest.mark.parametrize(
    ("model", "field", "value", "problem"),
    [
        ("gpt-4o", "input_cost_per_token", -2.5e-06, "expected a price, 0 to 1e9, at most 30 digits, got -0.0000025"),
        (
            "azure/gpt-4o-mini",
            "cache_read_input_token_cost",
            "cheap",
            'expected a price, 0 to 1e9, at most 30 digits, got "cheap"',
        ),
        ("gpt-3.5-turbo", "output_cost_per_token", True, "expected a price, 0 to 1e9, at most 30 digits, got true"),
    ],
)
def test_bad_litellm_entry(tmp_path: Path, model: str, field: str, value: Any, problem: str) -> None:
    doc = json.loads(LITELLM_SAMPLE)
    doc[model][field] = value
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(doc, indent=2))
    with pytest.raises(InputFileError) as caught:
        load_price_table(path)
    message = str(caught.value)
    lines = path.read_text().splitlines()
    model_line = lines.index(f'  "{model}": {{')
    line = next(number for number, text in enumerate(lines[model_line:], model_line + 1) if f'"{field}"' in text)
    assert f'{path}:{line}: ["{model}"].{field}: ' in message and problem in message, message


# --- bad native input -------------------------------------------------------------------------


def _native_doc() -> dict[str, Any]:
    return {
        "version": "test.1",
        "currency": "USD",
        "unit": "per_1m_tokens",
        "models": {
            "gpt-4o-mini": [{"effective_from": "2024-07-18", "prices": {"input": 0.15, "output": 0.6}}],
            "gpt-4o": [
                {"effective_from": "2024-05-13", "prices": {"input": 5, "output": 15}},
                {
                    "effective_from": "2024-08-06",
                    "prices": {"input": 2.5, "cached_input": 1.25, "output": 10},
                },
            ],
        },
    }


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "price-table.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def apply(doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        change(doc)
        return doc

    return apply


def _period(model: str, index: int, **values: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return _edit(lambda doc: doc["models"][model][index].update(values))


def _price(model: str, index: int, **values: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return _edit(lambda doc: doc["models"][model][index]["prices"].update(values))


BAD_NATIVE = [
    # (case id, edit, model or None, field, problem)
    ("missing price", _edit(lambda d: d["models"]["gpt-4o"][1]["prices"].pop("output")),
     "gpt-4o", "[1].prices.output", "missing; expected a price, 0 to 1e9, at most 30 digits"),
    ("negative price", _price("gpt-4o-mini", 0, input=-0.15),
     "gpt-4o-mini", "[0].prices.input", "expected a price, 0 to 1e9, at most 30 digits, got -0.15"),
    ("non-numeric price", _price("gpt-4o", 0, input="5.00"),
     "gpt-4o", "[0].prices.input", 'expected a price, 0 to 1e9, at most 30 digits, got "5.00"'),
    ("boolean price", _price("gpt-4o", 1, cached_input=True),
     "gpt-4o", "[1].prices.cached_input", "expected a price, 0 to 1e9, at most 30 digits, got true"),
    ("NaN price", _price("gpt-4o", 0, output=float("nan")),
     "gpt-4o", "[0].prices.output", "expected a price, 0 to 1e9, at most 30 digits, got NaN"),
    ("misspelt price key", _price("gpt-4o", 1, cache_input=1),
     "gpt-4o", "[1].prices.cache_input", "unknown field; expected some of cache_write, cached_input, input, output"),
    ("unknown currency, expected", _edit(lambda d: d.update(currency="USDOLLAR")),
     None, "currency", 'expected an ISO 4217 code such as USD or EUR (known: AED, '),
    ("unknown currency, got", _edit(lambda d: d.update(currency="USDOLLAR")),
     None, "currency", 'got "USDOLLAR"'),
    ("unknown period currency, expected", _period("gpt-4o", 0, currency="EURO"),
     "gpt-4o", "[0].currency", 'expected an ISO 4217 code such as USD or EUR (known: AED, '),
    ("unknown period currency, got", _period("gpt-4o", 0, currency="EURO"),
     "gpt-4o", "[0].currency", 'got "EURO"'),
    ("duplicate effective_from", _period("gpt-4o", 1, effective_from="2024-05-13"),
     "gpt-4o", "[1].effective_from", "two periods start on 2024-05-13"),
    ("overlapping periods", _period("gpt-4o", 0, effective_to="2024-09-01"),
     "gpt-4o", "[0].effective_to", "overlaps"),
    ("end before start", _period("gpt-4o", 1, effective_to="2024-08-01"),
     "gpt-4o", "[1].effective_to", "is not after effective_from"),
    ("unparseable effective_from", _period("gpt-4o", 1, effective_from="2024-13-01"),
     "gpt-4o", "[1].effective_from", 'expected an ISO date (YYYY-MM-DD, UTC) or datetime, got "2024-13-01"'),
    ("non-string effective_from", _period("gpt-4o", 1, effective_from=20240806),
     "gpt-4o", "[1].effective_from", "expected an ISO date (YYYY-MM-DD, UTC) or datetime, got 20240806"),
    ("missing effective_from", _edit(lambda d: d["models"]["gpt-4o-mini"][0].pop("effective_from")),
     "gpt-4o-mini", "[0].effective_from", "missing; expected an ISO date"),
    ("no periods", _edit(lambda d: d["models"].update({"gpt-4o": []})),
     "gpt-4o", "", "expected a non-empty list of price periods, got a list"),
    ("missing prices object", _edit(lambda d: d["models"]["gpt-4o-mini"][0].pop("prices")),
     "gpt-4o-mini", "[0].prices", "missing; expected an object of prices: input, output, optional cached_input"),
    ("unknown unit", _edit(lambda d: d.update(unit="per_1000_tokens")), None, "unit",
     'expected one of per_1k_tokens, per_1m_tokens, per_token, got "per_1000_tokens"'),
    ("empty models", _edit(lambda d: d.update(models={})), None, "models", "expected a non-empty object"),
    ("missing version", _edit(lambda d: d.pop("version")), None, "version", "missing; expected a non-empty string"),
    ("unknown deployment type", _period("gpt-4o", 1, deployment_type="DataZone"),
     "gpt-4o", "[1].deployment_type", 'expected one of GlobalStandard, DataZoneStandard, Standard, GlobalBatch, '
     'DataZoneBatch, GlobalProvisionedManaged, DataZoneProvisionedManaged, ProvisionedManaged, got "DataZone"'),
    ("overlapping periods of one type", _edit(lambda d: [
        d["models"]["gpt-4o"][0].update(deployment_type="DataZoneStandard", effective_to="2024-09-01"),
        d["models"]["gpt-4o"][1].update(deployment_type="DataZoneStandard")]),
     "gpt-4o", "[0].effective_to", "overlaps the period from 2024-08-06"),
    ("two periods of one type start together", _edit(lambda d: [
        d["models"]["gpt-4o"][0].update(deployment_type="Standard"),
        d["models"]["gpt-4o"][1].update(deployment_type="Standard", effective_from="2024-05-13")]),
     "gpt-4o", "[1].effective_from", "two periods start on 2024-05-13"),
    ("unknown top-level key", _edit(lambda d: d.update(model={})), None, "model",
     "unknown field; expected some of currency, models, note, source, unit, version"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "model", "field", "problem"),
    [case[1:] for case in BAD_NATIVE],
    ids=[case[0] for case in BAD_NATIVE],
)
def test_bad_native_table_fails_at_load_naming_file_model_and_field(
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], dict[str, Any]],
    model: str | None,
    field: str,
    problem: str,
) -> None:
    path = _write(tmp_path, edit(_native_doc()))
    with pytest.raises(InputFileError) as caught:
        load_price_table(path)
    error = caught.value
    message = str(error)
    assert isinstance(error, ValueError)
    assert message.startswith(str(path)), message
    [found] = error.problems  # one problem, one line
    where = field if model is None else f'models["{model}"]{field}'
    assert (found.field, found.source) == (where, str(path)), message
    assert f"{path}:{found.line}: {where}: " in message and problem in message, message
    # The line is in the model's entry in the file (the entry of the field, when the field is there).
    lines = path.read_text().splitlines()
    assert found.line is not None
    if model is not None:
        first = next(index for index, line in enumerate(lines) if line.startswith(f'    "{model}": ['))
        last = first if lines[first].endswith("[]") else lines.index("    ]" if model == "gpt-4o" else "    ],", first)
        assert first < found.line <= last + 1
    leaf = field.rsplit(".", 1)[-1]
    if leaf and leaf.isidentifier() and "missing" not in problem:
        assert f'"{leaf}"' in lines[found.line - 1], lines[found.line - 1]


def test_unchanged_native_doc_loads(tmp_path: Path) -> None:
    table = load_price_table(_write(tmp_path, _native_doc()))
    assert table.version == "test.1"
    assert table.models == ("gpt-4o", "gpt-4o-mini")


def test_a_typed_period_prices_its_type_and_the_untyped_one_only_global_standard(tmp_path: Path) -> None:
    doc = _native_doc()
    doc["models"]["gpt-4o"] += [  # the untyped periods stay; Data Zone gets its own, from a later date
        {"effective_from": "2024-08-06", "deployment_type": "DataZoneStandard",
         "prices": {"input": 2.75, "output": 11}},
        {"effective_from": "2024-05-13", "deployment_type": "GlobalBatch", "effective_to": "2024-06-01",
         "prices": {"input": 1.25, "output": 5}},
    ]  # fmt: skip
    table = load_price_table(_write(tmp_path, doc))

    def input_price(deployment_type: str | None, at: datetime) -> Decimal:
        return _prices_typed(table, "gpt-4o", at, deployment_type).input_price_per_million_tokens

    assert input_price("DataZoneStandard", JUN_2025) == Decimal("2.75")
    for global_or_unknown in (None, "GlobalStandard"):  # the untyped periods are Global Standard list prices
        assert input_price(global_or_unknown, JUN_2025) == Decimal("2.5")
    # A type without a period of its own in force is unpriced, never priced as Global: PTU bills per hour.
    assert table.prices_for("gpt-4o", JUN_2025, "ProvisionedManaged") is None
    assert table.prices_for("gpt-4o", datetime(2024, 7, 1, tzinfo=UTC), "DataZoneStandard") is None  # not yet
    assert input_price("GlobalBatch", datetime(2024, 5, 20, tzinfo=UTC)) == Decimal("1.25")
    assert table.prices_for("gpt-4o", datetime(2024, 6, 1, tzinfo=UTC), "GlobalBatch") is None  # ended
    assert table.prices_for("gpt-4o", datetime(2024, 5, 1, tzinfo=UTC), "DataZoneStandard") is None  # before any
    data_zone = _prices_typed(table, "gpt-4o", JUN_2025, "DataZoneStandard")
    assert (data_zone.deployment_type, data_zone.effective_to) == ("DataZoneStandard", None)
    assert _prices_typed(table, "gpt-4o", JUN_2025, "DataZoneStandard").model == "gpt-4o"
    assert len(table.periods("gpt-4o")) == 4


def _prices_typed(table: PriceTable, model: str, at: datetime, deployment_type: str | None) -> Any:
    prices = table.prices_for(model, at, deployment_type)
    assert prices is not None, f"{model} ({deployment_type}) should be priced at {at}"
    return prices


def test_other_units_are_converted_per_token(tmp_path: Path) -> None:
    doc = _native_doc()
    doc["unit"] = "per_1k_tokens"
    doc["models"] = {"m": [{"effective_from": "2024-01-01", "currency": "EUR",
                            "prices": {"input": 0.0025, "output": 0.01}}]}  # fmt: skip
    prices = _prices(load_price_table(_write(tmp_path, doc)), "m", JUN_2025)
    assert (prices.input_price_per_token, prices.currency) == (Decimal("0.0000025"), "EUR")
    doc["unit"] = "per_token"
    prices = _prices(load_price_table(_write(tmp_path, doc)), "m", JUN_2025)
    assert prices.output_price_per_token == Decimal("0.01")


def test_duplicate_model_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "price-table.json"
    path.write_text(
        '{"version": "1", "currency": "USD", "unit": "per_token", "models": {\n'
        '  "gpt-4o": [{"effective_from": "2024-01-01", "prices": {"input": 1, "output": 1}}],\n'
        '  "gpt-4o": [{"effective_from": "2024-01-01", "prices": {"input": 0, "output": 0}}]}}\n'
    )
    with pytest.raises(InputFileError, match=r'price-table\.json:3: models\["gpt-4o"\]: given more than once'):
        load_price_table(path)


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "price-table.json"
    path.write_text('{\n  "version": "1",\n  "currency": "USD"\n  "unit": "per_token"\n}\n')
    with pytest.raises(InputFileError) as caught:
        load_price_table(path)
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (4, 3)
    assert str(caught.value).startswith(f"{path}: invalid price table:\n{path}:4:3: not valid JSON")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("[]", "expected a JSON object at the top level"), ('{"gpt-4o": {"max_tokens": 5}}', "not a price table")],
)
def test_not_a_price_table(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "price-table.json"
    path.write_text(text)
    with pytest.raises(InputFileError, match=problem):
        load_price_table(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read"):
        load_price_table(tmp_path / "nope.json")
