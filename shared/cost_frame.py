"""The cost summary frame: summarized token usage -> priced rows, one per window x key (pandas).

Rows come from shared/cost_query.py (one per window x deployment x subscription x user x API).
Each gets its model (deployment map), the prices in force at its window's start, and its costs:
exact Decimals from shared/pricing.price_usage, rounded once (round_summary_cost, 6 decimals) and
kept as integer micro-units of the currency, so every later sum (window totals, day- and
month-to-date) is exact integer arithmetic. A row whose model has no price (or whose usage is
inconsistent: cached > prompt tokens) is flagged Unpriced with null costs, never priced at zero.

Import this module only inside a run: it imports pandas.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from shared.pricing import DeploymentMap, ModelPrices, PriceTable, price_usage, round_summary_cost
from shared.windows import Window

log = logging.getLogger(__name__)

MICROS_PER_UNIT = 1_000_000
KEY_COLUMNS = ("Deployment", "SubscriptionId", "UserId", "ApiId")
TOKEN_COLUMNS = ("Requests", "PromptTokens", "CachedPromptTokens", "CompletionTokens", "TotalTokens")
# Cost columns of the summary table; the frame holds them as integer micro-units in "<name>Micros".
COST_COLUMNS = ("PromptCost", "CachedPromptCost", "CompletionCost", "TotalCost")
_MICROS = tuple(f"{name}Micros" for name in COST_COLUMNS)


@dataclass(frozen=True)
class PricedUsage:
    """The priced frame plus what a run reports about pricing."""

    frame: pd.DataFrame  # WindowStart, Model, KEY_COLUMNS, TOKEN_COLUMNS, *CostMicros, Currency, Unpriced
    unpriced_models: tuple[str, ...]
    inconsistent_rows: int


def usage_frame(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Query rows -> typed frame (UTC window starts, int64 token counts)."""
    frame = pd.DataFrame(list(rows), columns=list(columns))
    frame["WindowStart"] = pd.to_datetime(frame["WindowStart"], utc=True)
    for name in TOKEN_COLUMNS:
        frame[name] = frame[name].astype("int64")
    for name in KEY_COLUMNS:
        frame[name] = frame[name].astype(str)
    return frame


def price_frame(usage: pd.DataFrame, prices: PriceTable, deployments: DeploymentMap) -> PricedUsage:
    frame = usage.copy()
    models = {deployment: deployments.model_for(deployment) for deployment in frame["Deployment"].unique()}
    frame.insert(1, "Model", frame["Deployment"].map(models))
    # Prices in force at each window's start, looked up once per window x model.
    in_force: dict[tuple[datetime, str], ModelPrices | None] = {}
    for start, model in frame[["WindowStart", "Model"]].drop_duplicates().itertuples(index=False):
        in_force[(start, model)] = prices.prices_for(model, start.to_pydatetime())

    costs: list[list[int | None]] = [[] for _ in _MICROS]
    currencies: list[str | None] = []
    unpriced_models: set[str] = set()
    inconsistent = 0
    for start, model, prompt, cached, completion in zip(
        frame["WindowStart"],
        frame["Model"],
        frame["PromptTokens"].tolist(),
        frame["CachedPromptTokens"].tolist(),
        frame["CompletionTokens"].tolist(),
        strict=True,
    ):
        model_prices = in_force[(start, model)]
        breakdown = None
        if model_prices is None:
            unpriced_models.add(model)
        elif cached > prompt:
            inconsistent += 1
        else:
            breakdown = price_usage(model_prices, prompt, cached, completion)
        if breakdown is None:
            for column in costs:
                column.append(None)
            currencies.append(None)
            continue
        amounts = (
            breakdown.prompt_cost,
            breakdown.cached_prompt_cost,
            breakdown.completion_cost,
            breakdown.total_cost,
        )
        for column, amount in zip(costs, amounts, strict=True):
            column.append(to_micros(amount))
        currencies.append(breakdown.currency)
    for name, values in zip(_MICROS, costs, strict=True):
        frame[name] = pd.array(values, dtype="Int64")
    frame["Currency"] = pd.array(currencies, dtype="string")
    frame["Unpriced"] = frame["Currency"].isna()
    if inconsistent:
        log.warning(
            "%d usage rows report more cached than prompt tokens; flagged unpriced instead of guessing",
            inconsistent,
        )
    return PricedUsage(frame, tuple(sorted(unpriced_models)), inconsistent)


def to_micros(amount: Decimal) -> int:
    """The summary-row amount (rounded once, ROUND_HALF_EVEN) as integer micro-units."""
    return int(round_summary_cost(amount).scaleb(6))


def from_micros(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def window_fingerprints(frame: pd.DataFrame) -> dict[datetime, str]:
    """Per window, a digest of its rows' content (order independent): an unchanged recomputation
    has the same digest, so it need not be uploaded again."""
    if frame.empty:
        return {}
    content = frame[["Model", *KEY_COLUMNS, *TOKEN_COLUMNS, *_MICROS, "Currency"]]
    hashes = pd.util.hash_pandas_object(content, index=False).astype("uint64")
    grouped = pd.DataFrame({"WindowStart": frame["WindowStart"], "h": hashes}).groupby("WindowStart")["h"]
    result: dict[datetime, str] = {}
    for start, values in grouped:
        digest = 0
        for value in values.tolist():
            digest = (digest + int(value)) % (1 << 64)  # a sum: independent of row order
        result[pd.Timestamp(start).to_pydatetime()] = f"{len(values)}:{digest:016x}"
    return result


def upload_records(
    frame: pd.DataFrame,
    *,
    window: Window,
    final: bool,
    revision: datetime,
    price_version: str,
) -> list[dict[str, Any]]:
    """The TokenCostSummary_CL rows of one window (JSON-ready: ISO datetimes, floats, None)."""
    rows = frame[frame["WindowStart"] == pd.Timestamp(window.start)]
    window_minutes = int((window.end - window.start).total_seconds() // 60)
    revision_text = _iso(revision)
    common: dict[str, Any] = {
        "TimeGenerated": revision_text,
        "WindowStart": _iso(window.start),
        "WindowEnd": _iso(window.end),
        "WindowMinutes": window_minutes,
        "IsFinal": final,
        "Revision": revision_text,
        "RevisionRows": len(rows),
        "PriceVersion": price_version,
    }
    columns = ["Model", *KEY_COLUMNS, *TOKEN_COLUMNS, *_MICROS, "Currency", "Unpriced"]
    records: list[dict[str, Any]] = []
    for values in rows[columns].itertuples(index=False, name=None):
        record = dict(common)
        record.update(zip(columns[: 1 + len(KEY_COLUMNS)], values[: 1 + len(KEY_COLUMNS)], strict=True))
        offset = 1 + len(KEY_COLUMNS)
        for name, value in zip(TOKEN_COLUMNS, values[offset : offset + len(TOKEN_COLUMNS)], strict=True):
            record[name] = int(value)
        offset += len(TOKEN_COLUMNS)
        for name, value in zip(COST_COLUMNS, values[offset : offset + len(COST_COLUMNS)], strict=True):
            # micros / 10^6 is the double nearest the 6-decimal amount (micros < 2^53).
            record[name] = None if value is pd.NA else int(value) / MICROS_PER_UNIT
        currency, unpriced = values[offset + len(COST_COLUMNS) :]
        record["Currency"] = None if currency is pd.NA else str(currency)
        record["Unpriced"] = bool(unpriced)
        records.append(record)
    return records


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
