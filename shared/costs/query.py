"""Token usage per cost window, summarized by Log Analytics (KQL push-down), within its limits.

One query (shared/logs/kql/token-usage-by-window*.kql) returns one row per deployment x subscription x
user x API carrying its windows' usage as a list; only those summarized rows cross the wire, and
they are unpacked here into one row per window x key (USAGE_COLUMNS). An answer too large for the
query API is asked in parts (shared/logs/parts.py: time halves on window boundaries, then user
slices); a partial answer for any other reason is retried, then raises QueryError, and the
caller leaves the windows not final, so the next run redoes them. Nothing is ever summed from a
partial result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import repeat
from operator import itemgetter
from typing import Any

from shared.config import CostSettings
from shared.errors import ConfigError, QueryError
from shared.logs.parts import PartedQuery
from shared.windows import as_utc

QUERY_FILES: dict[str, str] = {
    "AppMetrics": "token-usage-by-window.kql",
    "customMetrics": "token-usage-by-window-custom-metrics.kql",
}
KEY_COLUMNS = ("Deployment", "SubscriptionId", "UserId", "ApiId")
TOKEN_COLUMNS = (
    "Requests",
    "PromptTokens",
    "CachedPromptTokens",
    "CompletionTokens",
    "TotalTokens",
    # The part of the above APIM estimated (streamed calls), and how many requests had their
    # cached tokens metered (shared/logs/kql/token-usage-by-window.kql says why each exists).
    "EstimatedRequests",
    "EstimatedPromptTokens",
    "EstimatedCompletionTokens",
    "EstimatedTotalTokens",
    "CacheMeteredRequests",
)
# What the query returns: the key, and per window [WindowStart, *TOKEN_COLUMNS] in "Windows".
QUERY_COLUMNS = (*KEY_COLUMNS, "Windows")
# What unpack_windows returns: one row per window x key.
USAGE_COLUMNS = ("WindowStart", *KEY_COLUMNS, *TOKEN_COLUMNS)


def usage_query(settings: CostSettings) -> PartedQuery:
    """The token usage query as the costs settings ask it (shared/logs/parts.py asks it in parts).

    Every value comes from the settings, so their declared defaults (shared/config.py) are the only ones.
    """
    if settings.metrics_schema not in QUERY_FILES:  # load_settings checks it; a section built by hand may not
        raise ConfigError(
            f"app setting COST_METRICS_SCHEMA={settings.metrics_schema!r} is invalid; "
            f"expected one of {sorted(QUERY_FILES)}"
        )
    return PartedQuery(
        what="token usage",
        file=QUERY_FILES[settings.metrics_schema],
        columns=QUERY_COLUMNS,
        split_unit_minutes=settings.window_minutes,
        attempts=settings.query_attempts,
        retry_delay_seconds=settings.retry_delay_seconds,
        limit_hint="use a shorter COST_WINDOW_MINUTES",
        parameters={"window_width": timedelta(minutes=settings.window_minutes)},
        # customMetrics lives in the App Insights resource, not the workspace: in Azure, the
        # component's resource id (the stand-in serves both).
        resource_id=settings.metrics_resource_id,
    )


def unpack_windows(rows: Iterable[Iterable[Any]]) -> dict[str, list[Any]]:
    """Query rows (QUERY_COLUMNS) -> USAGE_COLUMNS as columns, one value per window x key.

    Log Analytics sends a dynamic cell as its JSON text; a parsed list is taken as it is too.
    Built column by column (a key repeated once per window, the windows' entries transposed at
    once): a run unpacks hundreds of thousands of windows.
    """
    keys: list[list[Any]] = [[] for _ in KEY_COLUMNS]
    entries: list[Any] = []
    for row in rows:
        *key, windows = row
        parsed = json.loads(windows) if isinstance(windows, str) else windows
        if not isinstance(parsed, list):
            raise QueryError(f"token usage query: key {key} has windows {parsed!r}, expected a list")
        for column, value in zip(keys, key, strict=True):
            column.extend(repeat(value, len(parsed)))
        entries.extend(parsed)
    width = 1 + len(TOKEN_COLUMNS)
    if set(map(type, entries)) - {list} or set(map(len, entries)) - {width}:
        first = next(index for index, entry in enumerate(entries) if not isinstance(entry, list) or len(entry) != width)
        raise QueryError(
            f"token usage query: key {[column[first] for column in keys]} has a window entry {entries[first]!r}, "
            f"expected [{', '.join(('WindowStart', *TOKEN_COLUMNS))}]"
        )
    # Column i of the entries in one C-level pass each (zip(*entries) is slower at this width).
    values = [list(map(itemgetter(index), entries)) for index in range(width)]
    # A result repeats a few window starts: parse each distinct one once.
    starts = {text: _utc(text) for text in set(values[0])}
    columns = {"WindowStart": list(map(starts.__getitem__, values[0]))}
    columns.update(zip(KEY_COLUMNS, keys, strict=True))
    columns.update(zip(TOKEN_COLUMNS, values[1:], strict=True))
    return {name: columns[name] for name in USAGE_COLUMNS}


def _utc(text: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError as error:
        raise QueryError(f"token usage query: a window start {text!r} is not an ISO 8601 date-time") from error
    return as_utc(parsed)
