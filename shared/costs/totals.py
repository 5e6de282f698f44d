"""Day-to-date and month-to-date spend per subscription (SubscriptionSpend, shared/costs/outputs.py).

Windows this run computed come from its own priced frame (they may not be queryable yet: Azure
Monitor ingestion takes minutes); older windows of the month come from the uploaded summaries
(shared/logs/kql/cost-totals-by-subscription-day.kql, latest complete revision per window). Costs are
summed as integer micro-units, exactly. Days and months are UTC (as Azure bills).
Import this module only inside a run: it imports pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from shared.costs.outputs import SubscriptionSpend
from shared.logs.kql import load_query
from shared.logs.query import query_table
from shared.money import from_micros

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

TOTALS_COLUMNS = ("Day", "SubscriptionId", "Currency", "CostMicros", "TotalTokens", "UnpricedTokens")
# What cost-totals-by-subscription-day.kql returns: TOTALS_COLUMNS, then how many windows each row sums.
TOTALS_QUERY_COLUMNS = (*TOTALS_COLUMNS, "Windows")


def daily_totals_of_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A priced frame summed per UTC day x subscription x currency (TOTALS_COLUMNS)."""
    if frame.empty:
        return pd.DataFrame(columns=list(TOTALS_COLUMNS))
    daily = pd.DataFrame(
        {
            "Day": frame["WindowStart"].dt.floor("D"),
            "SubscriptionId": frame["SubscriptionId"],
            "Currency": frame["Currency"].fillna("").astype(str),
            "CostMicros": frame["TotalCostMicros"].fillna(0).astype("int64"),
            "TotalTokens": frame["TotalTokens"],
            "UnpricedTokens": frame["TotalTokens"].where(frame["Unpriced"], 0),
        }
    )
    return daily.groupby(["Day", "SubscriptionId", "Currency"], as_index=False).sum()


def daily_totals_of_rows(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """The totals query's rows (its first six columns are TOTALS_COLUMNS)."""
    frame = pd.DataFrame([list(row)[: len(TOTALS_COLUMNS)] for row in rows], columns=list(TOTALS_COLUMNS))
    frame["Day"] = pd.to_datetime(frame["Day"], utc=True)
    frame["Currency"] = frame["Currency"].fillna("").astype(str)
    for name in ("CostMicros", "TotalTokens", "UnpricedTokens"):
        frame[name] = frame[name].fillna(0).astype("int64")
    return frame


def stored_daily_totals(
    client: LogsQueryClient, workspace_id: str, start: datetime, end: datetime, what: str
) -> pd.DataFrame:
    """The uploaded summaries of the windows starting in [start, end) as readers see them (latest complete
    revision per window), summed per UTC day x subscription x currency (TOTALS_COLUMNS); `what` names the
    query in errors."""
    query = load_query("cost-totals-by-subscription-day.kql", {"start_time": start, "end_time": end})
    # Summaries carry TimeGenerated = their revision time, which is after their window start.
    rows = query_table(client, workspace_id, what, query, (start, datetime.now(UTC)), TOTALS_QUERY_COLUMNS)
    return daily_totals_of_rows(rows)


def spend_to_date(
    daily: Sequence[pd.DataFrame], *, day_start: datetime, month_start: datetime
) -> list[SubscriptionSpend]:
    """Combine daily totals (disjoint sets of windows) into per-subscription day and month totals."""
    parts = [part for part in daily if not part.empty]
    if not parts:
        return []
    combined = pd.concat(parts, ignore_index=True)
    combined = combined[combined["Day"] >= pd.Timestamp(month_start)]
    today = combined["Day"] == pd.Timestamp(day_start)
    measures = ["CostMicros", "TotalTokens", "UnpricedTokens"]
    month = combined.groupby(["SubscriptionId", "Currency"])[measures].sum()
    day = combined[today].groupby(["SubscriptionId", "Currency"])[measures].sum()
    spends = []
    for (subscription, currency), totals in month.iterrows():
        day_totals = day.loc[(subscription, currency)] if (subscription, currency) in day.index else None
        spends.append(
            SubscriptionSpend(
                subscription_id=str(subscription),
                currency=str(currency),
                day_start=day_start,
                month_start=month_start,
                day_cost=from_micros(0 if day_totals is None else int(day_totals["CostMicros"])),
                month_cost=from_micros(int(totals["CostMicros"])),
                day_tokens=0 if day_totals is None else int(day_totals["TotalTokens"]),
                month_tokens=int(totals["TotalTokens"]),
                day_unpriced_tokens=0 if day_totals is None else int(day_totals["UnpricedTokens"]),
                month_unpriced_tokens=int(totals["UnpricedTokens"]),
            )
        )
    return spends
