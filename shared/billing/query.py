"""Read the model accounts' actual cost per UTC day, resource and meter from Cost Management's Query API.

The call: ``CostManagementClient.query.usage(scope, QueryDefinition)`` (azure-mgmt-costmanagement 5.x, POST
``{scope}/providers/Microsoft.CostManagement/query?api-version=2025-03-01``; Azure/azure-rest-api-specs
specification/cost-management/.../stable/2025-03-01, examples BillingAccountQueryGrouping.json) with
  type ActualCost (what is billed, purchases and discounts as charged; AmortizedCost would spread reservations),
  timeframe Custom with the settled days (timePeriod from the first day's start to the last day's last second),
  granularity Daily, aggregation Sum of Cost and Sum of UsageQuantity (the API allows two), grouping by
  ResourceId and Meter (the API allows two group-bys; MeterSubCategory would lose the token kind), filtered to
  the accounts' resource ids (ResourceId In [...]).
The answer is a table: ``properties.columns`` ({name, type}: the aggregated columns by their source names, Cost
and UsageQuantity of type Number, UsageDate of type Number as yyyymmdd, the group-by columns and Currency as
String) and ``properties.rows``, read here by column name, never position; ``properties.nextLink`` when more rows
remain, a URL carrying ``$skiptoken``: the same body is posted again with that token (the SDK's usage() returns
one page; its ``params`` keyword carries the token). 204 No Content: no cost at all.
Resource ids come back as Cost Management stores them (often lower case): they are compared case-insensitively,
as ARM ids are. A meter's UsageQuantity is in the meter's unit of measure: the Foundry token meters named
"... 1M Tokens" bill millions of tokens, the older "... Tokens" ones thousands (the Retail Prices API's
unitOfMeasure 1M / 1K for them: tests/costs/fixtures/retail-prices), a PTU meter hours.
Throttling: "12 QPU per 10 seconds, 60 QPU per 1 min, 600 QPU per 1 hour" per tenant, one QPU per month of data
queried; a throttled request is 429 with ``x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after`` ("the time to
back-off in seconds") (MicrosoftDocs/azure-docs articles/cost-management-billing/costs/manage-automation.md, "Query
API query processing units"); the entity, tenant and client-type variants name other quotas. Each page goes
through shared/azure_retry.py within the check's budget; what cannot be read raises ServicePending.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from shared.azure_retry import Attempted, Budget, ServicePending, call_within_budget

if TYPE_CHECKING:
    from azure.mgmt.costmanagement import CostManagementClient

    from shared.azure_clients import ModelAccount
    from shared.config import BillScope

QUERY_TYPE = "ActualCost"
GROUP_BY = ("ResourceId", "Meter")
COST_COLUMNS = ("Cost", "PreTaxCost", "CostUSD")  # the summed cost column, by the name the API gives it
RETRY_HEADERS = tuple(
    f"x-ms-ratelimit-microsoft.costmanagement-{quota}-retry-after"
    for quota in ("qpu", "entity", "tenant", "clienttype")
)
READ_ROLE = "Cost Management Reader on the scope (infra assigns it on the model account's resource group)"
MAX_PAGES = 100  # a day of a handful of accounts is a few dozen rows; more pages than this is a loop
_UNIT = re.compile(r"\b1M Tokens$", re.IGNORECASE)


@dataclass(frozen=True)
class BilledRow:
    """One meter of one resource on one UTC day, as Cost Management bills it."""

    day: datetime
    resource_id: str  # case folded
    meter: str
    cost: Decimal
    quantity: Decimal  # in the meter's unit of measure
    currency: str

    @property
    def tokens(self) -> int:
        """The billed quantity in tokens (0 for a meter that bills no tokens)."""
        if not self.meter.lower().endswith("tokens"):
            return 0
        per_unit = 1_000_000 if _UNIT.search(self.meter) else 1000
        return int((self.quantity * per_unit).to_integral_value())


def scope_of(account: ModelAccount, scope: BillScope) -> str:
    """The Cost Management scope the account's cost is asked at: its resource group, or its subscription."""
    if scope == "subscription":
        return f"/subscriptions/{account.subscription_id}"
    return f"/subscriptions/{account.subscription_id}/resourceGroups/{account.resource_group}"


def definition(accounts: Sequence[ModelAccount], first_day: datetime, last_day: datetime) -> dict[str, Any]:
    """The QueryDefinition body (the SDK takes its JSON form as it is) for the accounts' days first..last."""
    end = last_day + timedelta(days=1) - timedelta(seconds=1)
    return {
        "type": QUERY_TYPE,
        "timeframe": "Custom",
        "timePeriod": {"from": _iso(first_day), "to": _iso(end)},
        "dataset": {
            "granularity": "Daily",
            "aggregation": {
                "totalCost": {"name": "Cost", "function": "Sum"},
                "totalQuantity": {"name": "UsageQuantity", "function": "Sum"},
            },
            "grouping": [{"type": "Dimension", "name": name} for name in GROUP_BY],
            "filter": {
                "dimensions": {
                    "name": "ResourceId",
                    "operator": "In",
                    "values": [account.resource_id for account in accounts],
                }
            },
        },
    }


def read_billed(
    client: CostManagementClient,
    scope: str,
    accounts: Sequence[ModelAccount],
    first_day: datetime,
    last_day: datetime,
    budget: Budget,
) -> tuple[list[BilledRow], Attempted]:
    """Every billed row of the accounts at `scope` for the days, all pages. Raises ServicePending."""
    body = definition(accounts, first_day, last_day)
    who = f"Cost Management at {scope}"
    rows: list[BilledRow] = []
    requests = retries = 0
    token: str | None = None
    for _ in range(MAX_PAGES):
        params = {"$skiptoken": token} if token else {}

        def ask(timeout: float, params: dict[str, str] = params) -> Any:
            return client.query.usage(
                scope, body, params=params, connection_timeout=timeout, read_timeout=timeout
            )  # type: ignore[call-overload]

        try:
            answer, attempted = call_within_budget(ask, budget, who=who, role=READ_ROLE, retry_headers=RETRY_HEADERS)
        except ServicePending as pending:
            pending.retries += retries
            raise
        requests += attempted.requests
        retries += attempted.retries
        if answer is None:  # 204: nothing billed in the scope for the days
            break
        rows.extend(_rows(answer, who))
        token = _skip_token(getattr(answer, "next_link", None))
        if token is None:
            break
    else:
        raise ServicePending(f"{who}: more than {MAX_PAGES} pages", retries)
    return rows, Attempted(requests, retries)


def _rows(answer: Any, who: str) -> list[BilledRow]:
    columns = [str(getattr(column, "name", "") or "") for column in (answer.columns or ())]
    where = {name.casefold(): index for index, name in enumerate(columns)}
    cost_at = next((where[name.casefold()] for name in COST_COLUMNS if name.casefold() in where), None)
    needed = ("UsageQuantity", "UsageDate", "ResourceId", "Meter", "Currency")
    missing = [name for name in needed if name.casefold() not in where] + (["Cost"] if cost_at is None else [])
    if missing:
        # An answer we cannot read is no bill: pending, never compared as zero.
        raise ServicePending(f"{who}: the answer has no column {', '.join(missing)} (columns {columns})")
    found = []
    for row in answer.rows or ():
        found.append(
            BilledRow(
                day=_usage_date(row[where["usagedate"]]),
                resource_id=str(row[where["resourceid"]] or "").casefold(),
                meter=str(row[where["meter"]] or ""),
                cost=Decimal(str(row[cost_at] or 0)),
                quantity=Decimal(str(row[where["usagequantity"]] or 0)),
                currency=str(row[where["currency"]] or ""),
            )
        )
    return found


def _usage_date(value: Any) -> datetime:
    """UsageDate: a Number yyyymmdd (20261129) in the API's answers; a date-time text is read too."""
    text = str(int(value)) if isinstance(value, (int, float)) else str(value)
    if re.fullmatch(r"\d{8}", text):
        return datetime.combine(date(int(text[:4]), int(text[4:6]), int(text[6:])), datetime.min.time(), UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _skip_token(next_link: str | None) -> str | None:
    if not next_link:
        return None
    query = {name.lower(): values for name, values in parse_qs(urlsplit(next_link).query).items()}
    values = query.get("$skiptoken")
    return values[0] if values else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
