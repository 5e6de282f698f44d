"""Cost Management stand-in: the Query API the bill check calls, served on the ARM stand-in (standins/arm.py).

The contract (Azure/azure-rest-api-specs specification/cost-management/resource-manager/Microsoft.CostManagement/
stable/2025-03-01, Query_Usage, as azure-mgmt-costmanagement 5.0.0 ``query.usage`` sends it):
- ``POST {scope}/providers/Microsoft.CostManagement/query?api-version=2025-03-01`` with a QueryDefinition body,
  scope ``/subscriptions/{s}`` or ``/subscriptions/{s}/resourceGroups/{g}``; 200 QueryResult ``{"id", "name",
  "type": "microsoft.costmanagement/Query", "properties": {"nextLink", "columns": [{"name", "type"}], "rows"}}``
  (examples/BillingAccountQueryGrouping.json): the aggregated columns by their source names (Cost, UsageQuantity:
  Number), UsageDate (Number, yyyymmdd) with Daily granularity, the group-by columns, Currency; nextLink an absolute
  URL with ``$skiptoken`` when rows remain (the client posts the same body with it).
- Only what the bill check asks is modelled, anything else is 400 (where Azure would answer): type ActualCost,
  timeframe Custom, granularity Daily, Sum of Cost and UsageQuantity, grouping ResourceId and Meter, a ResourceId In
  filter; more than two aggregations or group-bys is 400 as in Azure ("Query can have up to 2 group by clauses",
  the SDK's QueryDataset docstring).
- Data: the simulator's true usage (standins/simulator/meters.py, every call it served, cached prompt tokens apart)
  x a "billed" price list per model and token kind (stack.config.json "cost_management": an enterprise discount is
  ``price_factor`` 0.85, a cached-token metering difference ``cached_billed_as`` "input"), one row per UTC day,
  account (its resource id lower-cased, as Cost Management stores ids) and meter, the meter named as the Retail
  Prices API names Foundry meters ("5.6 luna ShortCo Cd Inp Std Gl 1M Tokens", quantity in millions).
- Lag: a minute's usage is billed only ``lag_seconds`` after it ("typically available ... within 8-24 hours",
  MicrosoftDocs/azure-docs articles/cost-management-billing/costs/understand-cost-mgt-data.md); late rows can be
  added to a day by a test (``add_late_rows``), as Azure's late usage restates a day.
- Faults as Azure answers them: 429 with ``x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after`` (manage-
  automation.md, "Query API query processing units"), 503 ServiceUnavailable, 403 AuthorizationFailed without
  Cost Management Reader on the scope (the ARM refusal standins/arm.py words), 401 without an ARM token (the ARM
  stand-in's middleware).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from standins.simulator.meters import MeterRecord

API_VERSION = "2025-03-01"
READ_ACTION = "Microsoft.CostManagement/query/read"
QPU_RETRY_HEADER = "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"
_SKU_WORDS = {"GlobalStandard": "Gl", "DataZoneStandard": "DZ", "Standard": "regnl"}
_KIND_WORDS = {"input": "Inp", "cached_input": "Cd Inp", "output": "Opt"}


class QueryRefused(ValueError):
    """A query the stand-in answers with 400 {"error": {"code", "message"}}."""


@dataclass(frozen=True)
class BilledPrice:
    meter_words: str  # "5.6 luna"
    prices_per_1m: Mapping[str, Decimal]  # token kind -> list price per million


@dataclass
class BillingConfig:
    """The "cost_management" section of standins/stack.config.json."""

    prices: Mapping[str, BilledPrice]  # model -> its meters' prices
    currency: str = "USD"
    price_factor: Decimal = Decimal(1)  # 0.85: an enterprise discount; 1.15: a price 15% over the list
    cached_billed_as: str = "cached_input"  # "input": cached prompt tokens metered at the input price
    lag_seconds: float = 0.0
    page_size: int = 50
    late_rows: list[dict[str, Any]] = field(default_factory=list)  # added by tests: billed later than usage

    @classmethod
    def from_stack(cls, section: Mapping[str, Any]) -> BillingConfig:
        return cls(
            prices={
                model: BilledPrice(str(raw["meter"]), {kind: Decimal(str(raw[kind])) for kind in _KIND_WORDS})
                for model, raw in section.get("prices", {}).items()
            },
            currency=str(section.get("currency", "USD")),
            price_factor=Decimal(str(section.get("price_factor", 1))),
            cached_billed_as=str(section.get("cached_billed_as", "cached_input")),
            lag_seconds=float(section.get("lag_seconds", 0)),
            page_size=int(section.get("page_size", 50)),
        )


@dataclass(frozen=True)
class Deployed:
    """What the bill needs of a deployment: its model and deployment type (the meter's words)."""

    model: str
    sku: str


def check_definition(body: Any, account_ids: Sequence[str]) -> tuple[datetime, datetime, set[str]]:
    """(first day, day after the last, resource ids folded) of a QueryDefinition the stand-in serves; else raises."""
    if not isinstance(body, Mapping):
        raise QueryRefused("The request body is not a QueryDefinition.")
    if body.get("type") != "ActualCost" or body.get("timeframe") != "Custom":
        raise QueryRefused(f"this stand-in serves type ActualCost with timeframe Custom, not {body.get('type')}")
    period = body.get("timePeriod") or {}
    try:
        start = datetime.fromisoformat(str(period["from"]).replace("Z", "+00:00")).astimezone(UTC)
        to = datetime.fromisoformat(str(period["to"]).replace("Z", "+00:00")).astimezone(UTC)
    except (KeyError, ValueError):
        raise QueryRefused("timePeriod from and to are required with timeframe Custom") from None
    dataset = body.get("dataset") or {}
    if dataset.get("granularity") != "Daily":
        raise QueryRefused("this stand-in serves granularity Daily")
    aggregation = dataset.get("aggregation") or {}
    grouping = dataset.get("grouping") or []
    if len(aggregation) > 2 or len(grouping) > 2:
        raise QueryRefused("Query can have up to 2 aggregation clauses and up to 2 group by clauses.")
    names = sorted(str(item.get("name")) for item in aggregation.values())
    if names != ["Cost", "UsageQuantity"] or any(item.get("function") != "Sum" for item in aggregation.values()):
        raise QueryRefused(f"this stand-in sums Cost and UsageQuantity, not {names}")
    if [item.get("name") for item in grouping] != ["ResourceId", "Meter"]:
        raise QueryRefused("this stand-in groups by ResourceId and Meter")
    dimension = ((dataset.get("filter") or {}).get("dimensions")) or {}
    if dimension.get("name") != "ResourceId" or dimension.get("operator") != "In":
        raise QueryRefused("this stand-in filters on ResourceId In [...] only")
    wanted = {str(value).casefold() for value in dimension.get("values") or ()}
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    return first, to.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1), wanted & {
        account.casefold() for account in account_ids
    }


def billed_rows(
    config: BillingConfig,
    records: Sequence[MeterRecord],
    deployments: Mapping[str, Deployed],
    account_id: str,
    first: datetime,
    end: datetime,
    visible_until: datetime,
) -> list[list[Any]]:
    """[Cost, UsageQuantity, UsageDate, ResourceId, Meter, Currency] per UTC day and meter of the account."""
    tokens: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    costs: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for record in records:
        if not (first <= record.minute < end) or record.minute + timedelta(minutes=1) > visible_until:
            continue
        deployed = deployments.get(record.deployment)
        price = config.prices.get(deployed.model) if deployed else None
        if deployed is None or price is None:
            continue  # a model this bill has no meter for is billed nowhere here
        day = int(record.minute.strftime("%Y%m%d"))
        cached_kind = config.cached_billed_as
        for kind, count in (
            ("input", record.prompt_tokens - record.cached_tokens),
            (cached_kind, record.cached_tokens),
            ("output", record.generated_tokens),
        ):
            if not count:
                continue
            where = _SKU_WORDS.get(deployed.sku, "Gl")
            meter = f"{price.meter_words} ShortCo {_KIND_WORDS[kind]} Std {where} 1M Tokens"
            tokens[(day, meter)] += Decimal(count)
            costs[(day, meter)] += Decimal(count) * price.prices_per_1m[kind] * config.price_factor / 1_000_000
    rows = [
        [float(costs[key]), float(tokens[key] / 1_000_000), key[0], account_id.casefold(), key[1], config.currency]
        for key in sorted(tokens)
    ]
    for late in config.late_rows:
        if late["account"].casefold() == account_id.casefold() and first <= late["day"] < end:
            rows.append([late["cost"], late["quantity"], int(late["day"].strftime("%Y%m%d")), account_id.casefold(),
                         late["meter"], config.currency])  # fmt: skip
    return rows


COLUMNS = [
    {"name": "Cost", "type": "Number"},
    {"name": "UsageQuantity", "type": "Number"},
    {"name": "UsageDate", "type": "Number"},
    {"name": "ResourceId", "type": "String"},
    {"name": "Meter", "type": "String"},
    {"name": "Currency", "type": "String"},
]


def query_result(scope: str, rows: Sequence[Sequence[Any]], next_link: str | None) -> dict[str, Any]:
    name = "00000000-0000-4000-8000-00000000c057"
    return {
        "id": f"{scope}/providers/Microsoft.CostManagement/query/{name}",
        "name": name,
        "type": "microsoft.costmanagement/Query",
        "properties": {"nextLink": next_link, "columns": COLUMNS, "rows": [list(row) for row in rows]},
    }


def body_of(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise QueryRefused("The request body is not valid JSON.") from None
