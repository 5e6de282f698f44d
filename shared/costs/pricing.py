"""Pricing token usage: deployment -> model, tokens x prices in force, exact costs.

The price table itself (file shapes, validation, model-name lookup) is in shared/costs/price_table.py;
its public names are re-exported here so callers import pricing from one place.

Costs are exact Decimals; rounding them (once, at output), micro-units and their text are
shared/money.py's. Cached prompt tokens are priced at the cached-input price, the rest of the prompt at the input
price, completion at the output price. A model with no price gets no CostBreakdown at all:
PriceTable.prices_for returns None and the caller flags the tokens as unpriced.

Deployment -> model (discovered from the accounts through ARM, or the deployments.json override) is
shared/costs/deployments.py's; DeploymentMap and load_deployment_map are re-exported here too. Name
normalization (gpt-35 / gpt-3.5, version suffixes, provider prefixes) and the choice between a deployment
type's own prices and the untyped ones (PriceTable.prices_for(model, at, deployment_type)) are the price
table's job; the deployment's type is DeploymentMap.deployment_type_for (None: unknown, untyped prices).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import SupportsIndex

from shared.costs.deployments import DeploymentMap, load_deployment_map
from shared.costs.price_files import load_price_table
from shared.costs.price_table import ModelPrices, PriceTable, PtuHourPrice
from shared.money import MONEY_CONTEXT

__all__ = [
    "CostBreakdown",
    "DeploymentMap",
    "ModelPrices",
    "PriceTable",
    "PtuHourPrice",
    "load_deployment_map",
    "load_price_table",
    "price_usage",
]


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Exact (unrounded) cost of some usage, in `currency`."""

    prompt_cost: Decimal  # prompt tokens neither read from nor written to the cache, at the input price
    cached_prompt_cost: Decimal  # cached prompt tokens, at the cached-input price
    completion_cost: Decimal
    total_cost: Decimal
    currency: str
    cache_write_cost: Decimal = Decimal(0)  # prompt tokens written to the cache, at the cache-write price


def price_usage(
    model_prices: ModelPrices,
    prompt_tokens: SupportsIndex,
    cached_prompt_tokens: SupportsIndex,
    completion_tokens: SupportsIndex,
    *,
    cache_write_tokens: SupportsIndex = 0,
) -> CostBreakdown:
    """Exact cost of the usage. `prompt_tokens` includes the cached ones and the cache writes (as APIM and
    OpenAI report prompt tokens); reasoning tokens are inside `completion_tokens` (billed as output, once).

    Cache writes are priced at the model's cache-write price, or at the input price when it bills none.
    Token counts must be whole numbers (int or numpy integers; a float is refused rather than
    truncated) and non-negative; cached + cache-write > prompt is an error, not a negative cost.
    """
    prompt = _token_count("prompt_tokens", prompt_tokens)
    cached = _token_count("cached_prompt_tokens", cached_prompt_tokens)
    written = _token_count("cache_write_tokens", cache_write_tokens)
    completion = _token_count("completion_tokens", completion_tokens)
    if cached + written > prompt:
        raise ValueError(
            f"cached_prompt_tokens ({cached}) and cache_write_tokens ({written}) exceed prompt_tokens ({prompt}) "
            f"for model {model_prices.model!r}: both are part of the prompt, so this usage is inconsistent"
        )
    ctx = MONEY_CONTEXT
    write_price = model_prices.cache_write_price_per_token
    prompt_cost = ctx.multiply(Decimal(prompt - cached - written), model_prices.input_price_per_token)
    cached_cost = ctx.multiply(Decimal(cached), model_prices.cached_input_price_per_token)
    write_cost = ctx.multiply(
        Decimal(written), model_prices.input_price_per_token if write_price is None else write_price
    )
    completion_cost = ctx.multiply(Decimal(completion), model_prices.output_price_per_token)
    return CostBreakdown(
        prompt_cost=prompt_cost,
        cached_prompt_cost=cached_cost,
        completion_cost=completion_cost,
        total_cost=ctx.add(ctx.add(ctx.add(prompt_cost, cached_cost), write_cost), completion_cost),
        currency=model_prices.currency,
        cache_write_cost=write_cost,
    )


def _token_count(name: str, value: SupportsIndex) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a whole number of tokens, got {value!r}") from None
    if count < 0:
        raise ValueError(f"{name} must not be negative, got {count}")
    return count
