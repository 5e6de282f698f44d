"""Our side of the bill check: what the cost summaries say each model account cost per UTC day, per meter group.

The summaries' latest complete revision per window (shared/logs/kql/bill-our-cost-by-deployment-day.kql, the
include every reader shares) summed per day and deployment, then per account: each deployment is placed in the
account ARM lists it under (shared/costs/deployments.py, the discovery the costs run uses, read once per check).
A deployment found in no account (deployments.json's own entries, another provider) is in no account's bill.
Costs stay integer micro-units until they are shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.logs.kql import load_query
from shared.logs.query import query_table

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

QUERY_FILE = "bill-our-cost-by-deployment-day.kql"
COLUMNS = (
    "Day", "Deployment", "Model", "Currency", "InputTokens", "CachedTokens", "OutputTokens", "InputCostMicros",
    "CachedCostMicros", "OutputCostMicros", "ProvisionedCostMicros", "UnpricedTokens", "CacheUnmeteredTokens",
)  # fmt: skip


@dataclass
class OurDay:
    """One account's UTC day in our summaries: tokens and micro-units per meter group, and the evidence."""

    currency: str = ""
    tokens: dict[str, int] = field(default_factory=dict)  # meter group -> tokens
    cost_micros: dict[str, int] = field(default_factory=dict)  # meter group -> cost
    unpriced_tokens: int = 0
    unpriced_models: set[str] = field(default_factory=set)
    cache_unmetered_tokens: int = 0  # prompt tokens priced at input because no cache discount was metered
    models: set[str] = field(default_factory=set)

    def add(self, group: str, tokens: int, micros: int) -> None:
        self.tokens[group] = self.tokens.get(group, 0) + tokens
        self.cost_micros[group] = self.cost_micros.get(group, 0) + micros


def read_our_days(
    client: LogsQueryClient,
    workspace_id: str,
    first_day: datetime,
    last_day: datetime,
    account_of: Mapping[str, str],
) -> tuple[dict[tuple[datetime, str], OurDay], list[str]]:
    """{(day, account id folded): our figures} for the days first..last, and the deployments in no account.
    `account_of`: deployment name folded -> its account's resource id. Raises QueryError."""
    end = last_day + timedelta(days=1)
    query = load_query(QUERY_FILE, {"start_time": first_day, "end_time": end})
    # Summaries carry TimeGenerated = their revision time, after their window: ask up to now.
    rows = query_table(
        client, workspace_id, "bill check: our cost per deployment and day", query,
        (first_day, max(end, datetime.now(UTC))), COLUMNS,
    )  # fmt: skip
    return our_days(rows, account_of)


def our_days(
    rows: Sequence[Sequence[Any]], account_of: Mapping[str, str]
) -> tuple[dict[tuple[datetime, str], OurDay], list[str]]:
    days: dict[tuple[datetime, str], OurDay] = {}
    outside: set[str] = set()
    for raw in rows:
        row = dict(zip(COLUMNS, raw, strict=True))
        deployment = str(row["Deployment"] or "")
        account = account_of.get(deployment.casefold())
        if account is None:
            outside.add(deployment)
            continue
        day = _day(row["Day"])
        ours = days.setdefault((day, account.casefold()), OurDay())
        if row["Currency"]:
            ours.currency = ours.currency or str(row["Currency"])
        model = str(row["Model"] or deployment)
        ours.models.add(model)
        unpriced = int(row["UnpricedTokens"] or 0)
        if unpriced:
            ours.unpriced_tokens += unpriced
            ours.unpriced_models.add(model)
        ours.cache_unmetered_tokens += int(row["CacheUnmeteredTokens"] or 0)
        # An unpriced model's tokens are in no cost: they stay out of the groups' tokens (whose price is what our
        # cost over our tokens says) and are compared on their own, against the bill of that model's meters.
        counted = 0 if unpriced else 1
        ours.add("input", counted * int(row["InputTokens"] or 0), int(row["InputCostMicros"] or 0))
        ours.add("cached_input", counted * int(row["CachedTokens"] or 0), int(row["CachedCostMicros"] or 0))
        ours.add("output", counted * int(row["OutputTokens"] or 0), int(row["OutputCostMicros"] or 0))
        if row["ProvisionedCostMicros"]:
            ours.add("provisioned", 0, int(row["ProvisionedCostMicros"]))
    return days, sorted(outside)


def _day(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
