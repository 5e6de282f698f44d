"""The cost frame's bulk paths give exactly what the per-row definitions give.

price_frame prices many rows at once in integer units; every figure must equal price_usage (exact
Decimals) rounded once by shared/money.to_micros. upload_records and upload_windows must build and send the
same rows however they batch and parallelise.
"""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

import numpy as np
import pandas as pd
import pytest
from azure.core.exceptions import HttpResponseError

from shared.costs.deployments import Deployment
from shared.costs.frame import (
    COST_COLUMNS,
    SUMMARY_TOKEN_COLUMNS,
    _price_group,
    price_frame,
    upload_records,
    usage_frame,
)
from shared.costs.outputs import CostRunSummary
from shared.costs.pricing import DeploymentMap, ModelPrices, load_price_table, price_usage
from shared.costs.query import USAGE_COLUMNS
from shared.logs.upload import UploadPolicy, gzip_body, request_bodies, upload_windows
from shared.money import to_micros
from shared.windows import Window
from tests import ROOT

START = datetime(2026, 11, 27, tzinfo=UTC)
H = timedelta(hours=1)
PRICE_TABLE = ROOT / "shared" / "costs" / "prices" / "catalog.json"
WINDOWS = [Window(START + hour * H, START + (hour + 1) * H) for hour in range(3)]


def _prices(input_price: str, cached_price: str, output_price: str) -> ModelPrices:
    return ModelPrices(
        model="m",
        effective_from=START - 365 * 24 * H,
        effective_to=None,
        input_price_per_token=Decimal(input_price),
        cached_input_price_per_token=Decimal(cached_price),
        output_price_per_token=Decimal(output_price),
        currency="USD",
        has_cached_input_price=True,
    )


def _reference(prices: ModelPrices, prompt: int, cached: int, completion: int) -> list[int]:
    cost = price_usage(prices, prompt, cached, completion)
    return [to_micros(amount) for amount in (cost.prompt_cost, cost.cached_prompt_cost, cost.completion_cost,
                                             cost.total_cost)]


@pytest.mark.parametrize(
    "per_token",
    [
        ("0.0000025", "0.00000125", "0.00001"),  # gpt-4o per 1M: 2.50 / 1.25 / 10.00
        ("0.0000005", "0.00000025", "0.0000015"),  # odd token counts land exactly on half a micro
        ("1.25E-7", "3E-8", "0.000000333333333333333333333333"),  # LiteLLM-style, many digits
        ("2", "1", "3"),  # fewer decimals than micros
    ],
)
@pytest.mark.parametrize("extremes", [False, True])
def test_bulk_pricing_equals_price_usage_rounded_once(per_token: tuple[str, str, str], extremes: bool) -> None:
    prices = _prices(*per_token)
    rng = np.random.default_rng(5)
    # Near 2^63 the bulk path switches from int64 to Python integers; both must be exact.
    huge = [10**12, 9 * 10**15] if extremes else []
    prompt = np.concatenate([rng.integers(0, 10**7, 500), [0, 1, 3, 5, 7], huge]).astype("int64")
    cached = (prompt * rng.random(prompt.size)).astype("int64")
    completion = np.concatenate([rng.integers(0, 10**6, 500), [0, 1, 1, 3, 5], huge]).astype("int64")
    bulk = _price_group(prices, prompt, cached, completion)
    if not extremes and len(per_token[2]) < 12:
        assert bulk[0].dtype == np.int64  # the fast path, for realistic prices and counts
    for row in range(prompt.size):
        expected = _reference(prices, int(prompt[row]), int(cached[row]), int(completion[row]))
        assert [int(column[row]) for column in bulk] == expected, row


def test_bulk_pricing_refuses_negative_tokens_like_price_usage() -> None:
    tokens = np.array([5, -1], dtype="int64")
    with pytest.raises(ValueError, match="must not be negative"):
        _price_group(_prices("0.000001", "0.000001", "0.000001"), tokens, np.zeros(2, "int64"), tokens)


def _usage_columns() -> dict[str, list[Any]]:
    return dict(zip(USAGE_COLUMNS, map(list, zip(*_usage_rows(), strict=True)), strict=True))


def _usage_rows() -> list[tuple[Any, ...]]:
    rows = []
    for hour in range(3):
        for user in range(40):
            prompt = 1000 + 37 * user + hour
            cached = prompt // 3 if user % 4 else prompt + 1  # every fourth row is inconsistent
            completion = 11 * user + 1
            deployment = ("gpt-4o", "gpt-4o-mini", "mystery-model")[user % 3]
            # One of the two requests streamed (estimated) on odd users; cached tokens metered on
            # both requests of every fifth user (llm-emit-token-metric), on none otherwise.
            estimated = (1, prompt // 2, completion // 2) if user % 2 else (0, 0, 0)
            metered = 2 if user % 5 == 0 else 0
            rows.append((START + hour * H, deployment, "sub", f"user-{user}", "api", 2, prompt, cached, completion,
                         prompt + completion, *estimated, estimated[1] + estimated[2], metered))
    return rows


def test_priced_frame_rows_equal_the_per_row_definition() -> None:
    prices = load_price_table(PRICE_TABLE)
    priced = price_frame(usage_frame(_usage_columns()), prices, DeploymentMap(), windows=WINDOWS)
    frame = priced.frame
    assert priced.unpriced_models == ("mystery-model",)
    assert priced.inconsistent_rows == sum(1 for row in _usage_rows() if row[7] > row[6] and row[1] != "mystery-model")
    for row in frame.itertuples(index=False):
        model_prices = prices.prices_for(row.Model, row.WindowStart.to_pydatetime())
        if model_prices is None or row.CachedPromptTokens > row.PromptTokens:
            assert row.Unpriced and pd.isna(row.Currency)
            assert all(pd.isna(getattr(row, f"{name}Micros")) for name in COST_COLUMNS)
            continue
        expected = _reference(model_prices, row.PromptTokens, row.CachedPromptTokens, row.CompletionTokens)
        # The estimated part: its prompt at the input price (an estimate has no cached tokens),
        # never more than the whole.
        estimated = _reference(model_prices, row.EstimatedPromptTokens, 0, row.EstimatedCompletionTokens)[3]
        expected.append(min(estimated, expected[3]))
        assert [getattr(row, f"{name}Micros") for name in COST_COLUMNS] == expected
        assert (row.EstimatedCostMicros > 0) == (row.EstimatedRequests > 0)
        assert not row.Unpriced and row.Currency == "USD"
    assert frame["CacheDiscountMetered"].tolist() == [row[-1] == 2 for row in _usage_rows()]


def test_each_deployment_is_priced_at_its_deployment_types_prices() -> None:
    """Data Zone at the Data Zone price, Global at Global, Batch at Batch, a pinned model version at that
    version's price, unknown type at the untyped (Global) price, each to the micro-unit, from the shipped
    catalog; an unpriced one is named by its whole price key."""
    prices = load_price_table(PRICE_TABLE)
    deployments = DeploymentMap({"terra-file": "gpt-5.6-terra"}).with_discovered([
        Deployment("terra-eu", "gpt-5.6-terra", "account", "2026-07-09", "DataZoneStandard", 10),
        Deployment("terra-global", "gpt-5.6-terra", "account", "2026-07-09", "GlobalStandard", 10),
        Deployment("4o-batch", "gpt-4o", "account", "2024-11-20", "GlobalBatch", 10),
        Deployment("4o-may", "gpt-4o", "account", "2024-05-13", "GlobalStandard", 10),
        Deployment("lost", "gpt-9", "account", "2026-01-01", "DataZoneStandard", 10),
    ])  # fmt: skip
    names = ("terra-eu", "terra-global", "terra-file", "4o-batch", "4o-may", "lost")
    rows = [(START, name, "sub", "u", "api", 1, 1_234_567, 234_567, 345_679, 1_580_246, 0, 0, 0, 0, 1)
            for name in names]  # fmt: skip
    columns = {name: list(values) for name, values in zip(USAGE_COLUMNS, zip(*rows, strict=True), strict=True)}
    priced = price_frame(usage_frame(columns), prices, deployments, windows=WINDOWS)
    # (1,234,567 - 234,567) x input + 234,567 x cached + 345,679 x output, USD per 1M tokens, rounded once
    # (figures by hand from LiteLLM 1.110.2's map):
    # Data Zone terra 2.20 / 0.22 / 13.20 -> 6.81456754; Global terra 2.00 / 0.20 / 12.00 -> 6.1950614;
    # gpt-4o Global Batch 1.25 / (no cached price: 1.25) / 5.00 -> 3.27160375 (rounds up to 3.271604);
    # gpt-4o version 2024-05-13 5.00 / (none: 5.00) / 15.00 -> 11.35802.
    assert priced.frame["TotalCostMicros"].tolist() == [6_814_568, 6_195_061, 6_195_061, 3_271_604, 11_358_020, pd.NA]
    assert priced.frame["DeploymentType"].tolist() == [
        "DataZoneStandard", "GlobalStandard", "", "GlobalBatch", "GlobalStandard", "DataZoneStandard"
    ]  # fmt: skip
    assert priced.frame["CostBasis"].tolist() == ["usage"] * 5 + [""]
    for row in priced.frame.itertuples(index=False):
        if row.Deployment == "lost":
            continue
        entry = deployments.deployment(row.Deployment)
        version = entry.model_version if entry is not None else None
        same_lookup = prices.prices_for(row.Model, START, deployments.deployment_type_for(row.Deployment), version)
        assert same_lookup is not None
        assert row.TotalCostMicros == _reference(same_lookup, 1_234_567, 234_567, 345_679)[3]
    assert priced.unpriced_models == ("gpt-9 (version 2026-01-01, DataZoneStandard)",)


def test_estimated_cost_is_never_more_than_the_total() -> None:
    # Every token counted as estimated (no Streamed dimension) while llm-emit-token-metric metered a
    # cache discount: the estimate priced without the discount would exceed the total.
    columns = dict(zip(USAGE_COLUMNS, map(list, zip(
        (START, "gpt-4o", "sub", "u", "api", 2, 4000, 3000, 100, 4100, 2, 4000, 100, 4100, 2), strict=True
    )), strict=True))  # fmt: skip
    [row] = price_frame(
        usage_frame(columns), load_price_table(PRICE_TABLE), DeploymentMap(), windows=WINDOWS
    ).frame.itertuples()
    assert row.CacheDiscountMetered and row.EstimatedCostMicros == row.TotalCostMicros > 0


def test_upload_records_carry_the_frame_exactly() -> None:
    frame = price_frame(usage_frame(_usage_columns()), load_price_table(PRICE_TABLE),
                        DeploymentMap(), windows=WINDOWS).frame
    window = Window(START + H, START + 2 * H)
    records = [json.loads(text) for text in
               upload_records(frame, window=window, final=True, revision=START + 3 * H, price_version="v1")]
    rows = frame[frame["WindowStart"] == pd.Timestamp(window.start)]
    assert len(records) == len(rows) == 40
    for record, row in zip(records, rows.itertuples(index=False), strict=True):
        assert record["WindowStart"] == "2026-11-27T01:00:00.000000Z" and record["RevisionRows"] == 40
        tokens = SUMMARY_TOKEN_COLUMNS
        assert [record[name] for name in tokens] == [getattr(row, name) for name in tokens]
        assert all(type(record[name]) is int for name in SUMMARY_TOKEN_COLUMNS)
        assert "CacheMeteredRequests" not in record
        assert record["CacheDiscountMetered"] is bool(row.CacheDiscountMetered)
        for name in COST_COLUMNS:
            micros = getattr(row, f"{name}Micros")
            assert record[name] == (None if pd.isna(micros) else int(micros) / 1_000_000)
        assert record["Currency"] == (None if row.Unpriced else "USD") and record["Unpriced"] is bool(row.Unpriced)
        # No deployment map entry: type unknown; priced rows by their tokens, unpriced ones by nothing.
        assert (record["DeploymentType"], record["CostBasis"]) == ("", "" if row.Unpriced else "usage")


class _RecordingClient:
    """Accepts every upload except rows of `failing` windows; notes which threads called."""

    def __init__(self, failing: str) -> None:
        self.failing, self.rows = failing, 0
        self.threads: set[int] = set()
        self.lock = threading.Lock()

    def upload(self, rule_id: str, stream: str, logs: IO[bytes], **kwargs: Any) -> None:
        rows = json.loads(gzip.decompress(logs.read()))
        with self.lock:
            self.threads.add(threading.get_ident())
        if any(row["WindowStart"] == self.failing for row in rows):
            raise HttpResponseError("503")
        with self.lock:
            self.rows += len(rows)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrent_uploads_report_like_sequential_ones(concurrency: int) -> None:
    windows = [(START + hour * H, [json.dumps({"WindowStart": f"w{hour}", "n": n}) for n in range(25)])
               for hour in range(6)]
    client = _RecordingClient(failing="w2")
    policy = UploadPolicy(what="cost summary", rule_id="dcr", stream="s", chunk_rows=10, attempts=2,
                          retry_delay_seconds=0, concurrency=concurrency)
    report = upload_windows(client, policy, windows, sleep=lambda _: None)  # type: ignore[arg-type]
    assert report.windows_uploaded == [START + hour * H for hour in (0, 1, 3, 4, 5)]
    assert report.windows_failed == [START + 2 * H]
    assert report.rows_uploaded == client.rows == 5 * 25
    assert report.retries == 3  # each of w2's three chunks was retried once
    assert report.problems == ["window 2026-11-27 02:00: 25 of 25 rows not accepted"]
    assert len(client.threads) <= concurrency


@pytest.mark.parametrize("max_bytes", [300, 4096, 1024 * 1024])
def test_request_bodies_cover_every_row_once_within_the_limit(max_bytes: int) -> None:
    rows = [{"UserId": "u" * (n % 97), "n": n, "cost": n / 7} for n in range(3000)]
    rows.insert(1500, {"UserId": "x" * 2 * max_bytes, "n": -1, "cost": None})  # too large on its own
    texts = [json.dumps(row, separators=(",", ":")) for row in rows]
    sent: list[dict[str, Any]] = []
    for body, part in request_bodies(texts, max_bytes):
        decoded = json.loads(gzip.decompress(gzip_body(body)))
        assert decoded == [json.loads(text) for text in part]
        assert len(body) <= max_bytes or len(part) == 1
        # Filled: the next row would not have fitted.
        if len(sent) + len(part) < len(texts):
            assert len(body) + 1 + len(texts[len(sent) + len(part)]) > max_bytes
        sent.extend(decoded)
    assert sent == rows


def test_models_that_bill_cache_writes_report_what_unmetered_writes_could_add() -> None:
    """APIM meters no cache writes: the run prices the prompt at input and reports the bound, labelled."""
    deployments = DeploymentMap().with_discovered([
        Deployment("luna", "gpt-5.6-luna", "account", "2026-07-09", "GlobalStandard", 10),
        Deployment("4o", "gpt-4o", "account", "2024-11-20", "GlobalStandard", 10),
    ])  # fmt: skip
    rows = [(START + hour * H, name, "sub", "u", "api", 1, 1_234_567, 234_567, 345_679, 1_580_246, 0, 0, 0, 0, 1)
            for hour in range(2) for name in ("luna", "4o")]  # fmt: skip
    columns = {name: list(values) for name, values in zip(USAGE_COLUMNS, zip(*rows, strict=True), strict=True)}
    priced = price_frame(usage_frame(columns), load_price_table(PRICE_TABLE), deployments, windows=WINDOWS)
    # luna (LiteLLM azure/gpt-5.6-luna): cache write 0.25 vs input 0.20 per 1M; 2 x 1,000,000 uncached prompt
    # tokens -> at most 0.10 USD more. gpt-4o bills no cache writes: nothing.
    assert priced.cache_write_exposure == {"USD": Decimal("0.1")}
    luna = priced.frame[priced.frame["Deployment"] == "luna"]
    assert luna["PromptCostMicros"].tolist() == [200_000, 200_000]  # priced at input, as metered
    summary = CostRunSummary(started_at=START, revision=START, price_version="v", windows=[],
                             cache_write_exposure_by_currency=dict(priced.cache_write_exposure))  # fmt: skip
    assert "cache writes not metered: up to 0.10 USD more; " in summary.line()
