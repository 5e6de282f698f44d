"""The price table in memory: prices per model, model version and deployment type, with effective periods.

Read from a file by shared/costs/price_files.py (the catalog, the older native table, or LiteLLM's map).
What Azure bills, and so what a period holds:

* **Pay-per-token types** (GlobalStandard, DataZoneStandard, Standard, GlobalBatch, DataZoneBatch):
  a `ModelPrices` period per model (+ optional model version) and type, with per-token prices for
  input, cached input (read), output and, for models that bill it, cache write. Reasoning tokens are
  inside completion tokens and billed as output: there is no kind for them.
* **Provisioned types** (GlobalProvisionedManaged, DataZoneProvisionedManaged, ProvisionedManaged):
  per-token price zero; the deployment bills its PTUs by the hour. A `PtuHourPrice` period per type
  (model "*": the PTU price does not depend on the model, or a model of its own).

Lookup (`PriceTable.prices_for(model, at, deployment_type, version)`), first match wins:
  model name: the name as given, then lower-cased; the exact table key, then a LiteLLM key carrying the
  entry's own provider prefix ("azure/gpt-4o" answers for "gpt-4o"; azure, azure_ai, openai first);
  Azure's "gpt-35" spelled "gpt-3.5" (and back); the same without a model-version suffix
  ("gpt-4o-2024-11-20", "gpt-35-turbo-0125").
  model version: a period of that exact version, else a period for every version; a name found by its
  unversioned form carries its version ("gpt-4o-2024-05-13" prices as gpt-4o version 2024-05-13).
  deployment type: GlobalStandard and an unknown type (None: a deployments.json entry without "sku", or a
  name found nowhere) get a GlobalStandard period, then an untyped one (an untyped period is a Global
  Standard list price); any other pay-per-token type only a period of its own (Data Zone lists ~10%
  higher, batch about half: borrowing the Global price would be a wrong number). A provisioned type has
  no per-token period at all: `prices_for` answers None and `ptu_hour_price` gives its hourly price.
A window is priced with the prices in force at its start. None is returned for an unknown model and for
a time outside every period; the caller flags such usage as unpriced with its full key, never prices it at 0.

Tiers (priority processing, long context above a token threshold, flex) are kept in the catalog but do
not price here: the gateway's token metrics do not say which requests ran at which tier, so the default
tier's prices apply and the README says what that under-states.

Everything here is stdlib and Decimal: prices are per token, exact.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from shared.costs.catalog import ANY_MODEL, PROVISIONED_TYPES
from shared.money import MONEY_CONTEXT

# What an untyped period prices (the table held Global Standard list prices before it knew types).
GLOBAL_STANDARD = "GlobalStandard"
BEGINNING_OF_TIME = datetime(1, 1, 1, tzinfo=UTC)

# Azure is what this gateway fronts, so its list price answers a bare name before others'.
_PROVIDER_PREFERENCE = ("azure", "azure_ai", "openai")
_GPT35_AZURE = re.compile(r"gpt-35(?=-|$)")
_GPT35_OPENAI = re.compile(r"gpt-3\.5(?=-|$)")
# Model-version suffixes: OpenAI dates (-2024-11-20) and Azure's short versions (-0125, -0613).
_VERSION_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """The per-token prices of one model (version, deployment type) during one period, in `currency`."""

    model: str  # the price-table key that matched (may differ from the name asked for)
    effective_from: datetime  # UTC, inclusive
    effective_to: datetime | None  # UTC, exclusive; None: until further notice
    input_price_per_token: Decimal
    cached_input_price_per_token: Decimal  # == input price when the table gives no cached price
    output_price_per_token: Decimal
    currency: str
    has_cached_input_price: bool  # False: cached tokens get no discount (priced at input)
    deployment_type: str | None = None  # the ARM sku.name this period prices; None: untyped (Global Standard)
    version: str | None = None  # the model version this period prices; None: every version
    # Cache writes, for models that bill them (above the input price); None: the model bills none.
    cache_write_price_per_token: Decimal | None = None
    source: str = ""  # where the figures come from (URL, key, meter)

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


@dataclass(frozen=True, slots=True)
class PtuHourPrice:
    """What one PTU of a provisioned deployment type costs per hour during one period."""

    model: str  # "*" (every model: Azure's PTU meter is per deployment type) or a model of its own
    deployment_type: str  # one of catalog.PROVISIONED_TYPES
    effective_from: datetime
    effective_to: datetime | None
    price_per_ptu_hour: Decimal
    currency: str
    source: str = ""

    def in_force_at(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)


_ChainKey = tuple[str, str | None, str | None]  # (model key, version, deployment type)


class PriceTable:
    """Validated prices with their effective periods. Built by shared/costs/price_files.load_price_table."""

    def __init__(
        self,
        *,
        version: str,
        source: str,
        file_format: str,
        periods_by_model: Mapping[str, Sequence[ModelPrices]],
        ptu_prices: Sequence[PtuHourPrice] = (),
        bare_name_aliases: Mapping[str, str] | None = None,
        left_out: Sequence[str] = (),
    ) -> None:
        self.version = version
        # Prices the file holds but the table could not use (say, regions disagreeing), each in a sentence.
        self.left_out = tuple(left_out)
        self.source = source
        self.file_format = file_format
        # Per chain key, periods are sorted and non-overlapping (the loaders check it).
        self._periods = {model: tuple(periods) for model, periods in periods_by_model.items()}
        self._chains: dict[_ChainKey, tuple[ModelPrices, ...]] = {}
        for model, periods in self._periods.items():
            for key in dict.fromkeys((model, p.version, p.deployment_type) for p in periods):
                chain = [p for p in periods if (model, p.version, p.deployment_type) == key]
                self._chains[key] = tuple(sorted(chain, key=lambda p: p.effective_from))
        self._starts = {key: [p.effective_from for p in chain] for key, chain in self._chains.items()}
        ptu: dict[tuple[str, str], list[PtuHourPrice]] = {}
        for price in sorted(ptu_prices, key=lambda p: p.effective_from):
            ptu.setdefault((price.model, price.deployment_type), []).append(price)
        self._ptu = {key: tuple(chain) for key, chain in ptu.items()}
        self._aliases = dict(bare_name_aliases or {})
        self._resolved: dict[str, tuple[str | None, str | None]] = {}

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted(self._periods))

    def periods(self, model: str) -> tuple[ModelPrices, ...]:
        """Every per-token period of `model`'s table key: all versions and deployment types."""
        key = self.resolve(model)
        return () if key is None else self._periods[key]

    def ptu_periods(self) -> tuple[PtuHourPrice, ...]:
        return tuple(price for chain in self._ptu.values() for price in chain)

    def resolve(self, model: str) -> str | None:
        """The table key that prices `model` (rules in the module docstring), or None."""
        return self._resolve(model)[0]

    def _resolve(self, model: str) -> tuple[str | None, str | None]:
        """(table key, the model version the name carried when only its unversioned form is in the table)."""
        if model not in self._resolved:
            self._resolved[model] = next(
                ((key, suffix) for name, suffix in _lookup_names(model) if (key := self._key_for(name)) is not None),
                (None, None),
            )
        return self._resolved[model]

    def prices_for(
        self, model: str, at: datetime, deployment_type: str | None = None, version: str | None = None
    ) -> ModelPrices | None:
        """The per-token prices in force for `model` (`version`) deployed as `deployment_type` at `at`, or None.

        Rules in the module docstring: exact version before every-version; GlobalStandard and an unknown
        type (None) take the untyped period, then a GlobalStandard one; any other type only its own
        period; a provisioned type never (it bills PTU-hours: ptu_hour_price).
        """
        _check_aware(at)
        key, named_version = self._resolve(model)
        if key is None or deployment_type in PROVISIONED_TYPES:
            return None
        # "gpt-4o-2024-05-13" found as gpt-4o: the name says which version (it kept its launch price).
        version = version or named_version
        # A period that says GlobalStandard before an untyped one: untyped is the older, implicit way to say it.
        types: tuple[str | None, ...] = (
            (GLOBAL_STANDARD, None) if deployment_type in (None, GLOBAL_STANDARD) else (deployment_type,)
        )
        versions: tuple[str | None, ...] = (version, None) if version else (None,)
        for wanted_version in versions:
            for wanted_type in types:
                found = self._in_force((key, wanted_version, wanted_type), at)
                if found is not None:
                    return found
        return None

    def ptu_hour_price(self, model: str, at: datetime, deployment_type: str) -> PtuHourPrice | None:
        """The hourly price of one PTU of a provisioned `deployment_type` at `at`: the model's own, else "*"."""
        _check_aware(at)
        key = self.resolve(model) or model
        for chain_key in ((key, deployment_type), (ANY_MODEL, deployment_type)):
            for price in reversed(self._ptu.get(chain_key, ())):
                if price.effective_from <= at:
                    if price.in_force_at(at):
                        return price
                    break
        return None

    def _in_force(self, chain_key: _ChainKey, at: datetime) -> ModelPrices | None:
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


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError(f"price lookups need a timezone-aware time, got naive {at.isoformat()}")


def _lookup_names(model: str) -> list[tuple[str, str | None]]:
    """The names to look `model` up by, in order, each with the version suffix it dropped (None: kept)."""
    cased = [model] if model == model.lower() else [model, model.lower()]
    unversioned = [
        (name[: found.start()], found.group(1)) for name in cased if (found := _VERSION_SUFFIX.search(name)) is not None
    ]
    names: list[tuple[str, str | None]] = []
    for name, suffix in [*((name, None) for name in cased), *unversioned]:
        for variant in (name, _GPT35_AZURE.sub("gpt-3.5", name), _GPT35_OPENAI.sub("gpt-35", name)):
            if all(variant != seen for seen, _ in names):
                names.append((variant, suffix))
    return names


def preferred_aliases(bare_names: Mapping[str, Iterable[tuple[str, str]]]) -> dict[str, str]:
    """bare model name -> the table key that answers for it: azure's entry first, then azure_ai, openai, others."""

    def rank(candidate: tuple[str, str]) -> tuple[int, str]:
        provider, key = candidate
        preferred = provider in _PROVIDER_PREFERENCE
        return (_PROVIDER_PREFERENCE.index(provider) if preferred else len(_PROVIDER_PREFERENCE)), key

    return {bare: min(candidates, key=rank)[1] for bare, candidates in bare_names.items()}
