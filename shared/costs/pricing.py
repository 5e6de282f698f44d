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

from shared.costs.price_table import ModelPrices, PriceTable, load_price_table
from shared.json_input import Fields, Problems, read_json_file, show, text
from shared.money import MONEY_CONTEXT

__all__ = [
    "CostBreakdown",
    "DeploymentMap",
    "ModelPrices",
    "PriceTable",
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


_DEPLOYMENT_MAP = "deployment map"


def _checked_deployments(deployments: Fields) -> dict[str, str]:
    """deployment -> model (stripped); each problem added to the reader's problems."""
    checked: dict[str, str] = {}
    first_by_folded: dict[str, str] = {}
    for deployment in deployments.raw:
        model = deployments.get(deployment, text, expected="a model name (a non-empty string)")
        if model is None:
            continue
        folded = deployment.casefold()
        other = first_by_folded.setdefault(folded, deployment)
        if other != deployment and checked[other] != model:
            deployments.problem(
                deployment,
                f"differs only in letter case from {deployments.path_of(other)}, mapped to a different model; "
                "expected one entry (Azure deployment names ignore case)",
            )
        checked[deployment] = model
    return checked


class DeploymentMap:
    """Azure deployment name -> model name; unmapped deployments are their own model name."""

    def __init__(self, deployments: Mapping[str, str] | None = None, *, source: str = "(deployment map)") -> None:
        self.source = source
        problems = Problems(source, _DEPLOYMENT_MAP)
        self._exact = _checked_deployments(problems.fields(dict(deployments or {}), "deployments"))
        problems.raise_if_any()
        self._folded: dict[str, str] = {}
        for deployment, model in self._exact.items():
            self._folded.setdefault(deployment.casefold(), model)

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
    document = read_json_file(path, _DEPLOYMENT_MAP)
    problems = Problems(document.source, _DEPLOYMENT_MAP)
    top = problems.fields(document.root, "")
    expected = 'an object {"<deployment>": "<model>", ...}'
    if not isinstance(document.root, Mapping):
        problems.fail(1, "", f'expected {{"deployments": {expected}}}, got {show(document.root)}')
    deployments = top.object("deployments", expected=expected)
    top.unknown({"deployments", "note"})
    checked = _checked_deployments(deployments) if deployments is not None else {}
    problems.raise_if_any()
    return DeploymentMap(checked, source=document.source)
