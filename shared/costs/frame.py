"""The cost summary frame: summarized token usage -> priced rows, one per window x key (pandas).

Rows come from shared/costs/query.py (one per window x deployment x subscription x user x API).
Each gets its model, model version and deployment type (deployment map), the prices in force for them at its
window's start (PriceTable.prices_for: the version's own prices before every version's; the type's own prices,
Global Standard and unknown types the untyped ones), and its costs:
exact Decimals from shared/costs/pricing.price_usage, rounded once (shared/money.round_summary_cost,
6 decimals) and kept as integer micro-units of the currency, so every later sum (window totals, day- and
month-to-date) is exact integer arithmetic. A row whose model has no price (or whose usage is
inconsistent: cached > prompt tokens) is flagged Unpriced with null costs, never priced at zero.

Provisioned (PTU) deployments have no per-token price: each planned window's PTU-hour cost is split over
their rows by token share, and a window nobody called one in gets a row of its own (shared/costs/ptu.py).
Every row says how it was priced: DeploymentType (the ARM sku.name, "" unknown) and CostBasis ("usage":
tokens x per-token prices; "ptu_allocated"; "ptu_unused"; "" when unpriced).

Import this module only inside a run: it imports pandas.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.costs.catalog import PROVISIONED_TYPES
from shared.costs.outputs import NO_CONSUMER
from shared.costs.pricing import DeploymentMap, ModelPrices, PriceTable, price_usage
from shared.costs.ptu import ALLOCATED, UNUSED, price_provisioned
from shared.costs.query import KEY_COLUMNS, TOKEN_COLUMNS
from shared.logs.rows import encode_rows
from shared.money import MICROS_PER_UNIT, MONEY_CONTEXT, SUMMARY_COST_DECIMAL_PLACES
from shared.windows import Window

log = logging.getLogger(__name__)

# Cost columns of the summary table; the frame holds them as integer micro-units in "<name>Micros".
# EstimatedCost is the part of TotalCost that rests on tokens APIM estimated (streamed calls):
# their prompt at the input price (an estimate knows no cached tokens), their completion at output.
COST_COLUMNS = ("PromptCost", "CachedPromptCost", "CompletionCost", "TotalCost", "EstimatedCost")
_MICROS_COLUMNS = tuple(f"{name}Micros" for name in COST_COLUMNS)
USAGE_PRICED = "usage"  # CostBasis of a row priced as its tokens x per-token prices
# How a row was priced: text columns of the summary table next to the model.
BASIS_COLUMNS = ("DeploymentType", "CostBasis")
# Token columns the summary table keeps; CacheMeteredRequests becomes the CacheDiscountMetered flag.
SUMMARY_TOKEN_COLUMNS = tuple(name for name in TOKEN_COLUMNS if name != "CacheMeteredRequests")


@dataclass(frozen=True)
class PricedUsage:
    """The priced frame plus what a run reports about pricing."""

    frame: pd.DataFrame  # WindowStart, Model, KEY_COLUMNS, TOKEN_COLUMNS, *CostMicros, Currency, Unpriced,
    # CacheDiscountMetered, DeploymentType, CostBasis
    # Each as its price key, "model (version v, type)" (Deployment.price_key); a provisioned one with the reason.
    unpriced_models: tuple[str, ...]
    inconsistent_rows: int
    # Per currency, how much more the priced usage could cost if every prompt token not read from the cache
    # had been a cache write: the models that bill writes above input, whose writes the gateway cannot see.
    cache_write_exposure: Mapping[str, Decimal] = field(default_factory=dict)


def usage_frame(columns: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Usage columns (USAGE_COLUMNS, shared/costs/query.py) -> typed frame (UTC window starts,
    int64 token counts, str keys)."""
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    # A summary repeats a few window starts: convert each distinct one once.
    codes, starts = pd.factorize(frame["WindowStart"])
    frame["WindowStart"] = pd.to_datetime(pd.Series(starts, dtype=object), utc=True).take(codes).reset_index(drop=True)
    for name in TOKEN_COLUMNS:
        frame[name] = frame[name].astype("int64")
    for name in KEY_COLUMNS:
        frame[name] = frame[name].astype(str)
    return frame


def price_frame(
    usage: pd.DataFrame, prices: PriceTable, deployments: DeploymentMap, *, windows: Sequence[Window]
) -> PricedUsage:
    """Costs for every row, priced per (window start, model, version and type): the prices in force at a
    window's start are looked up once per group and applied to all of its rows at once (see _price_group).
    The version is not a column of the frame (nor of the summary table): it only picks the prices.
    Provisioned deployments are priced per window of `windows` (the run's planned windows; their rows must lie
    in them), the windows nobody called one in added as rows of their own (shared/costs/ptu.py)."""
    frame = usage.copy()
    names = frame["Deployment"].unique()
    models = {deployment: deployments.model_for(deployment) for deployment in names}
    # What prices a deployment besides its model: (version, type), "" for unknown (groupby drops None keys;
    # prices_for gets None back: every version, the untyped prices).
    lookups = {deployment: _lookup_of(deployments, deployment) for deployment in names}
    frame.insert(1, "Model", frame["Deployment"].map(models))
    tokens = tuple(
        frame[name].to_numpy(dtype="int64")
        for name in (
            "PromptTokens",
            "CachedPromptTokens",
            "CompletionTokens",
            "EstimatedPromptTokens",
            "EstimatedCompletionTokens",
        )
    )
    micros = [np.zeros(len(frame), dtype="int64") for _ in _MICROS_COLUMNS]
    priced = np.zeros(len(frame), dtype=bool)
    currencies = np.full(len(frame), None, dtype=object)
    unpriced_models: set[str] = set()
    inconsistent = 0
    exposure: dict[str, Decimal] = {}
    keys = [frame["WindowStart"], frame["Model"], frame["Deployment"].map(lookups).rename("Lookup")]
    groups = frame.groupby(keys, sort=False).indices if len(frame) else {}
    for (start, model, lookup), positions in groups.items():
        version, deployment_type = lookup.split("|")
        if deployment_type in PROVISIONED_TYPES:  # no per-token price: PTU-hours, below
            continue
        at = pd.Timestamp(start).to_pydatetime()
        model_prices = prices.prices_for(model, at, deployment_type or None, version or None)
        if model_prices is None:
            unpriced_names = frame["Deployment"].iloc[positions].unique()
            unpriced_models.update(deployments.price_key_for(name) for name in unpriced_names)
            continue
        prompt, cached, completion, estimated_prompt, estimated_completion = (column[positions] for column in tokens)
        # More cached (or estimated) tokens than tokens is inconsistent usage: flagged unpriced
        # instead of guessing.
        consistent = (cached <= prompt) & (estimated_prompt <= prompt) & (estimated_completion <= completion)
        inconsistent += int((~consistent).sum())
        positions, prompt, cached, completion, estimated_prompt, estimated_completion = (
            part[consistent] for part in (positions, prompt, cached, completion, estimated_prompt, estimated_completion)
        )
        amounts = _price_group(model_prices, prompt, cached, completion)
        estimated = _price_group(model_prices, estimated_prompt, np.zeros_like(estimated_prompt), estimated_completion)
        # A part of the cost, never more than the whole: without the Streamed dimension every token
        # counts as estimated, while llm-emit-token-metric may still have metered a cache discount.
        for column, values in zip(micros, (*amounts, np.minimum(estimated[3], amounts[3])), strict=True):
            column[positions] = values
        priced[positions] = True
        currencies[positions] = model_prices.currency
        write_premium = _cache_write_premium(model_prices)
        if write_premium:  # APIM meters no cache writes (README, Prices): an upper bound, labelled, not a cost
            uncached = Decimal(int((prompt - cached).sum()))
            currency = model_prices.currency
            exposure[currency] = exposure.get(currency, Decimal(0)) + MONEY_CONTEXT.multiply(uncached, write_premium)
    basis = np.where(priced, USAGE_PRICED, "").astype(object)
    provisioned = price_provisioned(frame, prices, deployments, windows)
    # The window's PTU cost is exact; only its split between callers rests on their (metered or estimated)
    # tokens. So a share is all TotalCost: no per-token parts, and no EstimatedCost, which is the cost that
    # would change if APIM's estimates were wrong (shares would move between callers, the total would not).
    micros[_MICROS_COLUMNS.index("TotalCostMicros")][provisioned.positions] = provisioned.micros
    priced[provisioned.positions] = True
    currencies[provisioned.positions] = provisioned.currencies
    basis[provisioned.positions] = ALLOCATED
    unpriced_models.update(provisioned.unpriced)
    for name, values in zip(_MICROS_COLUMNS, micros, strict=True):
        frame[name] = pd.arrays.IntegerArray(values, ~priced)
    frame["Currency"] = pd.array(currencies, dtype="string")
    frame["Unpriced"] = ~priced
    # Every request of the row had its cached tokens metered (llm-emit-token-metric, not streamed);
    # otherwise the cache discount is unknown and cached tokens were priced at the input price.
    requests = frame["Requests"].to_numpy(dtype="int64")
    frame["CacheDiscountMetered"] = (requests > 0) & (frame["CacheMeteredRequests"].to_numpy(dtype="int64") >= requests)
    frame["DeploymentType"] = frame["Deployment"].map({name: key.partition("|")[2] for name, key in lookups.items()})
    frame["CostBasis"] = basis
    if len(provisioned.unused):
        unused = _unused_rows(provisioned.unused)[list(frame.columns)]
        frame = unused if frame.empty else pd.concat([frame, unused], ignore_index=True)
    if inconsistent:
        log.warning(
            "%d usage rows report more cached (or estimated) tokens than tokens; flagged unpriced instead of guessing",
            inconsistent,
        )
    if provisioned.unpriced:
        log.warning("provisioned deployments not priced (flagged, not $0): %s", "; ".join(provisioned.unpriced))
    return PricedUsage(frame, tuple(sorted(unpriced_models)), inconsistent, exposure)


def _unused_rows(unused: pd.DataFrame) -> pd.DataFrame:
    """Summary rows of the PTU cost nobody called for (ptu.ProvisionedCosts.unused): no caller, no tokens."""
    count = len(unused)
    rows = unused[["WindowStart", "Model", "Deployment"]].copy()
    for name in KEY_COLUMNS:
        if name != "Deployment":
            rows[name] = NO_CONSUMER
    for name in TOKEN_COLUMNS:
        rows[name] = np.zeros(count, dtype="int64")
    for name in _MICROS_COLUMNS:
        values = unused["TotalCostMicros"] if name == "TotalCostMicros" else np.zeros(count, dtype="int64")
        rows[name] = pd.arrays.IntegerArray(np.asarray(values, dtype="int64"), np.zeros(count, dtype=bool))
    rows["Currency"] = pd.array(unused["Currency"], dtype="string")
    rows["Unpriced"] = False
    rows["CacheDiscountMetered"] = False
    rows["DeploymentType"] = unused["DeploymentType"]
    rows["CostBasis"] = UNUSED
    return rows


def _cache_write_premium(model_prices: ModelPrices) -> Decimal | None:
    """What a cache-written prompt token costs above a plain one, per token; None when the model bills none."""
    write = model_prices.cache_write_price_per_token
    if write is None or write <= model_prices.input_price_per_token:
        return None
    return MONEY_CONTEXT.subtract(write, model_prices.input_price_per_token)


def _lookup_of(deployments: DeploymentMap, name: str) -> str:
    """'version|type' of a deployment ('' for an unknown part): one hashable group key for the frame."""
    entry = deployments.deployment(name)
    if entry is None:
        return "|"
    return f"{entry.model_version or ''}|{entry.sku or ''}"


def _price_group(
    model_prices: ModelPrices,
    prompt: npt.NDArray[np.int64],
    cached: npt.NDArray[np.int64],
    completion: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[Any], ...]:
    """What price_usage + shared/money.to_micros give for each row, for many rows of one model's prices at once.

    Exact integer arithmetic: each per-token price is an integer count of 10^-scale currency
    units, so every cost is an exact integer of those units (as price_usage's exact Decimals);
    each is rounded once, half to even, to micro-units (as round_summary_cost). Numbers that could
    overflow 64 bits are computed with Python integers instead. Returns prompt, cached prompt,
    completion and total cost micros.
    """
    negative = (prompt < 0) | (cached < 0) | (completion < 0)
    if negative.any():
        first = int(np.flatnonzero(negative)[0])
        price_usage(model_prices, prompt[first], cached[first], completion[first])  # raises, with its message
    per_token = (
        model_prices.input_price_per_token,
        model_prices.cached_input_price_per_token,
        model_prices.output_price_per_token,
    )
    scale = max(0, *(-_exponent(price) for price in per_token))
    units = [int(price.scaleb(scale, context=MONEY_CONTEXT)) for price in per_token]
    counts = (prompt - cached, cached, completion)
    largest = max((int(count.max()) if count.size else 0 for count in counts), default=0)
    # The largest intermediate value: a total before rounding (scaled up to micros when the prices
    # have fewer than 6 decimals), or twice the rounding divisor.
    places = scale - SUMMARY_COST_DECIMAL_PLACES
    bound = max(len(counts) * largest * max(units) * 10 ** max(0, -places), 2 * 10 ** max(0, places))
    dtype: Any = "int64" if bound < 2**63 else object
    costs = [count.astype(dtype) * unit for count, unit in zip(counts, units, strict=True)]
    costs.append(costs[0] + costs[1] + costs[2])
    return tuple(_round_to_micros(cost, scale) for cost in costs)


def _exponent(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N', 'F': the price table never loads these
        raise ValueError(f"price {amount} is not a finite number")
    return exponent


def _round_to_micros(units: npt.NDArray[Any], scale: int) -> npt.NDArray[Any]:
    """Non-negative amounts in 10^-scale units -> micro-units, ROUND_HALF_EVEN."""
    places = scale - SUMMARY_COST_DECIMAL_PLACES
    if places <= 0:
        scaled: npt.NDArray[Any] = units * 10**-places
        return scaled
    divisor = 10**places
    # // and %, not np.divmod: they also work on the object arrays of Python ints used near 2^63.
    quotient, remainder = units // divisor, units % divisor
    up = (2 * remainder > divisor) | ((2 * remainder == divisor) & (quotient % 2 == 1))
    rounded: npt.NDArray[Any] = quotient + up
    return rounded


def window_fingerprints(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[datetime, str]:
    """Per window, a digest of its rows' content (order independent): an unchanged recomputation
    has the same digest, so it need not be uploaded again. `columns` narrows the content digested
    (the usage alone tells late usage from new prices: shared/costs/recompute.py); default: all of it."""
    if frame.empty:
        return {}
    if columns is None:
        columns = [
            "Model", *KEY_COLUMNS, *TOKEN_COLUMNS, *_MICROS_COLUMNS, "Currency", "CacheDiscountMetered", *BASIS_COLUMNS
        ]  # fmt: skip
    content = frame[list(columns)]
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
) -> list[str]:
    """The TokenCostSummary_CL rows of one window, each as its JSON object text (shared/logs/rows.py)."""
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
    # Column by column into Python lists (tolist() gives native ints, floats, strs): no per-cell code here.
    columns: dict[str, list[Any]] = {}
    for name in ("Model", *KEY_COLUMNS, *BASIS_COLUMNS):
        columns[name] = rows[name].astype(object).tolist()
    for name in SUMMARY_TOKEN_COLUMNS:
        columns[name] = rows[name].astype("int64").tolist()
    for name, micros_name in zip(COST_COLUMNS, _MICROS_COLUMNS, strict=True):
        micros = rows[micros_name]
        # micros / 10^6 is the double nearest the 6-decimal amount (micros < 2^53).
        amounts = micros.to_numpy(dtype="float64", na_value=np.nan) / MICROS_PER_UNIT
        with_nulls = amounts.astype(object)  # Python floats, and None where unpriced
        with_nulls[micros.isna().to_numpy()] = None
        columns[name] = with_nulls.tolist()
    columns["Currency"] = rows["Currency"].astype(object).where(rows["Currency"].notna(), None).tolist()
    columns["Unpriced"] = rows["Unpriced"].astype(bool).tolist()
    columns["CacheDiscountMetered"] = rows["CacheDiscountMetered"].astype(bool).tolist()
    return encode_rows(columns, constants=common)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
