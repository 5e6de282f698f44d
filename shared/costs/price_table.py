"""The versioned price table: load and validate it, look up the prices in force for a model.

Two file shapes are read:

* **native** (shared/costs/prices/price-table.json)::

      {"version": "2026-11-01.1", "currency": "USD", "unit": "per_1m_tokens",
       "models": {"gpt-4o": [{"effective_from": "2024-08-06", "currency": "USD",
                              "prices": {"input": 2.50, "cached_input": 1.25, "output": 10.00}}]}}

  `unit` is one of per_token, per_1k_tokens, per_1m_tokens. A period may set `effective_to`
  (exclusive); otherwise it lasts until the next period of the same model starts. `cached_input`
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

A window is priced with the prices in force at its start (`prices_for(model, window_start)`).
Prices are parsed from the JSON text as Decimal (never through float) and stored per token.
Everything here is stdlib: function_app.py imports this at start, so it must stay cheap.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from shared.money import ISO_4217_MINOR_UNITS, MONEY_CONTEXT
from shared.windows import as_utc

TOKENS_PER_PRICE_UNIT: Mapping[str, int] = {
    "per_token": 1,
    "per_1k_tokens": 1_000,
    "per_1m_tokens": 1_000_000,
}

BEGINNING_OF_TIME = datetime(1, 1, 1, tzinfo=UTC)

_NATIVE_TOP_KEYS = frozenset({"version", "currency", "unit", "models", "note", "source"})
_PERIOD_KEYS = frozenset({"effective_from", "effective_to", "currency", "prices", "note", "source"})
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


class PriceTableError(ValueError):
    """A price table (or deployment map) file cannot be used; says the file, entry and field."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        model: str | None = None,
        field: str | None = None,
        line: int | None = None,
        column: int | None = None,
        subject: str = "model",
    ) -> None:
        self.source = source
        self.problem = problem
        self.model = model
        self.field = field
        self.line = line
        self.column = column
        # "<file>, line L, column C: model 'm', field 'f': problem" — each part only when known.
        location = source
        if line is not None:
            location += f", line {line}" + (f", column {column}" if column is not None else "")
        entry = [f"{subject} {model!r}"] if model is not None else []
        entry += [f"field {field!r}"] if field is not None else []
        parts = [location, ", ".join(entry), problem] if entry else [location, problem]
        super().__init__(": ".join(parts))


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
        # Periods are sorted and non-overlapping (checked at load); starts kept for bisect.
        self._periods = {model: tuple(periods) for model, periods in periods_by_model.items()}
        self._starts = {model: [p.effective_from for p in periods] for model, periods in self._periods.items()}
        self._aliases = dict(bare_name_aliases or {})
        self._resolved: dict[str, str | None] = {}

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted(self._periods))

    def periods(self, model: str) -> tuple[ModelPrices, ...]:
        key = self.resolve(model)
        return () if key is None else self._periods[key]

    def resolve(self, model: str) -> str | None:
        """The table key that prices `model` (rules in the module docstring), or None."""
        if model in self._resolved:
            return self._resolved[model]
        found = next((key for name in _lookup_names(model) if (key := self._key_for(name)) is not None), None)
        self._resolved[model] = found
        return found

    def prices_for(self, model: str, at: datetime) -> ModelPrices | None:
        """The prices in force for `model` at `at` (a window's start), or None: unpriced.

        None is returned both for an unknown model and for a time outside every period of a known
        one; the caller must flag such usage, never price it at zero.
        """
        if at.tzinfo is None:
            raise ValueError(f"prices_for needs a timezone-aware time, got naive {at.isoformat()}")
        key = self.resolve(model)
        if key is None:
            return None
        index = bisect.bisect_right(self._starts[key], at) - 1
        if index < 0:
            return None
        period = self._periods[key][index]
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


def load_price_table(path: Path) -> PriceTable:
    """Read and validate a price table file (native or LiteLLM shape); PriceTableError if unusable."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PriceTableError(source, f"cannot read the price table: {exc.strerror or exc}") from exc
    text = _decode(source, raw)
    document = parse_json_document(source, text)
    if not isinstance(document, dict):
        raise PriceTableError(source, "the top level must be a JSON object", line=1)
    if "models" in document:
        return _NativeParser(source, text, document).parse()
    if any(
        isinstance(entry, dict) and (_LITELLM_INPUT in entry or "litellm_provider" in entry)
        for entry in document.values()
    ):
        return _parse_litellm(source, text, raw, document)
    raise PriceTableError(
        source,
        "not a price table: expected a 'models' object (native format) or LiteLLM model entries "
        f"with {_LITELLM_INPUT!r} / {_LITELLM_OUTPUT!r}",
        field="models",
    )


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers keys given twice (json.loads would silently keep the last)."""

    duplicate_keys: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicates: list[str] = []
        for key, _ in pairs:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
        obj.duplicate_keys = tuple(duplicates)
    return obj


def _decode(source: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PriceTableError(source, f"not UTF-8 text (byte {exc.start})") from exc


def parse_json_document(source: str, text: str) -> Any:
    """JSON with numbers as Decimal/int (no float ever), duplicate keys recorded, syntax errors located."""
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            # NaN / Infinity are not JSON numbers; keep them as Decimal so validation names the field.
            parse_constant=Decimal,
            object_pairs_hook=_object_pairs,
        )
    except json.JSONDecodeError as exc:
        raise PriceTableError(source, f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from exc


def line_of_key(text: str, key: str) -> int | None:
    """The line where `"key":` first appears (best effort, only computed for error messages)."""
    match = re.search(re.escape(json.dumps(key)) + r"\s*:", text)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def check_no_duplicate_keys(
    source: str, text: str, obj: Any, *, model: str | None, field: str, subject: str = "model"
) -> None:
    """Refuse a key given twice in `obj`; `model` None means the keys themselves are model names."""
    if isinstance(obj, _JsonObject) and obj.duplicate_keys:
        dup = obj.duplicate_keys[0]
        raise PriceTableError(
            source,
            f"key {dup!r} is given more than once (JSON would silently keep the last)",
            model=model if model is not None else dup,
            field=field,
            line=line_of_key(text, model if model is not None else dup),
            subject=subject,
        )


def _price_value(value: Any) -> Decimal | str:
    """The price as Decimal, or the reason it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return f"not a number: {value!r}"
    price = Decimal(value)
    if not price.is_finite():
        return f"not a finite number: {value}"
    if price < 0:
        return f"negative price {price}"
    return price


class _NativeParser:
    def __init__(self, source: str, text: str, document: dict[str, Any]) -> None:
        self.source = source
        self.text = text
        self.document = document

    def fail(self, problem: str, *, model: str | None = None, field: str | None = None) -> PriceTableError:
        line = line_of_key(self.text, model) if model is not None else None
        if line is None and field is not None:
            line = line_of_key(self.text, field.split(".")[0])
        return PriceTableError(self.source, problem, model=model, field=field, line=line)

    def parse(self) -> PriceTable:
        doc = self.document
        check_no_duplicate_keys(self.source, self.text, doc, model=None, field="(top level)")
        unknown = sorted(set(doc) - _NATIVE_TOP_KEYS)
        if unknown:
            raise self.fail(
                f"unknown top-level key(s) {unknown}; expected {sorted(_NATIVE_TOP_KEYS)}", field=unknown[0]
            )
        version = doc.get("version")
        if not isinstance(version, str) or not version.strip():
            raise self.fail(f"missing or empty version string (got {version!r})", field="version")
        currency = self.currency(doc.get("currency"), model=None, field="currency")
        unit = doc.get("unit")
        if not isinstance(unit, str) or unit not in TOKENS_PER_PRICE_UNIT:
            raise self.fail(f"unknown unit {unit!r}; expected one of {sorted(TOKENS_PER_PRICE_UNIT)}", field="unit")
        tokens_per_unit = Decimal(TOKENS_PER_PRICE_UNIT[unit])
        models = doc["models"]
        if not isinstance(models, dict) or not models:
            raise self.fail("'models' must be a non-empty object of model name -> list of periods", field="models")
        check_no_duplicate_keys(self.source, self.text, models, model=None, field="models")
        periods_by_model = {
            model: self.model_periods(model, periods, currency, tokens_per_unit) for model, periods in models.items()
        }
        return PriceTable(
            version=version.strip(),
            source=self.source,
            file_format="native",
            periods_by_model=periods_by_model,
        )

    def currency(self, value: Any, *, model: str | None, field: str) -> str:
        if not isinstance(value, str) or value not in ISO_4217_MINOR_UNITS:
            raise self.fail(
                f"unknown currency {value!r}; expected an ISO 4217 code such as USD or EUR "
                f"(known: {', '.join(sorted(ISO_4217_MINOR_UNITS))})",
                model=model,
                field=field,
            )
        return value

    def model_periods(
        self, model: str, periods: Any, default_currency: str, tokens_per_unit: Decimal
    ) -> list[ModelPrices]:
        if not model.strip():
            raise self.fail("model name is empty", model=model, field="models")
        if not isinstance(periods, list) or not periods:
            raise self.fail("expected a non-empty list of price periods", model=model, field="periods")
        parsed = [
            self.period(model, index, period, default_currency, tokens_per_unit) for index, period in enumerate(periods)
        ]
        parsed.sort(key=lambda pair: pair[0].effective_from)
        return self.chain(model, parsed)

    def period(
        self, model: str, index: int, period: Any, default_currency: str, tokens_per_unit: Decimal
    ) -> tuple[ModelPrices, bool]:
        at = f"[{index}]"
        if not isinstance(period, dict):
            raise self.fail("a price period must be an object", model=model, field=at)
        check_no_duplicate_keys(self.source, self.text, period, model=model, field=at)
        unknown = sorted(set(period) - _PERIOD_KEYS)
        if unknown:
            raise self.fail(
                f"unknown key(s) {unknown}; expected {sorted(_PERIOD_KEYS)}",
                model=model,
                field=f"{at}.{unknown[0]}",
            )
        if "effective_from" not in period:
            raise self.fail("missing effective_from (ISO date, UTC)", model=model, field=f"{at}.effective_from")
        effective_from = self.instant(period["effective_from"], model=model, field=f"{at}.effective_from")
        effective_to = None
        explicit_end = period.get("effective_to") is not None
        if explicit_end:
            effective_to = self.instant(period["effective_to"], model=model, field=f"{at}.effective_to")
            if effective_to <= effective_from:
                raise self.fail(
                    f"effective_to {effective_to:%Y-%m-%d %H:%M} is not after effective_from "
                    f"{effective_from:%Y-%m-%d %H:%M}",
                    model=model,
                    field=f"{at}.effective_to",
                )
        currency = default_currency
        if "currency" in period:
            currency = self.currency(period["currency"], model=model, field=f"{at}.currency")
        prices = period.get("prices")
        if not isinstance(prices, dict):
            raise self.fail(
                "missing 'prices' object (input, output, optional cached_input)",
                model=model,
                field=f"{at}.prices",
            )
        check_no_duplicate_keys(self.source, self.text, prices, model=model, field=f"{at}.prices")
        unknown = sorted(set(prices) - _PRICE_KEYS)
        if unknown:
            raise self.fail(
                f"unknown price key(s) {unknown}; expected {sorted(_PRICE_KEYS)}",
                model=model,
                field=f"{at}.prices.{unknown[0]}",
            )
        input_price = self.price(prices, "input", model=model, at=at, tokens_per_unit=tokens_per_unit)
        output_price = self.price(prices, "output", model=model, at=at, tokens_per_unit=tokens_per_unit)
        has_cached = prices.get("cached_input") is not None
        cached_price = (
            self.price(prices, "cached_input", model=model, at=at, tokens_per_unit=tokens_per_unit)
            if has_cached
            else input_price
        )
        return (
            ModelPrices(
                model=model,
                effective_from=effective_from,
                effective_to=effective_to,
                input_price_per_token=input_price,
                cached_input_price_per_token=cached_price,
                output_price_per_token=output_price,
                currency=currency,
                has_cached_input_price=has_cached,
            ),
            explicit_end,
        )

    def price(self, prices: dict[str, Any], name: str, *, model: str, at: str, tokens_per_unit: Decimal) -> Decimal:
        field = f"{at}.prices.{name}"
        if prices.get(name) is None:
            raise self.fail(f"missing {name} price", model=model, field=field)
        checked = _price_value(prices[name])
        if isinstance(checked, str):
            raise self.fail(checked, model=model, field=field)
        return MONEY_CONTEXT.divide(checked, tokens_per_unit)

    def instant(self, value: Any, *, model: str, field: str) -> datetime:
        if not isinstance(value, str):
            raise self.fail(f"not an ISO date string: {value!r}", model=model, field=field)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(
                f"cannot parse {value!r} as an ISO date (YYYY-MM-DD, UTC) or datetime",
                model=model,
                field=field,
            ) from None
        return as_utc(parsed)  # a date or naive datetime is UTC: Azure bills in UTC days

    def chain(self, model: str, parsed: Sequence[tuple[ModelPrices, bool]]) -> list[ModelPrices]:
        """Sorted periods -> each ends where the next starts (or earlier if it says so)."""
        chained: list[ModelPrices] = []
        for index, (period, _) in enumerate(parsed):
            following = parsed[index + 1][0] if index + 1 < len(parsed) else None
            end = period.effective_to
            if following is not None:
                if following.effective_from == period.effective_from:
                    raise self.fail(
                        f"two periods start on {period.effective_from:%Y-%m-%d %H:%M}",
                        model=model,
                        field="effective_from",
                    )
                if end is not None and end > following.effective_from:
                    raise self.fail(
                        f"period from {period.effective_from:%Y-%m-%d} to {end:%Y-%m-%d} overlaps the "
                        f"period from {following.effective_from:%Y-%m-%d}",
                        model=model,
                        field="effective_to",
                    )
                if end is None:
                    end = following.effective_from
            chained.append(_with_end(period, end))
        return chained


def _with_end(period: ModelPrices, end: datetime | None) -> ModelPrices:
    return ModelPrices(
        model=period.model,
        effective_from=period.effective_from,
        effective_to=end,
        input_price_per_token=period.input_price_per_token,
        cached_input_price_per_token=period.cached_input_price_per_token,
        output_price_per_token=period.output_price_per_token,
        currency=period.currency,
        has_cached_input_price=period.has_cached_input_price,
    )


def _parse_litellm(source: str, text: str, raw: bytes, document: dict[str, Any]) -> PriceTable:
    check_no_duplicate_keys(source, text, document, model=None, field="(top level)")

    def fail(problem: str, model: str, field: str) -> PriceTableError:
        return PriceTableError(source, problem, model=model, field=field, line=line_of_key(text, model))

    version_value = document.get("version")
    if version_value is not None and (not isinstance(version_value, str) or not version_value.strip()):
        raise PriceTableError(
            source,
            f"'version' must be a non-empty string, got {version_value!r}",
            field="version",
            line=line_of_key(text, "version"),
        )
    version = (
        version_value.strip() if isinstance(version_value, str) else "sha256:" + hashlib.sha256(raw).hexdigest()[:12]
    )
    periods_by_model: dict[str, list[ModelPrices]] = {}
    bare_names: dict[str, list[tuple[str, str]]] = {}  # bare name -> [(provider, key)]
    for key, entry in document.items():
        if key == "version" or key in _LITELLM_IGNORED_ENTRIES:
            continue
        if not isinstance(entry, dict):
            raise fail(f"a model entry must be an object, got {type(entry).__name__}", key, "(entry)")
        if entry.get(_LITELLM_INPUT) is None or entry.get(_LITELLM_OUTPUT) is None:
            continue  # not priced per token (image / audio / rerank ...): stays unpriced, flagged later
        check_no_duplicate_keys(source, text, entry, model=key, field="(entry)")
        prices: dict[str, Decimal] = {}
        for field in (_LITELLM_INPUT, _LITELLM_OUTPUT, _LITELLM_CACHED):
            if entry.get(field) is None:
                continue
            checked = _price_value(entry[field])
            if isinstance(checked, str):
                raise fail(checked, key, field)
            prices[field] = checked
        has_cached = _LITELLM_CACHED in prices
        periods_by_model[key] = [
            ModelPrices(
                model=key,
                effective_from=BEGINNING_OF_TIME,
                effective_to=None,
                input_price_per_token=prices[_LITELLM_INPUT],
                cached_input_price_per_token=prices[_LITELLM_CACHED] if has_cached else prices[_LITELLM_INPUT],
                output_price_per_token=prices[_LITELLM_OUTPUT],
                currency="USD",
                has_cached_input_price=has_cached,
            )
        ]
        provider = entry.get("litellm_provider")
        if isinstance(provider, str) and key.startswith(provider + "/") and len(key) > len(provider) + 1:
            bare_names.setdefault(key[len(provider) + 1 :], []).append((provider, key))
    if not periods_by_model:
        raise PriceTableError(source, f"no model has both {_LITELLM_INPUT!r} and {_LITELLM_OUTPUT!r}", field="models")
    return PriceTable(
        version=version,
        source=source,
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
