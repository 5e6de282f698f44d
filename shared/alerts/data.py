"""What the alert rules read: cost summaries (latest complete revision) and synthetic ground truth.

Two queries (shared/logs/kql/alert-usage.kql, shared/logs/kql/alert-synthetic-traffic.kql), sized by the
rules: the usage range reaches back to the start of the month, the chart's 14 days and each spike
rule's baseline; windows are kept one by one from `detail_from` on (hours matter there) and summed
per UTC day before it. The usage answer packs each key's buckets (shared/logs/packed.py) and is counted
first (alert-usage-size.kql), so a tenant of 100,000 users is asked in the user parts it needs at once and
typed part by part. Import only inside a run: it imports pandas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from shared.alerts.rules import Rule
from shared.logs.kql import load_query
from shared.logs.packed import Packing, Unpacked, unpack_keyed
from shared.logs.parts import MAX_USER_PARTS, PartedQuery, query_in_parts
from shared.logs.query import QUERY_ATTEMPTS, QUERY_RETRY_DELAY_SECONDS, query_table
from shared.windows import start_of_day, start_of_month, window_containing

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

# The alert usage query answers one row per key with its buckets packed (shared/logs/packed.py); unpacked,
# one row per bucket x key: USAGE_COLUMNS = Bucket, the keys, the counts.
PACKING = Packing(
    "alert usage query",
    ("Model", "Deployment", "SubscriptionId", "UserId", "ApiId", "Currency", "Unpriced"),
    ("Bucket", "Requests", "TotalTokens", "CostMicros", "EstimatedTokens", "EstimatedCostMicros"),
    "bucket",
)
QUERY_COLUMNS = (*PACKING.keys, "Buckets")
USAGE_COLUMNS = PACKING.columns
SIZE_COLUMNS = ("Keys", "KeyCharacters", "Entries")  # alert-usage-size.kql
# What the usage answer weighs, to ask a large one in user parts at once (alert-usage-size.kql says why): an entry
# as Log Analytics writes a packed bucket, '[\"2026-11-27T10:00:00.0000000Z\",31,60000,150000,0,0],' (the stand-in's
# are shorter), and a row's quotes, separators and flag besides its key strings. A part is planned to this much of
# the query API's ~64 MB, leaving room for the estimate's error; one still cut at the limit is split as any is.
ENTRY_BYTES = 64
ROW_BYTES = 64
PART_BYTES = 56 * 1024 * 1024
# Parts asked at once: one is downloaded and typed here while the service works on the next (the query API runs
# five of a user's queries at once). Two keep at most two parts' rows in memory.
PARTS_AT_ONCE = 2
# Key columns kept as categories: millions of rows name a few models and subscriptions and some 100,000 users.
_KEYS = ("Model", "Deployment", "SubscriptionId", "UserId", "ApiId", "Currency")
_COUNTS = ("Requests", "TotalTokens", "CostMicros", "EstimatedTokens", "EstimatedCostMicros")
TRAFFIC_COLUMNS = (
    "RunId", "Subscription", "UserId", "Deployment", "CallsOk", "CallsUsageUnseen", "TotalTokens",
    "ExactTotalTokens", "ExactUncertainCalls", "StreamedCallsOk", "StreamedTotalTokens", "StreamedUsageUnseen",
    "FirstCallAt", "LastCallAt",
)  # fmt: skip
_TRAFFIC_COUNTS = ("CallsOk", "CallsUsageUnseen", "TotalTokens", "ExactTotalTokens", "ExactUncertainCalls",
                   "StreamedCallsOk", "StreamedTotalTokens", "StreamedUsageUnseen")
CHART_DAYS = 14
CHART_HOURS = 24


@dataclass(frozen=True)
class Ranges:
    start: datetime  # usage from here (window starts)
    detail_from: datetime  # windows one by one from here; whole days before
    end: datetime  # the end of the open window
    traffic_start: datetime  # ground truth from here (pipeline-health rules)


@dataclass(frozen=True)
class AlertData:
    ranges: Ranges
    usage: pd.DataFrame  # USAGE_COLUMNS; Bucket is a UTC timestamp
    traffic: pd.DataFrame  # TRAFFIC_COLUMNS


def ranges_for(rules: Iterable[Rule], now: datetime, window_minutes: int) -> Ranges:
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    day_start = start_of_day(now)
    width = timedelta(minutes=window_minutes)
    start = min(start_of_month(now), day_start - timedelta(days=CHART_DAYS - 1))
    detail_from = min(day_start, hour_start - timedelta(hours=CHART_HOURS - 1))
    traffic_start = window_containing(now, window_minutes).start
    for rule in rules:
        if rule.kind == "spike":
            latest = hour_start - timedelta(hours=1) if rule.period == "hour" else day_start - timedelta(days=1)
            baseline_start = latest - timedelta(days=rule.baseline_days)
            start = min(start, start_of_day(baseline_start))
            if rule.period == "hour":
                detail_from = min(detail_from, baseline_start)
        elif rule.kind in ("no_metrics", "reconciliation"):
            range_end = window_containing(now - timedelta(minutes=rule.grace_minutes), window_minutes).start
            # One window more of ground truth: runs that straddle the range start must be seen.
            range_start = range_end - (rule.windows + 1) * width
            detail_from = min(detail_from, range_start)
            start = min(start, start_of_day(range_start))
            traffic_start = min(traffic_start, range_start)
    return Ranges(start, detail_from, window_containing(now, window_minutes).end, traffic_start)


def read_alert_data(
    client: LogsQueryClient, workspace_id: str, ranges: Ranges, *, with_traffic: bool, now: datetime
) -> AlertData:
    # Summaries carry TimeGenerated = their revision time (after their window start; the real
    # clock, even when `now` is given), so the query timespan runs from the range start to then.
    until = max(now, datetime.now(UTC)) + timedelta(minutes=5)
    # Split on whole days: a day bucket never straddles two parts, nor does a window's revision.
    user_parts = _user_parts(client, workspace_id, ranges, until)
    # Each part unpacked and typed as it arrives: a part's rows (and their Python objects) go before the next comes.
    frames: list[pd.DataFrame] = []
    query_in_parts(
        client,
        workspace_id,
        PartedQuery(
            what="alert usage",
            file="alert-usage.kql",
            columns=QUERY_COLUMNS,
            split_unit_minutes=24 * 60,
            # A partial answer for another reason is asked again as every reader's is (shared/logs/query.py): with
            # one attempt, the soak (bench/soak) saw 5 of 157 costs timer runs fail on one interrupted answer.
            attempts=QUERY_ATTEMPTS,
            retry_delay_seconds=QUERY_RETRY_DELAY_SECONDS,
            parameters={"detail_from": ranges.detail_from},
            timespan=lambda part: (part.start, until),
        ),
        ranges.start,
        ranges.end,
        each_part=lambda rows: frames.append(_part_frame(unpack_keyed(rows, PACKING))),
        user_parts=user_parts,
        concurrency=PARTS_AT_ONCE,
    )
    usage = _combined(frames) if frames else usage_frame([])
    traffic_rows: list[list[Any]] = []
    if with_traffic:
        # A partial result would under-count spend and resolve alerts that still fire: query_table refuses it.
        traffic_rows = [
            list(row)
            for row in query_table(
                client,
                workspace_id,
                "alert data query",
                load_query("alert-synthetic-traffic.kql", {"start_time": ranges.traffic_start, "end_time": ranges.end}),
                (ranges.traffic_start, until),
                TRAFFIC_COLUMNS,
            )
        ]
    return AlertData(ranges, usage, traffic_frame(traffic_rows))


def _user_parts(client: LogsQueryClient, workspace_id: str, ranges: Ranges, until: datetime) -> int:
    """How many user parts the usage answer needs to fit the query API's size limit (a power of two), from
    the size of the answer counted first (alert-usage-size.kql)."""
    query = load_query(
        "alert-usage-size.kql",
        {"start_time": ranges.start, "end_time": ranges.end, "detail_from": ranges.detail_from},
    )
    rows = query_table(client, workspace_id, "alert usage size query", query, (ranges.start, until), SIZE_COLUMNS)
    keys, key_characters, entries = (int(value or 0) for value in rows[0]) if rows else (0, 0, 0)
    needed = (keys * ROW_BYTES + key_characters + entries * ENTRY_BYTES) / PART_BYTES
    parts = 1
    while parts < needed and parts < MAX_USER_PARTS:
        parts *= 2
    return parts


def usage_frame(rows: list[list[Any]]) -> pd.DataFrame:
    """Unpacked usage rows (USAGE_COLUMNS each) as the typed frame the rules read."""
    return _typed_usage(pd.DataFrame(rows, columns=list(USAGE_COLUMNS)))


def _part_frame(part: Unpacked) -> pd.DataFrame:
    """One part's usage, typed as usage_frame types it, each key column a category: a key's strings are taken
    once and its entries get codes (never a string per entry to convert, then hash)."""
    import numpy as np

    counts = np.asarray(part.counts, dtype=np.int64)
    columns: dict[str, Any] = {"Bucket": pd.to_datetime(pd.Series(part.fields["Bucket"], dtype=object), utc=True)}
    for name in _KEYS:
        codes, names = pd.factorize(pd.Series(part.keys[name], dtype=object).fillna("").astype(str))
        columns[name] = pd.Categorical.from_codes(np.repeat(codes, counts), categories=names)
    unpriced = pd.Series(part.keys["Unpriced"], dtype=object).fillna(False).astype(bool).to_numpy()
    columns["Unpriced"] = np.repeat(unpriced, counts)
    for name in _COUNTS:
        values = part.fields[name]
        try:
            columns[name] = np.array(values, dtype=np.int64)
        except TypeError:  # a null count (a summary written before the column existed) counts 0
            columns[name] = pd.Series(values, dtype=object).fillna(0).astype("int64").to_numpy()
    return pd.DataFrame({name: columns[name] for name in USAGE_COLUMNS})


def _combined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts' frames as one, each key column a category over all parts (codes, not a string pointer per
    row: a third of the memory at 3 million rows), joined column by column without an object copy."""
    from pandas.api.types import union_categoricals

    columns: dict[str, Any] = {}
    for name in USAGE_COLUMNS:
        if name in _KEYS:
            columns[name] = pd.Series(union_categoricals([frame[name] for frame in frames], sort_categories=True))
        else:
            columns[name] = pd.concat([frame[name] for frame in frames], ignore_index=True)
        for frame in frames:
            del frame[name]  # the part's copy goes as soon as the whole column is built
    return pd.DataFrame(columns)


def _typed_usage(frame: pd.DataFrame) -> pd.DataFrame:
    frame["Bucket"] = pd.to_datetime(frame["Bucket"], utc=True)
    for name in _KEYS:
        frame[name] = frame[name].fillna("").astype(str)
    frame["Unpriced"] = frame["Unpriced"].fillna(False).astype(bool)
    for name in _COUNTS:
        frame[name] = frame[name].fillna(0).astype("int64")
    return frame


def traffic_frame(rows: list[list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(TRAFFIC_COLUMNS))
    for name in ("FirstCallAt", "LastCallAt"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    for name in _TRAFFIC_COUNTS:
        frame[name] = frame[name].fillna(0).astype("int64")
    for name in ("Subscription", "UserId", "Deployment"):
        frame[name] = frame[name].fillna("").astype(str)
    return frame

