"""Importer: Azure Retail Prices API pages → catalog rows.

The API (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices, read
2026-11-30) answers GET https://prices.azure.com/api/retail/prices?$filter=...&currencyCode=... with
pages {"BillingCurrency", "CustomerEntityId", "CustomerEntityType", "Items": [...], "NextPageLink",
"Count"}; NextPageLink is the next page's full URL (null on the last). Each item has serviceName,
productName, skuName, meterName, armRegionName, unitOfMeasure, retailPrice, unitPrice, currencyCode,
effectiveStartDate and type / priceType ("Consumption", "Reservation", ...).

Azure OpenAI / Foundry models sit under serviceName 'Foundry Models' (the URLs in LiteLLM 1.110.2's
price map, e.g. its azure/gpt-5.6-luna "source"). Their meter names are abbreviations, read here word
by word from the end: "<model words> [ShortCo] [cached|cd] <Inp|Opt|Wr> [Std] <Gl|glbl|DZ|DZone|regnl>
<1M >Tokens" (examples and where each was seen: tests/costs/fixtures/retail-prices/README.md). A
provisioned deployment's hourly price is the meter "Provisioned Managed <Global|Data Zone|Regional>
Unit" (unitOfMeasure "1/Hour"). A meter that does not read this way, or whose model words are not
in MODEL_WORDS, is reported as unknown, never guessed; a meter that is no token or PTU price (images,
seconds, hosting, ...) is skipped by its unit.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.costs.catalog import (
    ANY_MODEL,
    PER_1M_TOKENS,
    PER_PTU_HOUR,
    PTU_HOUR,
    CatalogPrice,
    ImportResult,
)
from shared.errors import AzureServiceError

ENDPOINT = "https://prices.azure.com/api/retail/prices"
SERVICE = "Foundry Models"

# Meter model words (lower case, split at blanks and hyphens) → (Azure model name, version or None).
# The words are the ones seen in real meter names (fixtures README); the version a short code stands
# for is the Azure model version of that release in https://learn.microsoft.com/azure/foundry/openai/concepts/models
# (read 2026-11-30). A model missing here makes its meters "unknown": add it with its source.
MODEL_WORDS: dict[tuple[str, ...], tuple[str, str | None]] = {
    ("5.6", "luna"): ("gpt-5.6-luna", None),
    ("5.6", "terra"): ("gpt-5.6-terra", None),
    ("5.6", "sol"): ("gpt-5.6-sol", None),
    ("5.5",): ("gpt-5.5", None),
    ("5.4",): ("gpt-5.4", None),
    ("5.4", "mini"): ("gpt-5.4-mini", None),
    ("gpt", "5"): ("gpt-5", None),
    ("gpt", "5.1"): ("gpt-5.1", None),
    ("gpt", "4.1"): ("gpt-4.1", None),
    ("gpt", "4.1", "nano"): ("gpt-4.1-nano", None),
    ("gpt", "4o", "1120"): ("gpt-4o", "2024-11-20"),
    ("gpt", "4o", "mini", "0718"): ("gpt-4o-mini", "2024-07-18"),
    ("o3", "0416"): ("o3", "2025-04-16"),
    ("o4", "mini", "0416"): ("o4-mini", "2025-04-16"),
}

# The last word: where the deployment processes (Gl/glbl Global, DZ/DZone Data Zone, regnl regional).
_DEPLOYMENT_WORDS = {
    "gl": "GlobalStandard",
    "glbl": "GlobalStandard",
    "dz": "DataZoneStandard",
    "dzone": "DataZoneStandard",
    "regnl": "Standard",
    "rgnl": "Standard",
}
_INPUT_WORDS = {"inp", "inpt"}
_OUTPUT_WORDS = {"opt", "outp", "outpt"}
_CACHED_WORDS = {"cd", "cached", "cchd"}
_WRITE_WORDS = {"wr"}
# "ShortCo": the short-context (default) price of a model that also has a long-context one.
_DEFAULT_TIER_WORDS = {"shortco"}
_STANDARD_WORDS = {"std"}

_PER_UNIT = {"1M": Decimal(1), "1K": Decimal(1000)}  # multiply to get the price per 1M tokens
_PTU_UNITS = {"1/Hour"}
_PTU_METER = re.compile(r"Provisioned Managed (Global|Data Zone|Regional) Unit")
_PTU_TYPES = {
    "Global": "GlobalProvisionedManaged",
    "Data Zone": "DataZoneProvisionedManaged",
    "Regional": "ProvisionedManaged",
}
_SUFFIX = re.compile(r"(?: 1M)? Tokens$", re.IGNORECASE)


def query_url(*, region: str | None = None, currency: str | None = None, endpoint: str = ENDPOINT) -> str:
    """The first page's URL: the service (and region), consumption prices only, in `currency`."""
    clauses = [f"serviceName eq '{SERVICE}'", "priceType eq 'Consumption'"]
    if region:
        clauses.append(f"armRegionName eq '{region}'")
    query = {"$filter": " and ".join(clauses)}
    if currency:
        query["currencyCode"] = f"'{currency}'"
    return f"{endpoint}?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}"


def fetch_pages(url: str, *, timeout_seconds: float = 60) -> Iterator[Mapping[str, Any]]:
    """Each page from `url` on, following NextPageLink. Numbers are kept exact (Decimal).

    AzureServiceError when a page cannot be read (HTTP error, network, not a page): a catalog is
    written from every page or not at all.
    """
    next_url: str | None = url
    while next_url:
        request = urllib.request.Request(next_url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                page = json.loads(response.read().decode("utf-8"), parse_float=Decimal)
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", "replace")[:300]
            raise AzureServiceError(f"{next_url}: HTTP {error.code} {error.reason}: {body}") from None
        except (OSError, ValueError) as error:  # URLError, timeouts, a body that is not JSON
            raise AzureServiceError(f"{next_url}: {error}") from None
        if not isinstance(page, dict) or not isinstance(page.get("Items"), list):
            raise AzureServiceError(f"{next_url}: not a Retail Prices page (no Items list)")
        yield page
        next_url = page.get("NextPageLink") or None


def import_pages(pages: Iterable[Mapping[str, Any]], source: str) -> ImportResult:
    """The catalog rows of every item of `pages`; `source` (the query URL) goes into each row's source."""
    result = ImportResult()
    for page in pages:
        for item in page["Items"]:
            _import_item(item, source, result)
    return result.finish()


def _import_item(item: Mapping[str, Any], source: str, result: ImportResult) -> None:
    meter = str(item.get("meterName", ""))
    unit = str(item.get("unitOfMeasure", ""))
    item_type = item.get("type") or item.get("priceType")
    if item_type != "Consumption":
        result.skipped[f"type {item_type}"] += 1
        return
    price = item.get("retailPrice")
    if isinstance(price, bool) or not isinstance(price, int | Decimal) or price < 0:
        result.unknown.append(f"{meter!r}: retailPrice {price!r} is not a price")
        return
    currency = str(item.get("currencyCode", ""))
    region = str(item.get("armRegionName") or "") or None
    effective_from = _effective_date(item.get("effectiveStartDate"))
    where = f"{source} meterName '{meter}'" + (f" armRegionName '{region}'" if region else "")
    if unit in _PTU_UNITS:
        match = _PTU_METER.fullmatch(meter)
        if not match:
            result.skipped[f"unit {unit} (not a PTU meter)"] += 1
            return
        result.add(
            CatalogPrice(
                ANY_MODEL, None, _PTU_TYPES[match[1]], "", PTU_HOUR, Decimal(price), PER_PTU_HOUR,
                currency, effective_from, region, where,
            )
        )  # fmt: skip
        return
    if unit not in _PER_UNIT:
        result.skipped[f"unit {unit}"] += 1
        return
    parsed = parse_meter(meter)
    if isinstance(parsed, str):
        result.unknown.append(f"{item.get('productName')}: {meter!r}: {parsed}")
        return
    model, version, deployment_type, tier, token_kind = parsed
    result.add(
        CatalogPrice(
            model, version, deployment_type, tier, token_kind, Decimal(price) * _PER_UNIT[unit], PER_1M_TOKENS,
            currency, effective_from, region, where,
        )
    )  # fmt: skip


def _effective_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def parse_meter(meter: str) -> tuple[str, str | None, str, str, str] | str:
    """(model, version, deployment type, tier, token kind) of a token meter, or why it cannot be read."""
    words = [word for word in re.split(r"[\s\-]+", _SUFFIX.sub("", meter).lower()) if word]
    if not words or words[-1] not in _DEPLOYMENT_WORDS:
        return "no deployment word (Gl, glbl, DZ, DZone, regnl) at the end"
    deployment_type = _DEPLOYMENT_WORDS[words.pop()]
    if words and words[-1] in _STANDARD_WORDS:
        words.pop()
    if not words:
        return "no token kind"
    last = words.pop()
    if last in _WRITE_WORDS and words and words[-1] in _CACHED_WORDS:
        words.pop()
        token_kind = "cache_write"
    elif last in _INPUT_WORDS:
        token_kind = "input"
        if words and words[-1] in _CACHED_WORDS:
            words.pop()
            token_kind = "cached_input"
    elif last in _OUTPUT_WORDS:
        token_kind = "output"
    else:
        return f"no token kind (Inp, Opt, Cd Inp, Cd Wr) before the deployment word, got {last!r}"
    if words and words[-1] in _DEFAULT_TIER_WORDS:
        words.pop()
    model = MODEL_WORDS.get(tuple(words))
    if model is None:
        return f"model words {' '.join(words)!r} are not in MODEL_WORDS"
    return model[0], model[1], deployment_type, "", token_kind
