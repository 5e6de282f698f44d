"""The price catalog: one normalized row per price Azure bills, read and written as a reviewable JSON file.

    rows = read_catalog(Path("catalog.json"))        # InputFileError naming file, line and field
    Path("catalog.json").write_text(catalog_text(rows))  # sorted, one row a line: a refresh diffs cleanly
    changes = diff_catalogs(old_rows, new_rows)       # added, removed, changed (by key)

A row is keyed by model + version + deployment type + tier + token kind + region + currency, and is
valid from `effective_from` until the next row of the same key (None: since ever). Two rows of one
key with the same `effective_from` overlap, which the reader refuses.

The importers (catalog_retail.py: Azure Retail Prices API; catalog_litellm.py: LiteLLM's price map)
build these rows; `python -m tools.prices` writes them; shared/costs/price_files.py reads a catalog as the price
table (the shipped one is shared/costs/prices/catalog.json).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.json_input import Check, Invalid, JsonDocument, Problems, any_text, choice, number, read_json_file, text
from shared.money import ISO_4217_MINOR_UNITS

# The ARM deployment `sku.name` values, in the order the catalog sorts them. Source: "Deployment type
# comparison" table (SKU code column) of https://learn.microsoft.com/azure/foundry/foundry-models/concepts/deployment-types
# (read 2026-11-30). ARM types a deployment's `sku.name` as a free string ("Sku: name: string (Required):
# The name of the SKU", Azure/bicep-types-az generated/cognitiveservices/microsoft.cognitiveservices/
# 2026-09-01/types.md, resource accounts/deployments), so this list is ours to keep.
# DeveloperTier (fine-tuned model evaluation only) is left out: it prices no production traffic.
PAY_PER_TOKEN_TYPES = ("GlobalStandard", "DataZoneStandard", "Standard", "GlobalBatch", "DataZoneBatch")
PROVISIONED_TYPES = ("GlobalProvisionedManaged", "DataZoneProvisionedManaged", "ProvisionedManaged")
DEPLOYMENT_TYPES = PAY_PER_TOKEN_TYPES + PROVISIONED_TYPES

# Token kinds a pay-per-token deployment bills (reasoning tokens are inside output: never a kind of
# their own), and the one kind of a provisioned deployment: its hourly price per PTU.
TOKEN_KINDS = ("input", "cached_input", "cache_write", "output")
PTU_HOUR = "ptu_hour"
KINDS = (*TOKEN_KINDS, PTU_HOUR)

PER_1M_TOKENS = "per_1m_tokens"
PER_PTU_HOUR = "per_ptu_hour"
UNITS = (PER_1M_TOKENS, PER_PTU_HOUR)

# A PTU's hourly price does not depend on the model (one meter per deployment type): model "*".
ANY_MODEL = "*"

FORMAT = "apim-token-costs price catalog v1"
WHAT = "price catalog"


@dataclass(frozen=True, order=False)
class CatalogPrice:
    """One price: what is billed (model, version, deployment type, tier, token kind), how much, since when."""

    model: str  # Azure model name, lower case ("gpt-5.6-luna"); "*" for a PTU-hour price
    version: str | None  # model version ("2026-07-09"); None: every version
    deployment_type: str  # one of DEPLOYMENT_TYPES (ARM sku.name)
    tier: str  # "" (default), "priority", "flex", "above_272k_tokens", "above_272k_tokens_priority", ...
    token_kind: str  # one of KINDS
    price: Decimal  # in `currency` per `unit`
    unit: str  # PER_1M_TOKENS or PER_PTU_HOUR
    currency: str  # ISO 4217, as the source gives it ("USD")
    effective_from: date | None  # None: since ever (the source gives no date)
    region: str | None  # armRegionName, or the data zone ("us", "eu") of a Data Zone price; None: everywhere
    source: str  # URL + meter or key the price was read from

    @property
    def key(self) -> tuple[str, str, str, str, str, str, str]:
        """What one price is of; rows of one key differ only by effective_from."""
        return (
            self.model,
            self.version or "",
            self.deployment_type,
            self.tier,
            self.token_kind,
            self.region or "",
            self.currency,
        )

    def sort_key(self) -> tuple[Any, ...]:
        model, version, _, tier, _, region, currency = self.key
        return (
            model,
            version,
            DEPLOYMENT_TYPES.index(self.deployment_type),
            tier,
            KINDS.index(self.token_kind),
            region,
            currency,
            self.effective_from or date.min,
        )


@dataclass
class ImportResult:
    """What an importer made of its source: the rows, what it skipped on purpose, what it could not read."""

    rows: list[CatalogPrice] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count (not a chat token price)
    unknown: list[str] = field(default_factory=list)  # looked like a price we should know: never guessed
    conflicts: list[str] = field(default_factory=list)  # one key, one date, two prices: both left out

    def add(self, row: CatalogPrice) -> None:
        self.rows.append(row)

    def finish(self) -> ImportResult:
        """Drop exact repeats (the same price under two names) and both sides of a conflict; sort."""
        kept: dict[tuple[Any, ...], CatalogPrice] = {}
        clashing: set[tuple[Any, ...]] = set()
        for row in self.rows:
            dated = (*row.key, row.effective_from)
            first = kept.setdefault(dated, row)
            if first.price != row.price or first.unit != row.unit:
                if dated not in clashing:
                    self.conflicts.append(f"{_describe(first)}: {first.price} ({first.source}) vs {row.price}")
                clashing.add(dated)
        self.rows = sort_rows(row for dated, row in kept.items() if dated not in clashing)
        return self

    def summary(self) -> str:
        """Rows per deployment type, then skipped, unknown and conflicting entries, for the command's output."""
        per_type = Counter(row.deployment_type for row in self.rows)
        lines = [f"{len(self.rows)} prices"]
        lines += [f"  {kind}: {per_type[kind]}" for kind in DEPLOYMENT_TYPES if per_type[kind]]
        lines.append(f"skipped {sum(self.skipped.values())} (not a chat token or PTU price)")
        lines += [f"  {reason}: {count}" for reason, count in sorted(self.skipped.items())]
        lines.append(f"unknown {len(self.unknown)} (not read, never guessed)")
        lines += [f"  {entry}" for entry in self.unknown]
        if self.conflicts:
            lines.append(f"conflicting {len(self.conflicts)} (left out)")
            lines += [f"  {entry}" for entry in self.conflicts]
        return "\n".join(lines)


def supplement(result: ImportResult, extra: Iterable[CatalogPrice]) -> list[str]:
    """Add `extra` rows (prices the source lacks) to an import; returns the rows that contradict it (same key
    and date, another price), which are not added. A row the source already has with the same price is kept once."""
    have = {(*row.key, row.effective_from): row for row in result.rows}
    clashes = []
    for row in extra:
        found = have.get((*row.key, row.effective_from))
        if found is None:
            result.rows.append(row)
        elif (found.price, found.unit) != (row.price, row.unit):
            clashes.append(f"{_describe(row)}: {plain_decimal(row.price)} vs the source's {plain_decimal(found.price)}")
    result.rows = sort_rows(result.rows)
    return clashes


def carry_history(old: Sequence[CatalogPrice], result: ImportResult, today: date) -> list[str]:
    """Keep what the last catalog knew that an undated source (LiteLLM's map: current prices only) no longer says.

    A key whose undated price changed keeps its old rows and gets the new price from `today` (so windows
    before today stay priced as they were billed); a key the source dropped keeps its rows (a retired
    model's history still prices its old windows). Dated rows (the Retail Prices API's effectiveStartDate)
    are the source's own history and are left as given. Returns one line per key carried."""
    new_keys = {row.key for row in result.rows}
    old_by_key: dict[tuple[str, ...], list[CatalogPrice]] = {}
    for row in old:
        old_by_key.setdefault(row.key, []).append(row)
    notes: list[str] = []
    rows: list[CatalogPrice] = []
    for row in result.rows:
        previous = old_by_key.get(row.key, [])
        latest = max(previous, key=lambda r: r.effective_from or date.min, default=None)
        if row.effective_from is None and latest is not None and (latest.price, latest.unit) != (row.price, row.unit):
            since = max(today, (latest.effective_from or date.min) + timedelta(days=1))
            rows += previous
            rows.append(replace(row, effective_from=since))
            was, now = plain_decimal(latest.price), plain_decimal(row.price)
            notes.append(f"{_describe(row)}: {was} until {since}, then {now}")
        elif row.effective_from is None and len(previous) > 1 and latest is not None:
            rows += previous  # unchanged since its last change: its history stays
        else:
            rows.append(row)
    for key, previous in old_by_key.items():
        if key not in new_keys:
            rows += previous
            notes.append(f"{_describe(previous[-1])}: no longer in the source; its {len(previous)} price(s) kept")
    result.rows = sort_rows(rows)
    return notes


def _describe(row: CatalogPrice) -> str:
    version = f"@{row.version}" if row.version else ""
    tier = f" {row.tier}" if row.tier else ""
    region = f" in {row.region}" if row.region else ""
    since = f" from {row.effective_from}" if row.effective_from else ""
    return f"{row.model}{version} {row.deployment_type}{tier} {row.token_kind}{region} {row.currency}{since}"


def sort_rows(rows: Iterable[CatalogPrice]) -> list[CatalogPrice]:
    """The catalog's one order (model, version, deployment type, tier, kind, region, currency, date)."""
    return sorted(rows, key=CatalogPrice.sort_key)


# --- writing ---------------------------------------------------------------------------------------

_FIELDS = (
    "model", "version", "deployment_type", "tier", "token_kind", "price", "unit", "currency",
    "effective_from", "region", "source",
)  # fmt: skip


def plain_decimal(value: Decimal) -> str:
    """A price as a JSON number without exponent or trailing zeros: 0.2, 10, 0.0011."""
    return format(value.normalize(), "f")


def _row_json(row: CatalogPrice) -> str:
    values: dict[str, Any] = {
        "model": row.model,
        "version": row.version,
        "deployment_type": row.deployment_type,
        "tier": row.tier,
        "token_kind": row.token_kind,
        "price": None,  # written by hand below: json cannot write a Decimal exactly
        "unit": row.unit,
        "currency": row.currency,
        "effective_from": row.effective_from.isoformat() if row.effective_from else None,
        "region": row.region,
        "source": row.source,
    }
    parts = [
        f"{json.dumps(name)}: {plain_decimal(row.price) if name == 'price' else json.dumps(values[name])}"
        for name in _FIELDS
    ]
    return "{" + ", ".join(parts) + "}"


def catalog_text(rows: Iterable[CatalogPrice], *, note: str = "", version: str = "") -> str:
    """The catalog file: sorted, one row a line, so a refreshed catalog's diff shows each price changed.
    `version` is what summary rows record as their PriceVersion (empty: a hash of the file)."""
    ordered = sort_rows(rows)
    lines = ["{", f'  "format": {json.dumps(FORMAT)},', f'  "note": {json.dumps(note)},']
    if version:
        lines.append(f'  "version": {json.dumps(version)},')
    lines.append('  "prices": [')
    lines += [f"    {_row_json(row)}{',' if index < len(ordered) - 1 else ''}" for index, row in enumerate(ordered)]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


# --- reading ---------------------------------------------------------------------------------------


def _read_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


iso_date: Check[date] = Check("a date YYYY-MM-DD", _read_date)


def _model_name(value: Any) -> str | None:
    name = text(value)
    if name != name.lower():
        raise Invalid("a model name in lower case (as Azure names it)")
    return name


model_name: Check[str] = Check("a model name in lower case", _model_name)

# The one price check of price files (catalog rows, the native table, LiteLLM's map). Prices are held and
# multiplied exactly (shared/money.py: 60 digits, Inexact and Overflow trapped), so a price must leave room
# for a token count and the micro-unit rounding: a 61-digit price failed the table's read with
# decimal.Inexact, a 10**70 one every costs run that priced it. A billion currency units per unit is far
# above any model's price in any ISO 4217 currency (VND included); 30 digits far past any list price's.
MAX_PRICE = Decimal(10**9)
MAX_PRICE_DIGITS = 30
PRICE_EXPECTED = f"a price, 0 to 1e9, at most {MAX_PRICE_DIGITS} digits"
_price_range = number(minimum=0, maximum=MAX_PRICE)


def _read_price(value: Any) -> Decimal | None:
    try:
        amount = _price_range(value)
    except Invalid:
        return None
    return amount if len(amount.normalize().as_tuple().digits) <= MAX_PRICE_DIGITS else None


price_amount: Check[Decimal] = Check(PRICE_EXPECTED, _read_price)

# The one currency check of price files (the native table's too): a code we know the minor unit of.
currency_code: Check[str] = Check(
    f"an ISO 4217 code such as USD or EUR (known: {', '.join(sorted(ISO_4217_MINOR_UNITS))})",
    lambda value: value if isinstance(value, str) and value in ISO_4217_MINOR_UNITS else None,
)


def read_catalog(path: Path) -> list[CatalogPrice]:
    """The rows of a catalog file; InputFileError with every problem (file, line, field) at once."""
    document = read_json_file(path, WHAT)
    return sort_rows(row for row, _ in catalog_rows(document))


def catalog_version(document: JsonDocument) -> str:
    """The catalog's `version` plus 8 hex digits of the file's sha256 ("2026-11-30.1+3f9c0a1b"): summary rows
    record it, so two catalogs that differ in any price never share a version, even under one declared name
    (a second refresh the same day, a hand edit). Without `version`: "sha256:" + 12 hex digits."""
    digest = hashlib.sha256(document.raw).hexdigest()
    version = document.root.get("version") if isinstance(document.root, dict) else None
    if isinstance(version, str) and version:
        return f"{version}+{digest[:8]}"
    return "sha256:" + digest[:12]


def catalog_rows(document: JsonDocument) -> list[tuple[CatalogPrice, int | None]]:
    """Each row of a parsed catalog with its line; InputFileError with every problem at once."""
    problems = Problems(document.source, WHAT)
    top = problems.fields(document.root, "")
    top.get("format", choice([FORMAT]))
    top.get("note", any_text, "")
    top.optional("version", text)
    top.unknown({"format", "note", "version", "prices"}, "a price catalog")
    rows: list[tuple[CatalogPrice, int | None]] = []
    where: dict[tuple[Any, ...], int | None] = {}
    for row_path, line, raw in top.items("prices"):
        row = _read_row(problems, row_path, line, raw)
        if row is None:
            continue
        dated = (*row.key, row.effective_from)
        if dated in where:
            problems.add(
                line,
                f"{row_path}.effective_from",
                f"{_describe(row)} is given twice for the same dates (also on line {where[dated]}): "
                "one key needs a different effective_from per price",
            )
        else:
            where[dated] = line
            rows.append((row, line))
    problems.raise_if_any()
    return rows


def _read_row(problems: Problems, path: str, line: int | None, raw: Any) -> CatalogPrice | None:
    fields = problems.fields(raw, path, line)
    if not isinstance(raw, dict):
        problems.add(line, path, f"expected an object (one price), got {type(raw).__name__}")
        return None
    before = len(problems.items)
    model = fields.get("model", model_name)
    version = fields.optional("version", text)
    deployment_type = fields.get("deployment_type", choice(DEPLOYMENT_TYPES))
    tier = fields.get("tier", any_text, "")
    token_kind = fields.get("token_kind", choice(KINDS))
    price = fields.get("price", price_amount)
    unit = fields.get("unit", choice(UNITS))
    currency = fields.get("currency", currency_code)
    effective_from = fields.optional("effective_from", iso_date)
    region = fields.optional("region", text)
    source = fields.get("source", text)
    fields.unknown(set(_FIELDS), "a price")
    if len(problems.items) > before:
        return None
    # The kind, the unit and the deployment type must agree: a PTU bills hours, the others tokens.
    provisioned = deployment_type in PROVISIONED_TYPES
    if provisioned != (token_kind == PTU_HOUR):
        wanted = f"{PTU_HOUR} (a provisioned deployment bills PTU-hours)" if provisioned else ", ".join(TOKEN_KINDS)
        fields.bad("token_kind", f"{wanted} for {deployment_type}")
        return None
    if unit != (PER_PTU_HOUR if provisioned else PER_1M_TOKENS):
        fields.bad("unit", f"{PER_PTU_HOUR if provisioned else PER_1M_TOKENS} for {token_kind}")
        return None
    if provisioned and version is not None:
        fields.bad("version", "null: a PTU-hour price is per deployment type, not per model version")
        return None
    if model == ANY_MODEL and not provisioned:
        fields.bad("model", 'a model name ("*" is for a PTU-hour price only)')
        return None
    return CatalogPrice(
        model, version, deployment_type, tier, token_kind, price, unit, currency, effective_from, region, source
    )


# --- comparing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogDiff:
    added: list[CatalogPrice]
    removed: list[CatalogPrice]
    changed: list[tuple[CatalogPrice, CatalogPrice]]  # (old, new): same key and date, another price or source

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def text(self) -> str:
        lines = [f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed"]
        lines += [f"+ {_describe(row)}: {plain_decimal(row.price)} {row.unit}" for row in self.added]
        lines += [f"- {_describe(row)}: {plain_decimal(row.price)} {row.unit}" for row in self.removed]
        lines += [
            f"~ {_describe(new)}: {plain_decimal(old.price)} -> {plain_decimal(new.price)} {new.unit}"
            + ("" if old.source == new.source else f" (source {old.source} -> {new.source})")
            for old, new in self.changed
        ]
        return "\n".join(lines)


def diff_catalogs(old: Sequence[CatalogPrice], new: Sequence[CatalogPrice]) -> CatalogDiff:
    """What a refresh changes: rows matched by key and effective date."""
    before = {(*row.key, row.effective_from): row for row in old}
    after = {(*row.key, row.effective_from): row for row in new}
    return CatalogDiff(
        added=sort_rows(row for dated, row in after.items() if dated not in before),
        removed=sort_rows(row for dated, row in before.items() if dated not in after),
        changed=[
            (before[(*row.key, row.effective_from)], row)
            for row in sort_rows(after.values())
            if before.get((*row.key, row.effective_from), row) != row
        ],
    )
