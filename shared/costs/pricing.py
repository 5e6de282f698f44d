"""Pricing token usage: deployment -> model, tokens x prices in force, exact costs.

The price table itself (file shapes, validation, model-name lookup) is in shared/costs/price_table.py;
its public names are re-exported here so callers import pricing from one place.

Costs are exact Decimals; rounding them (once, at output), micro-units and their text are
shared/money.py's. Cached prompt tokens are priced at the cached-input price, the rest of the prompt at the input
price, completion at the output price. A model with no price gets no CostBreakdown at all:
PriceTable.prices_for returns None and the caller flags the tokens as unpriced.

Deployment map: Azure deployment names are the customer's own, so a file
{"deployments": {"my-gpt4o-prod": "gpt-4o", ...}} maps them to model names. Lookup is exact, then
case-insensitive (Azure treats deployment names case-insensitively); an unmapped deployment
resolves to itself, the common case where a deployment is named after its model. Name
normalization (gpt-35 / gpt-3.5, version suffixes, provider prefixes) is the price table's job.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import SupportsIndex

from shared.costs.price_table import (
    ModelPrices,
    PriceTable,
    PriceTableError,
    check_no_duplicate_keys,
    line_of_key,
    load_price_table,
    parse_json_document,
)
from shared.money import MONEY_CONTEXT

__all__ = [
    "CostBreakdown",
    "DeploymentMap",
    "ModelPrices",
    "PriceTable",
    "PriceTableError",
    "load_deployment_map",
    "load_price_table",
    "price_usage",
]


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Exact (unrounded) cost of some usage, in `currency`."""

    prompt_cost: Decimal  # prompt tokens NOT served from cache, at the input price
    cached_prompt_cost: Decimal  # cached prompt tokens, at the cached-input price
    completion_cost: Decimal
    total_cost: Decimal
    currency: str


def price_usage(
    model_prices: ModelPrices,
    prompt_tokens: SupportsIndex,
    cached_prompt_tokens: SupportsIndex,
    completion_tokens: SupportsIndex,
) -> CostBreakdown:
    """Exact cost of the usage. `prompt_tokens` includes the cached ones (as APIM and OpenAI report).

    Token counts must be whole numbers (int or numpy integers; a float is refused rather than
    truncated) and non-negative; cached > prompt is an error, not a negative cost.
    """
    prompt = _token_count("prompt_tokens", prompt_tokens)
    cached = _token_count("cached_prompt_tokens", cached_prompt_tokens)
    completion = _token_count("completion_tokens", completion_tokens)
    if cached > prompt:
        raise ValueError(
            f"cached_prompt_tokens ({cached}) exceed prompt_tokens ({prompt}) for model "
            f"{model_prices.model!r}: cached tokens are part of the prompt, so this usage is inconsistent"
        )
    ctx = MONEY_CONTEXT
    prompt_cost = ctx.multiply(Decimal(prompt - cached), model_prices.input_price_per_token)
    cached_cost = ctx.multiply(Decimal(cached), model_prices.cached_input_price_per_token)
    completion_cost = ctx.multiply(Decimal(completion), model_prices.output_price_per_token)
    return CostBreakdown(
        prompt_cost=prompt_cost,
        cached_prompt_cost=cached_cost,
        completion_cost=completion_cost,
        total_cost=ctx.add(ctx.add(prompt_cost, cached_cost), completion_cost),
        currency=model_prices.currency,
    )


def _token_count(name: str, value: SupportsIndex) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a whole number of tokens, got {value!r}") from None
    if count < 0:
        raise ValueError(f"{name} must not be negative, got {count}")
    return count


def _check_mapped_model(source: str, deployment: str, model: object, *, line: int | None = None) -> None:
    if not isinstance(model, str) or not model.strip():
        raise PriceTableError(
            source,
            f"model must be a non-empty string, got {model!r}",
            model=deployment,
            field="deployments",
            subject="deployment",
            line=line,
        )


class DeploymentMap:
    """Azure deployment name -> model name; unmapped deployments are their own model name."""

    def __init__(self, deployments: Mapping[str, str] | None = None, *, source: str = "(deployment map)") -> None:
        self.source = source
        self._exact = dict(deployments or {})
        self._folded: dict[str, str] = {}
        for deployment, model in self._exact.items():
            _check_mapped_model(source, deployment, model)
            folded = deployment.casefold()
            if folded in self._folded and self._folded[folded] != model:
                raise PriceTableError(
                    source,
                    "differs only in letter case from another deployment mapped to a different model",
                    model=deployment,
                    field="deployments",
                    subject="deployment",
                )
            self._folded[folded] = model

    @property
    def deployments(self) -> Mapping[str, str]:
        return dict(self._exact)

    def model_for(self, deployment: str) -> str:
        mapped = self._exact.get(deployment)
        if mapped is None:
            mapped = self._folded.get(deployment.casefold(), deployment)
        return mapped


def load_deployment_map(path: Path | None) -> DeploymentMap:
    """Read {"deployments": {name: model}} (optional "note"); None gives the identity map."""
    if path is None:
        return DeploymentMap()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceTableError(source, f"cannot read the deployment map: {exc}") from exc
    document = parse_json_document(source, text)
    if not isinstance(document, dict) or not isinstance(document.get("deployments"), dict):
        raise PriceTableError(
            source,
            'expected {"deployments": {"<deployment>": "<model>", ...}}',
            field="deployments",
            line=line_of_key(text, "deployments"),
        )
    unknown = sorted(set(document) - {"deployments", "note"})
    if unknown:
        raise PriceTableError(
            source,
            f"unknown top-level key(s) {unknown}",
            field=unknown[0],
            line=line_of_key(text, unknown[0]),
        )
    deployments = document["deployments"]
    check_no_duplicate_keys(source, text, deployments, model=None, field="deployments", subject="deployment")
    for deployment, model in deployments.items():
        _check_mapped_model(source, deployment, model, line=line_of_key(text, deployment))
    return DeploymentMap({name: model.strip() for name, model in deployments.items()}, source=source)
