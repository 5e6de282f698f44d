"""Importer: LiteLLM's model price map (model_prices_and_context_window.json) → catalog rows.

The map is one object of entries keyed by model, each with `litellm_provider`, `mode` and cost
fields in USD per token (read from LiteLLM 1.110.2's PyPI wheel, litellm/model_prices_and_context_window_backup.json,
2026-11-30). The Azure entries and what they say:

- keys `azure/<model>` and `azure/<model>-<version>` (version YYYY-MM-DD, or an older MMDD such as
  gpt-35-turbo-0125): Global Standard list prices (their `source` is the Retail Prices API's Foundry
  Models meters, whose Global meters carry these figures); `azure/global/…`, `azure/global-standard/…`
  say so outright;
- `azure/us/…`, `azure/eu/…`, `azure/apac/…`: Data Zone Standard in that data zone;
- `azure/us-gov/…`: Azure Government, another cloud with other prices: skipped;
- fields `input_cost_per_token`, `output_cost_per_token`, `cache_read_input_token_cost` (cached
  input) and `cache_creation_input_token_cost` (cache write), each optionally followed by
  `_above_<N>k_tokens` (long-context tier), `_priority` or `_flex` (processing tiers) or `_batches`
  (the Batch deployment type of the same zone).

Entries whose `mode` is not chat or responses (images, audio, embeddings, ...) are skipped and
counted; cost fields of other kinds (audio, image, search) are not token prices of ours and are ignored.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.costs.catalog import PER_1M_TOKENS, CatalogPrice, ImportResult
from shared.json_input import Problems, read_json_file

SOURCE = "LiteLLM model_prices_and_context_window.json"
WHAT = "LiteLLM price map"
CHAT_MODES = {"chat", "responses"}

_ZONES = {"us": "us", "eu": "eu", "apac": "apac"}  # Data Zone prefixes → our region value
_GLOBAL_PREFIXES = {"global", "global-standard"}
_OTHER_CLOUDS = {"us-gov"}
_BATCH_OF = {"GlobalStandard": "GlobalBatch", "DataZoneStandard": "DataZoneBatch"}
_KIND_OF_FIELD = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write",
}
_FIELD = re.compile(
    r"(?P<base>" + "|".join(_KIND_OF_FIELD) + r")(?P<long>_above_\d+k_tokens)?(?:_(?P<mode>priority|flex|batches))?"
)
# A version is a date (gpt-4o-2024-08-06), or the MMDD of the older GPT models (gpt-35-turbo-0125):
# elsewhere four digits are part of the name (mistral-large-2407).
_VERSION = re.compile(r"(?P<model>.+?)-(?P<version>\d{4}-\d{2}-\d{2})|(?P<gpt>gpt-.+?)-(?P<mmdd>\d{4})")
_PER_TOKEN_TO_PER_1M = Decimal(1_000_000)


def import_litellm(path: Path) -> ImportResult:
    """The catalog rows of the Azure chat entries of LiteLLM's map at `path`."""
    document = read_json_file(path, WHAT)
    result = ImportResult()
    if not isinstance(document.root, dict):
        Problems(document.source, WHAT).fail(None, "", "expected an object of model entries (LiteLLM's format)")
    for key, entry in document.root.items():
        if not key.startswith("azure/"):
            continue
        if not isinstance(entry, dict):
            result.unknown.append(f"{key}: not an object")
            continue
        _import_entry(key, entry, result)
    return result.finish()


def _import_entry(key: str, entry: dict[str, Any], result: ImportResult) -> None:
    if entry.get("mode") not in CHAT_MODES:
        result.skipped[f"mode {entry.get('mode')}"] += 1
        return
    parts = key.split("/")[1:]
    deployment_type, region = "GlobalStandard", None
    if len(parts) == 2 and parts[0] in _OTHER_CLOUDS:
        result.skipped[f"cloud {parts[0]}"] += 1
        return
    if len(parts) == 2 and parts[0] in _ZONES:
        deployment_type, region = "DataZoneStandard", _ZONES[parts[0]]
    elif len(parts) != 1 and not (len(parts) == 2 and parts[0] in _GLOBAL_PREFIXES):
        result.unknown.append(f"{key}: prefix {'/'.join(parts[:-1])!r} names no deployment type we know")
        return
    model, version = _model_and_version(parts[-1])
    source = f"{SOURCE} key {key}" + (f" (its source: {entry['source']})" if entry.get("source") else "")
    for name, value in entry.items():
        match = _FIELD.fullmatch(name)
        if match is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | Decimal) or value < 0:
            result.unknown.append(f"{key}.{name}: {value!r} is not a price")
            continue
        # The tier as the field names it: above_272k_tokens, priority, above_272k_tokens_flex, "" (default).
        long_context = (match["long"] or "").lstrip("_")
        row_type = _BATCH_OF[deployment_type] if match["mode"] == "batches" else deployment_type
        processing = match["mode"] if match["mode"] in ("priority", "flex") else ""
        tier = "_".join(part for part in (long_context, processing) if part)
        result.add(
            CatalogPrice(
                model, version, row_type, tier, _KIND_OF_FIELD[match["base"]],
                Decimal(value) * _PER_TOKEN_TO_PER_1M, PER_1M_TOKENS, "USD", None, region, f"{source} field {name}",
            )
        )  # fmt: skip


def _model_and_version(name: str) -> tuple[str, str | None]:
    """gpt-5.6-luna-2026-07-09 → (gpt-5.6-luna, 2026-07-09); gpt-35-turbo-0125 → (gpt-35-turbo, 0125)."""
    match = _VERSION.fullmatch(name)
    if match is None:
        return name.lower(), None
    if match["gpt"]:
        return match["gpt"].lower(), match["mmdd"]
    return match["model"].lower(), match["version"]
