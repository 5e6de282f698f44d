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

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.config import CostSettings
from shared.errors import ConfigError
from shared.logs.packed import Packing, unpack
from shared.logs.parts import PartedQuery

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
PACKING = Packing("token usage query", KEY_COLUMNS, ("WindowStart", *TOKEN_COLUMNS), "window")
USAGE_COLUMNS = PACKING.columns


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
    """Query rows (QUERY_COLUMNS) -> USAGE_COLUMNS as columns, one value per window x key
    (shared/logs/packed.py: a run unpacks hundreds of thousands of windows)."""
    return unpack(rows, PACKING)
