"""Reading a price table file: the catalog, the native table, or LiteLLM's map, into one PriceTable.

`load_price_table(path)` tells the shape by its content and refuses a broken file as a whole (every problem
at once, each with file, line and field): the run never prices with part of a table.

* **catalog** (shared/costs/prices/catalog.json, the default; shared/costs/catalog.py): one row per price,
  written by `python -m tools.prices` from the Azure Retail Prices API or LiteLLM's map. Rows are grouped
  by model + version + deployment type (+ currency); each group's periods start at every date on which
  one of its kinds changes, and hold the latest price of each kind from then on. A group without an input
  and an output price from its first date on (LiteLLM lists some batch input prices without output ones)
  is left out (`PriceTable.left_out`, logged by each run): its usage is flagged unpriced, never half priced. Rows of a
  tier other than the default are not used (price_table.py says why). Rows of one region (a data zone,
  an Azure region) are used when every region agrees on the figure; where regions disagree the key is
  left out (`PriceTable.left_out`), so its usage is flagged unpriced instead of priced at another
  region's rate. The version is the catalog's `version`, else a hash of the file.

* **native** (the table this project shipped before the catalog; still a handy override)::

      {"version": "2026-11-01.1", "currency": "USD", "unit": "per_1m_tokens",
       "models": {"gpt-4o": [{"effective_from": "2024-08-06", "version": "2024-08-06",
                              "deployment_type": "DataZoneStandard",
                              "prices": {"input": 2.75, "cached_input": 1.375, "output": 11.00}}],
                  "*": [{"effective_from": "2025-01-01", "deployment_type": "GlobalProvisionedManaged",
                         "prices": {"ptu_hour": 1.00}}]}}

  `unit` (per_token, per_1k_tokens, per_1m_tokens) applies to token prices; `ptu_hour` is per PTU-hour.
  A period without `deployment_type` is untyped: a Global Standard list price. `version` (optional) is
  a model version. A period may set `effective_to` (exclusive); otherwise it lasts until the next period
  of the same model, version and type. Overlapping periods of one key are refused. `cached_input` and
  `cache_write` are optional: without `cached_input`, cached prompt tokens get NO discount (priced at
  input: over-stating visibly beats guessing a discount). A provisioned type's period needs `ptu_hour`
  and nothing else (its tokens cost nothing per token); model "*" is for those periods only.

* **LiteLLM** `model_prices_and_context_window.json`, dropped in as-is: entries with
  `input_cost_per_token`, `output_cost_per_token`, optional `cache_read_input_token_cost` and
  `cache_creation_input_token_cost` (USD per token), no dates, no types: each entry is untyped, in force
  since ever. Entries without both token prices are skipped (they stay unpriced, flagged downstream).

Prices are parsed from the JSON text as Decimal (never through float) and stored per token.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from shared.costs.catalog import (
    ANY_MODEL,
    DEPLOYMENT_TYPES,
    FORMAT,
    PROVISIONED_TYPES,
    PTU_HOUR,
    catalog_rows,
    catalog_version,
    currency_code,
    plain_decimal,
    price_amount,
)
from shared.costs.deployments import describe_price_key
from shared.costs.price_table import BEGINNING_OF_TIME, ModelPrices, PriceTable, PtuHourPrice, preferred_aliases
from shared.json_input import Check, Fields, JsonDocument, Problems, choice, read_json_file, show, text
from shared.money import MONEY_CONTEXT
from shared.windows import as_utc

TOKENS_PER_PRICE_UNIT: Mapping[str, int] = {
    "per_token": 1,
    "per_1k_tokens": 1_000,
    "per_1m_tokens": 1_000_000,
}
_TOKENS_PER_CATALOG_UNIT = Decimal(1_000_000)  # catalog token prices are per 1M tokens

_WHAT = "price table"
_PRICE = price_amount
_PRICE_EXPECTED = price_amount.expected

_NATIVE_TOP_KEYS = frozenset({"version", "currency", "unit", "models", "note", "source"})
_PERIOD_KEYS = frozenset(
    {"effective_from", "effective_to", "deployment_type", "version", "currency", "prices", "note", "source"}
)
_TOKEN_PRICE_KEYS = frozenset({"input", "cached_input", "cache_write", "output"})
_LITELLM_INPUT = "input_cost_per_token"
_LITELLM_OUTPUT = "output_cost_per_token"
_LITELLM_CACHED = "cache_read_input_token_cost"
_LITELLM_CACHE_WRITE = "cache_creation_input_token_cost"
_LITELLM_IGNORED_ENTRIES = frozenset({"sample_spec"})


def load_price_table(path: Path) -> PriceTable:
    """Read and validate a price table file (catalog, native or LiteLLM shape); InputFileError if unusable."""
    document = read_json_file(path, _WHAT)
    root = document.root
    problems = Problems(document.source, _WHAT)
    if not isinstance(root, Mapping):
        problems.fail(1, "", f"expected a JSON object at the top level, got {show(root)}")
    if "format" in root and root.get("format") == FORMAT:
        return _from_catalog(document)
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
            f'not a price table: expected a catalog ("format": "{FORMAT}"), a "models" object (native '
            f"table) or LiteLLM model entries with {_LITELLM_INPUT} / {_LITELLM_OUTPUT}",
        )
    problems.raise_if_any()
    assert table is not None  # no problems: every part was read
    return table


# --- the catalog -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dated:
    since: datetime
    price: Decimal
    source: str
    line: int | None


def _from_catalog(document: JsonDocument) -> PriceTable:
    located = catalog_rows(document)  # raises with every row problem
    problems = Problems(document.source, _WHAT)
    left_out: list[str] = []
    # (model, version, type, kind) -> currency -> region -> dated prices; default tier only.
    grouped: dict[tuple[str, str | None, str, str], dict[str, dict[str | None, list[_Dated]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for row, line in located:
        if row.tier:
            continue  # not priceable from gateway metrics (price_table.py): kept in the file, unused here
        since = BEGINNING_OF_TIME if row.effective_from is None else _day_start(row.effective_from)
        per_unit = Decimal(1) if row.token_kind == PTU_HOUR else _TOKENS_PER_CATALOG_UNIT
        price = MONEY_CONTEXT.divide(row.price, per_unit)
        key = (row.model, row.version, row.deployment_type, row.token_kind)
        grouped[key][row.currency][row.region].append(_Dated(since, price, row.source, line))

    # One chain of dated prices per kind: the region-free one, or the one every region agrees on.
    chains: dict[tuple[str, str | None, str, str], tuple[str, list[_Dated]]] = {}
    for key, by_currency in grouped.items():
        model, version, deployment_type, kind = key
        what = describe_price_key(model, version, deployment_type)
        if len(by_currency) > 1:
            first_line = next(d.line for regions in by_currency.values() for d in next(iter(regions.values())))
            problems.add(
                first_line,
                "prices",
                f"{what} {kind} is priced in {' and '.join(sorted(by_currency))}: a table holds one currency per key",
            )
            continue
        ((currency, by_region),) = by_currency.items()
        if None in by_region:
            chains[key] = (currency, sorted(by_region[None], key=lambda d: d.since))
            continue
        ordered = {region: sorted(dated, key=lambda d: d.since) for region, dated in by_region.items()}
        figures = {region: tuple((d.since, d.price) for d in dated) for region, dated in ordered.items()}
        if len(set(figures.values())) == 1:
            chains[key] = (currency, next(iter(ordered.values())))
        else:
            shown = ", ".join(
                f"{region}: {' then '.join(plain_decimal(price * _TOKENS_PER_CATALOG_UNIT) for _, price in chain)}"
                for region, chain in sorted(figures.items(), key=lambda item: str(item[0]))
            )
            left_out.append(f"{what} {kind}: prices differ by region ({shown}); left unpriced")

    periods_by_model: dict[str, list[ModelPrices]] = defaultdict(list)
    ptu_prices: list[PtuHourPrice] = []
    token_groups: dict[tuple[str, str | None, str], dict[str, tuple[str, list[_Dated]]]] = defaultdict(dict)
    for (model, version, deployment_type, kind), chain in chains.items():
        if kind == PTU_HOUR:
            ptu_prices += _ptu_chain(model, deployment_type, *chain)
        else:
            token_groups[(model, version, deployment_type)][kind] = chain
    for (model, version, deployment_type), kinds in token_groups.items():
        periods_by_model[model] += _token_periods(problems, left_out, model, version, deployment_type, kinds)
    problems.raise_if_any()
    return PriceTable(
        version=catalog_version(document),
        source=document.source,
        file_format="catalog",
        periods_by_model=periods_by_model,
        ptu_prices=ptu_prices,
        left_out=left_out,
    )


def _token_periods(
    problems: Problems,
    left_out: list[str],
    model: str,
    version: str | None,
    deployment_type: str,
    kinds: Mapping[str, tuple[str, list[_Dated]]],
) -> list[ModelPrices]:
    """One key's per-token periods: a new period wherever any kind's price changes. A key without input and
    output prices from its first date (a source listing a batch input meter but no output one) is left out."""
    currencies = {currency for currency, _ in kinds.values()}
    what = describe_price_key(model, version, deployment_type)
    if len(currencies) > 1:
        any_line = next(d.line for _, chain in kinds.values() for d in chain)
        shown = ", ".join(sorted(currencies))
        problems.add(any_line, "prices", f"{what} mixes currencies ({shown}) across token kinds")
        return []
    (currency,) = currencies
    # Periods start where both an input and an output price are in force (an undated cached price from a
    # supplement must not start a period before the source's dated ones), then wherever any kind changes.
    missing = " and ".join(kind for kind in ("input", "output") if kind not in kinds)
    if missing:
        left_out.append(f"{what}: no {missing} price; left unpriced")
        return []
    first = max(kinds[kind][1][0].since for kind in ("input", "output"))  # chains are sorted by `since`
    starts = sorted({d.since for _, chain in kinds.values() for d in chain if d.since >= first} | {first})
    periods: list[ModelPrices] = []
    for index, start in enumerate(starts):
        in_force = {kind: _latest(chain, start) for kind, (_, chain) in kinds.items()}
        input_price, output_price = in_force["input"], in_force["output"]
        assert input_price is not None and output_price is not None  # from complete[0] on, both are
        cached, cache_write = in_force.get("cached_input"), in_force.get("cache_write")
        periods.append(
            ModelPrices(
                model=model,
                effective_from=start,
                effective_to=starts[index + 1] if index + 1 < len(starts) else None,
                input_price_per_token=input_price.price,
                cached_input_price_per_token=(cached or input_price).price,
                output_price_per_token=output_price.price,
                currency=currency,
                has_cached_input_price=cached is not None,
                deployment_type=deployment_type,
                version=version,
                cache_write_price_per_token=None if cache_write is None else cache_write.price,
                source=input_price.source,
            )
        )
    return periods


def _ptu_chain(model: str, deployment_type: str, currency: str, chain: Sequence[_Dated]) -> list[PtuHourPrice]:
    return [
        PtuHourPrice(
            model=model,
            deployment_type=deployment_type,
            effective_from=dated.since,
            effective_to=chain[index + 1].since if index + 1 < len(chain) else None,
            price_per_ptu_hour=dated.price,
            currency=currency,
            source=dated.source,
        )
        for index, dated in enumerate(chain)
    ]


def _latest(chain: Sequence[_Dated], at: datetime) -> _Dated | None:
    found = None
    for dated in chain:  # sorted by `since`
        if dated.since > at:
            break
        found = dated
    return found


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)  # Azure bills in UTC days


# --- the native table ------------------------------------------------------------------------------

def _read_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    try:
        return as_utc(parsed)  # a date or naive datetime is UTC: Azure bills in UTC days
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first instant a datetime holds in UTC
        return None


_instant = Check("an ISO date (YYYY-MM-DD, UTC) or datetime", _read_instant)


def _parse_native(problems: Problems, root: Mapping[str, Any]) -> PriceTable | None:
    top = problems.fields(root, "")
    top.unknown(_NATIVE_TOP_KEYS)
    version = top.get("version", text)
    currency = top.get("currency", currency_code, fallback="USD")
    unit = top.get("unit", choice(sorted(TOKENS_PER_PRICE_UNIT)), fallback="per_token")
    tokens_per_unit = Decimal(TOKENS_PER_PRICE_UNIT[unit])
    expected = "a non-empty object of model name -> list of periods"
    models = top.object("models", expected=expected)
    periods_by_model: dict[str, list[ModelPrices]] = {}
    ptu_prices: list[PtuHourPrice] = []
    if models is not None and not models.raw:
        top.bad("models", expected)
    elif models is not None:
        for model in models.raw:
            if not model.strip():
                models.problem(model, "the model name is empty")
            before = len(problems.items)
            items = models.items(model, expected="a non-empty list of price periods")
            read = [_period(problems, model, path, line, raw, currency, tokens_per_unit) for path, line, raw in items]
            if len(problems.items) > before:
                continue
            token = [(p, f) for p, f in (pair for pair in read if pair is not None) if isinstance(p, ModelPrices)]
            ptu = [(p, f) for p, f in (pair for pair in read if pair is not None) if isinstance(p, PtuHourPrice)]
            for key in dict.fromkeys((p.version, p.deployment_type) for p, _ in token):
                chain = _chain(model, [(p, f) for p, f in token if (p.version, p.deployment_type) == key])
                periods_by_model.setdefault(model, []).extend(chain)
            for deployment_type in dict.fromkeys(p.deployment_type for p, _ in ptu):
                ptu_prices += _chain(model, [(p, f) for p, f in ptu if p.deployment_type == deployment_type])
    if problems:
        return None
    return PriceTable(
        version=version,
        source=problems.source,
        file_format="native",
        periods_by_model=periods_by_model,
        ptu_prices=ptu_prices,
    )


def _period(
    problems: Problems,
    model: str,
    path: str,
    line: int | None,
    raw: Any,
    default_currency: str,
    tokens_per_unit: Decimal,
) -> tuple[ModelPrices | PtuHourPrice, Fields] | None:
    if not isinstance(raw, Mapping):
        problems.add(line, path, f"expected a price period object, got {show(raw)}")
        return None
    before = len(problems.items)
    period = problems.fields(raw, path, line)
    period.unknown(_PERIOD_KEYS)
    effective_from = period.get("effective_from", _instant)
    effective_to = period.optional("effective_to", _instant)
    deployment_type = period.optional("deployment_type", choice(DEPLOYMENT_TYPES))
    version = period.optional("version", text)
    if effective_from is not None and effective_to is not None and effective_to <= effective_from:
        period.problem(
            "effective_to",
            f"{effective_to:%Y-%m-%d %H:%M} is not after effective_from {effective_from:%Y-%m-%d %H:%M}",
        )
    currency = period.get("currency", currency_code, default_currency)
    provisioned = deployment_type in PROVISIONED_TYPES
    if model == ANY_MODEL and not provisioned:
        period.problem(
            "deployment_type",
            f'model "{ANY_MODEL}" is for PTU-hour prices: expected one of {", ".join(PROVISIONED_TYPES)}, '
            f"got {show(deployment_type)}",
        )
    source = period.get("source", text, "")
    if provisioned:
        prices = period.object("prices", expected=f'an object with the hourly price of one PTU: {{"{PTU_HOUR}": 1.00}}')
        ptu_price = None
        if prices is not None:
            if version is not None:
                period.problem("version", "a PTU-hour price is per deployment type; it has no model version")
            prices.unknown(
                frozenset({PTU_HOUR}),
                f"a {deployment_type} period (its per-token prices are zero: a provisioned deployment bills PTU-hours)",
            )
            ptu_price = prices.get(
                PTU_HOUR, _PRICE, expected=f"the price of one PTU-hour for {deployment_type}: {_PRICE_EXPECTED}"
            )
        if len(problems.items) > before or effective_from is None or ptu_price is None:
            return None
        return (
            PtuHourPrice(model, deployment_type, effective_from, effective_to, ptu_price, currency, source),
            period,
        )
    prices = period.object("prices", expected="an object of prices: input, output, optional cached_input, cache_write")
    input_price = output_price = cached_price = cache_write_price = None
    if prices is not None:
        if PTU_HOUR in prices:
            prices.problem(
                PTU_HOUR,
                f"a PTU-hour price belongs to a provisioned deployment type: set deployment_type to one of "
                f"{', '.join(PROVISIONED_TYPES)} (got {show(deployment_type)})",
            )
        prices.unknown(_TOKEN_PRICE_KEYS | ({PTU_HOUR} & set(prices.raw)))  # ptu_hour: worded above
        input_price = prices.get("input", _PRICE, expected=_PRICE_EXPECTED)
        output_price = prices.get("output", _PRICE, expected=_PRICE_EXPECTED)
        cached_price = prices.optional("cached_input", _PRICE, expected=_PRICE_EXPECTED)
        cache_write_price = prices.optional("cache_write", _PRICE, expected=_PRICE_EXPECTED)
    if len(problems.items) > before or effective_from is None or input_price is None or output_price is None:
        return None
    per_token = MONEY_CONTEXT.divide
    return (
        ModelPrices(
            model=model,
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
            version=version,
            cache_write_price_per_token=None
            if cache_write_price is None
            else per_token(cache_write_price, tokens_per_unit),
            source=source,
        ),
        period,
    )


P = TypeVar("P", ModelPrices, PtuHourPrice)


def _chain(model: str, read: Sequence[tuple[P, Fields]]) -> list[P]:
    """One key's periods, sorted by start; each ends where the next starts (or earlier if it says so)."""
    periods = sorted(read, key=lambda pair: pair[0].effective_from)
    chained: list[P] = []
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


# --- LiteLLM's map ---------------------------------------------------------------------------------


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
        cache_write_price = entry.optional(_LITELLM_CACHE_WRITE, _PRICE, expected=_PRICE_EXPECTED)
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
                cache_write_price_per_token=cache_write_price,
                source=f"LiteLLM map key {key}",
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
        bare_name_aliases=preferred_aliases(bare_names),
    )
