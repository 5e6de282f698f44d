"""The versioned price table: load and validate it, look up the prices in force for a model and deployment type.

Two file shapes are read:

* **native** (shared/costs/prices/price-table.json)::

      {"version": "2026-11-01.1", "currency": "USD", "unit": "per_1m_tokens",
       "models": {"gpt-4o": [{"effective_from": "2024-08-06", "currency": "USD",
                              "prices": {"input": 2.50, "cached_input": 1.25, "output": 10.00}}]}}

  `unit` is one of per_token, per_1k_tokens, per_1m_tokens. A period may name a `deployment_type`
  (an ARM deployment sku.name, shared/costs/catalog.DEPLOYMENT_TYPES: "DataZoneStandard", ...); a period
  without one is untyped: a Global Standard list price, which also prices a deployment of unknown type
  (see "Deployment type" below), so a file without any `deployment_type` prices those as before.
  A period may set `effective_to` (exclusive); otherwise it lasts until the next period of the same
  model and type starts. Two periods of one model and type that overlap in time are refused. `cached_input`
  is optional: without it cached prompt tokens get NO discount (priced at `input`), because
  charging them at full price over-states cost visibly, while guessing a discount would hide it.
  `note` and `source` keys are allowed anywhere a human may want to explain a figure.

* **LiteLLM** `model_prices_and_context_window.json`, dropped in as-is: entries keyed by model
  with `input_cost_per_token`, `output_cost_per_token` and optional `cache_read_input_token_cost`
  (USD per token), no dates, so each is in force from the beginning of time. Entries without both
  token prices (image, audio, rerank models, "sample_spec") are skipped: their models stay
  unpriced and are flagged downstream, never priced at zero. The version is the file's top-level
  "version" string if present, else "sha256:" + the first 12 hex digits of the file's hash.

Model-name lookup (`PriceTable.resolve`), first match wins:
  1. the name as given, then lower-cased (Azure model names are lower case);
  2. for each of those: the exact table key, then a LiteLLM key carrying the entry's own
     `litellm_provider` prefix ("azure/gpt-4o" answers for "gpt-4o"; when several providers
     offer the same bare name: azure, azure_ai, openai, then the others alphabetically);
  3. the same with Azure's "gpt-35" spelled OpenAI's way "gpt-3.5" (and back);
  4. the same again without a model-version suffix ("gpt-4o-2024-11-20", "gpt-35-turbo-0125"),
     so a versioned deployment finds its family's price when the table has no exact entry.

Deployment type (`prices_for(model, at, deployment_type)`): the period of that type in force at `at`.
GlobalStandard and a deployment of no known type (None: a deployments.json entry without "sku", or a
name found nowhere) get the untyped period, as before types existed; any other type without a period of
its own in force is unpriced (regional, batch and provisioned deployments are not billed at the Global
price). The LiteLLM shape has no types: every entry is untyped.

A window is priced with the prices in force at its start (`prices_for(model, window_start, type)`).
Prices are parsed from the JSON text as Decimal (never through float) and stored per token.
Everything here is stdlib: pricing happens on pandas frames, but reading the table needs none of it.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from shared.costs.catalog import DEPLOYMENT_TYPES
from shared.json_input import Check, Fields, Problems, choice, number, read_json_file, show, text
from shared.money import ISO_4217_MINOR_UNITS, MONEY_CONTEXT
from shared.windows import as_utc

TOKENS_PER_PRICE_UNIT: Mapping[str, int] = {
    "per_token": 1,
    "per_1k_tokens": 1_000,
    "per_1m_tokens": 1_000_000,
}

# What an untyped period prices (the table held Global Standard list prices before it knew types).
GLOBAL_STANDARD = "GlobalStandard"
BEGINNING_OF_TIME = datetime(1, 1, 1, tzinfo=UTC)

_NATIVE_TOP_KEYS = frozenset({"version", "currency", "unit", "models", "note", "source"})
_PERIOD_KEYS = frozenset({"effective_from", "effective_to", "deployment_type", "currency", "prices", "note", "source"})
_PRICE_KEYS = frozenset({"input", "cached_input", "output"})
_LITELLM_INPUT = "input_cost_per_token"
_LITELLM_OUTPUT = "output_cost_per_token"
_LITELLM_CACHED = "cache_read_input_token_cost"
_LITELLM_IGNORED_ENTRIES = frozenset({"sample_spec"})
# Azure is what this gateway fronts, so its list price answers a bare name before others'.
_PROVIDER_PREFERENCE = ("azure", "azure_ai", "openai")
_GPT35_AZURE = re.compile(r"gpt-35(?=-|$)")
_GPT35_OPENAI = re.compile(r"gpt-3\.5(?=-|$)")
# Model-version suffixes: OpenAI dates (-2024-11-20) and Azure's short versions (-0125, -0613).
_VERSION_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """The prices of one model during one period, per token, in `currency`."""

    model: str  # the price-table key that matched (may differ from the name asked for)
    effective_from: datetime  # UTC, inclusive
    effective_to: datetime | None  # UTC, exclusive; None: until further notice
    input_price_per_token: Decimal
    cached_input_price_per_token: Decimal  # == input price when the table gives no cached price
    output_price_per_token: Decimal
    currency: str
    has_cached_input_price: bool  # False: cached tokens get no discount (see module docstring)
    deployment_type: str | None = None  # the ARM sku.name this period prices; None: untyped (Global Standard)

    def in_force_at(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)

    @property
    def input_price_per_million_tokens(self) -> Decimal:
        return MONEY_CONTEXT.multiply(self.input_price_per_token, Decimal(1_000_000))

    @property
    def cached_input_price_per_million_tokens(self) -> Decimal:
        return MONEY_CONTEXT.multiply(self.cached_input_price_per_token, Decimal(1_000_000))

    @property
    def output_price_per_million_tokens(self) -> Decimal:
        return MONEY_CONTEXT.multiply(self.output_price_per_token, Decimal(1_000_000))


class PriceTable:
    """Validated prices of every model, with their effective periods. Build with load_price_table."""

    def __init__(
        self,
        *,
        version: str,
        source: str,
        file_format: Literal["native", "litellm"],
        periods_by_model: Mapping[str, Sequence[ModelPrices]],
        bare_name_aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.version = version
        self.source = source
        self.file_format = file_format
        # Per model and type (None: untyped), periods are sorted and non-overlapping (checked at load);
        # starts kept for bisect.
        self._periods = {model: tuple(periods) for model, periods in periods_by_model.items()}
        self._chains: dict[tuple[str, str | None], tuple[ModelPrices, ...]] = {}
        for model, periods in self._periods.items():
            for deployment_type in dict.fromkeys(period.deployment_type for period in periods):
                chain = tuple(p for p in periods if p.deployment_type == deployment_type)
                self._chains[(model, deployment_type)] = tuple(sorted(chain, key=lambda p: p.effective_from))
        self._starts = {key: [p.effective_from for p in chain] for key, chain in self._chains.items()}
        self._aliases = dict(bare_name_aliases or {})
        self._resolved: dict[str, str | None] = {}

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted(self._periods))

    def periods(self, model: str) -> tuple[ModelPrices, ...]:
        """Every period of `model`'s table key, all deployment types."""
        key = self.resolve(model)
        return () if key is None else self._periods[key]

    def resolve(self, model: str) -> str | None:
        """The table key that prices `model` (rules in the module docstring), or None."""
        if model in self._resolved:
            return self._resolved[model]
        found = next((key for name in _lookup_names(model) if (key := self._key_for(name)) is not None), None)
        self._resolved[model] = found
        return found

    def prices_for(self, model: str, at: datetime, deployment_type: str | None = None) -> ModelPrices | None:
        """The prices in force for `model` deployed as `deployment_type` at `at` (a window's start), or None.

        An untyped period is a Global Standard list price (what the table has always held): it prices
        GlobalStandard deployments and deployments whose type is unknown (`deployment_type` None: no
        ARM discovery and a plain deployments.json entry, the behaviour before the table knew types).
        Every other type is priced only by a period of its own: Data Zone lists ~10% higher, batch about
        half, provisioned bills per PTU-hour, so borrowing the Global price would be a wrong number, and
        such usage is unpriced (flagged with its full key) instead. None is also returned for an unknown
        model and for a time outside every applicable period; the caller flags it, never prices it at zero.
        """
        if at.tzinfo is None:
            raise ValueError(f"prices_for needs a timezone-aware time, got naive {at.isoformat()}")
        key = self.resolve(model)
        if key is None:
            return None
        if deployment_type is not None and deployment_type != GLOBAL_STANDARD:
            return self._in_force((key, deployment_type), at)
        return self._in_force((key, None), at) or self._in_force((key, GLOBAL_STANDARD), at)

    def _in_force(self, chain_key: tuple[str, str | None], at: datetime) -> ModelPrices | None:
        starts = self._starts.get(chain_key)
        if starts is None:
            return None
        index = bisect.bisect_right(starts, at) - 1
        if index < 0:
            return None
        period = self._chains[chain_key][index]
        return period if period.in_force_at(at) else None

    def _key_for(self, name: str) -> str | None:
        if name in self._periods:
            return name
        return self._aliases.get(name)


def _lookup_names(model: str) -> list[str]:
    cased = [model] if model == model.lower() else [model, model.lower()]
    unversioned = [stripped for name in cased if (stripped := _VERSION_SUFFIX.sub("", name)) != name]
    names: list[str] = []
    for name in [*cased, *unversioned]:
        for variant in (name, _GPT35_AZURE.sub("gpt-3.5", name), _GPT35_OPENAI.sub("gpt-35", name)):
            if variant not in names:
                names.append(variant)
    return names


_WHAT = "price table"
_PRICE = number(minimum=0)
_PRICE_EXPECTED = "a price >= 0"


def load_price_table(path: Path) -> PriceTable:
    """Read and validate a price table file (native or LiteLLM shape); InputFileError if unusable.

    Read with shared/json_input.py: every problem is reported at once with its line and field path
    (`models["gpt-4o"][1].prices.output`).
    """
    document = read_json_file(path, _WHAT)
    problems = Problems(document.source, _WHAT)
    root = document.root
    if not isinstance(root, Mapping):
        problems.fail(1, "", f"expected a JSON object at the top level, got {show(root)}")
    if "models" in root:
        table = _parse_native(problems, root)
    elif any(
        isinstance(entry, Mapping) and (_LITELLM_INPUT in entry or "litellm_provider" in entry)
        for entry in root.values()
    ):
        table = _parse_litellm(problems, root, document.raw)
    else:
        problems.fail(
            1,
            "",
            'not a price table: expected a "models" object (native format) or LiteLLM model entries '
            f"with {_LITELLM_INPUT} / {_LITELLM_OUTPUT}",
        )
    problems.raise_if_any()
    assert table is not None  # no problems: every part was read
    return table


_currency: Check[str] = Check(
    f"an ISO 4217 code such as USD or EUR (known: {', '.join(sorted(ISO_4217_MINOR_UNITS))})",
    lambda value: value if isinstance(value, str) and value in ISO_4217_MINOR_UNITS else None,
)


def _read_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return as_utc(parsed)  # a date or naive datetime is UTC: Azure bills in UTC days


_instant = Check("an ISO date (YYYY-MM-DD, UTC) or datetime", _read_instant)


def _parse_native(problems: Problems, root: Mapping[str, Any]) -> PriceTable | None:
    top = problems.fields(root, "")
    top.unknown(_NATIVE_TOP_KEYS)
    version = top.get("version", text)
    currency = top.get("currency", _currency, fallback="USD")
    unit = top.get("unit", choice(sorted(TOKENS_PER_PRICE_UNIT)), fallback="per_token")
    tokens_per_unit = Decimal(TOKENS_PER_PRICE_UNIT[unit])
    expected = "a non-empty object of model name -> list of periods"
    models = top.object("models", expected=expected)
    periods_by_model: dict[str, list[ModelPrices]] = {}
    if models is not None and not models.raw:
        top.bad("models", expected)
    elif models is not None:
        for model in models.raw:
            if not model.strip():
                models.problem(model, "the model name is empty")
            before = len(problems.items)
            items = models.items(model, expected="a non-empty list of price periods")
            periods = [_period(problems, path, line, raw, currency, tokens_per_unit) for path, line, raw in items]
            if len(problems.items) == before:
                read = [period for period in periods if period is not None]
                periods_by_model[model] = [
                    chained
                    for deployment_type in dict.fromkeys(period.deployment_type for period, _ in read)
                    for chained in _chain(model, [pair for pair in read if pair[0].deployment_type == deployment_type])
                ]
    if problems:
        return None
    return PriceTable(version=version, source=problems.source, file_format="native", periods_by_model=periods_by_model)


def _period(
    problems: Problems, path: str, line: int | None, raw: Any, default_currency: str, tokens_per_unit: Decimal
) -> tuple[ModelPrices, Fields] | None:
    if not isinstance(raw, Mapping):
        problems.add(line, path, f"expected a price period object, got {show(raw)}")
        return None
    before = len(problems.items)
    period = problems.fields(raw, path, line)
    period.unknown(_PERIOD_KEYS)
    effective_from = period.get("effective_from", _instant)
    effective_to = period.optional("effective_to", _instant)
    deployment_type = period.optional("deployment_type", choice(DEPLOYMENT_TYPES))
    if effective_from is not None and effective_to is not None and effective_to <= effective_from:
        period.problem(
            "effective_to",
            f"{effective_to:%Y-%m-%d %H:%M} is not after effective_from {effective_from:%Y-%m-%d %H:%M}",
        )
    currency = period.get("currency", _currency, default_currency)
    prices = period.object("prices", expected="an object of prices: input, output, optional cached_input")
    input_price = output_price = cached_price = None
    if prices is not None:
        prices.unknown(_PRICE_KEYS)
        input_price = prices.get("input", _PRICE, expected=_PRICE_EXPECTED)
        output_price = prices.get("output", _PRICE, expected=_PRICE_EXPECTED)
        cached_price = prices.optional("cached_input", _PRICE, expected=_PRICE_EXPECTED)
    if len(problems.items) > before or effective_from is None or input_price is None or output_price is None:
        return None
    per_token = MONEY_CONTEXT.divide
    return (
        ModelPrices(
            model="",  # set by _chain, which knows the key
            effective_from=effective_from,
            effective_to=effective_to,
            input_price_per_token=per_token(input_price, tokens_per_unit),
            cached_input_price_per_token=per_token(
                input_price if cached_price is None else cached_price, tokens_per_unit
            ),
            output_price_per_token=per_token(output_price, tokens_per_unit),
            currency=currency,
            has_cached_input_price=cached_price is not None,
            deployment_type=deployment_type,
        ),
        period,
    )


def _chain(model: str, read: Sequence[tuple[ModelPrices, Fields]]) -> list[ModelPrices]:
    """One model's periods of one deployment type, sorted by start; each ends where the next starts
    (or earlier if it says so)."""
    periods = sorted(read, key=lambda pair: pair[0].effective_from)
    chained: list[ModelPrices] = []
    for index, (period, fields) in enumerate(periods):
        following = periods[index + 1] if index + 1 < len(periods) else None
        end = period.effective_to
        if following is not None:
            next_period, next_fields = following
            if next_period.effective_from == period.effective_from:
                next_fields.problem(
                    "effective_from",
                    f"two periods start on {period.effective_from:%Y-%m-%d %H:%M} (also {fields.path})",
                )
            elif end is not None and end > next_period.effective_from:
                fields.problem(
                    "effective_to",
                    f"the period from {period.effective_from:%Y-%m-%d} to {end:%Y-%m-%d} overlaps the period "
                    f"from {next_period.effective_from:%Y-%m-%d} ({next_fields.path})",
                )
            elif end is None:
                end = next_period.effective_from
        chained.append(replace(period, model=model, effective_to=end))
    return chained


def _parse_litellm(problems: Problems, root: Mapping[str, Any], raw: bytes) -> PriceTable | None:
    top = problems.fields(root, "")
    version = top.optional("version", text)
    if version is None:
        version = "sha256:" + hashlib.sha256(raw).hexdigest()[:12]
    periods_by_model: dict[str, list[ModelPrices]] = {}
    bare_names: dict[str, list[tuple[str, str]]] = {}  # bare name -> [(provider, key)]
    for key, value in root.items():
        if key == "version" or key in _LITELLM_IGNORED_ENTRIES:
            continue
        entry = top.object(key, expected="a model entry object")
        if entry is None or entry.raw.get(_LITELLM_INPUT) is None or entry.raw.get(_LITELLM_OUTPUT) is None:
            continue  # not priced per token (image / audio / rerank ...): stays unpriced, flagged later
        before = len(problems.items)
        input_price = entry.get(_LITELLM_INPUT, _PRICE, expected=_PRICE_EXPECTED)
        output_price = entry.get(_LITELLM_OUTPUT, _PRICE, expected=_PRICE_EXPECTED)
        cached_price = entry.optional(_LITELLM_CACHED, _PRICE, expected=_PRICE_EXPECTED)
        if len(problems.items) > before or input_price is None or output_price is None:
            continue
        periods_by_model[key] = [
            ModelPrices(
                model=key,
                effective_from=BEGINNING_OF_TIME,
                effective_to=None,
                input_price_per_token=input_price,
                cached_input_price_per_token=input_price if cached_price is None else cached_price,
                output_price_per_token=output_price,
                currency="USD",
                has_cached_input_price=cached_price is not None,
            )
        ]
        provider = value.get("litellm_provider")
        if isinstance(provider, str) and key.startswith(provider + "/") and len(key) > len(provider) + 1:
            bare_names.setdefault(key[len(provider) + 1 :], []).append((provider, key))
    if problems:
        return None
    if not periods_by_model:
        problems.fail(1, "", f"no model has both {_LITELLM_INPUT} and {_LITELLM_OUTPUT}")
    return PriceTable(
        version=version,
        source=problems.source,
        file_format="litellm",
        periods_by_model=periods_by_model,
        bare_name_aliases=_preferred(bare_names),
    )


def _preferred(bare_names: Mapping[str, Iterable[tuple[str, str]]]) -> dict[str, str]:
    def rank(candidate: tuple[str, str]) -> tuple[int, str]:
        provider, key = candidate
        preferred = provider in _PROVIDER_PREFERENCE
        return (_PROVIDER_PREFERENCE.index(provider) if preferred else len(_PROVIDER_PREFERENCE)), key

    return {bare: min(candidates, key=rank)[1] for bare, candidates in bare_names.items()}
