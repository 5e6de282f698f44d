"""Token usage per cost window, summarized by Log Analytics (KQL push-down), within its limits.

One query (shared/kql/token-usage-by-window*.kql) returns one row per deployment x subscription x
user x API carrying its windows' usage as a list; only those summarized rows cross the wire, and
they are unpacked here into one row per window x key (USAGE_COLUMNS). The query API caps a result
at 500,000 rows / ~64 MB and then answers with a *partial* result, so:

  * a partial result caused by those limits is split and re-asked: first the time range (halves,
    on window boundaries), then, for a single window still too large (a tenant with a million
    users), the users, by the first two hex digits of hash_md5(UserId) (2, 4, ... 256 disjoint
    parts; a user's rows stay in one part, so every part is a complete summary of its groups);
  * any other partial result (timeout, engine error) is retried, then fails: the caller leaves the
    windows not final, so the next run redoes them.
Nothing is ever summed from a partial result.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.kql_files import load_query
from shared.windows import window_containing

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

log = logging.getLogger(__name__)

MetricsSchema = Literal["AppMetrics", "customMetrics"]
QUERY_FILES: dict[str, str] = {
    "AppMetrics": "token-usage-by-window.kql",
    "customMetrics": "token-usage-by-window-custom-metrics.kql",
}
KEY_COLUMNS = ("Deployment", "SubscriptionId", "UserId", "ApiId")
COUNT_COLUMNS = ("Requests", "PromptTokens", "CachedPromptTokens", "CompletionTokens", "TotalTokens")
# What the query returns: the key, and per window [WindowStart, *COUNT_COLUMNS] in "Windows".
QUERY_COLUMNS = (*KEY_COLUMNS, "Windows")
# What query_usage returns: one row per window x key.
USAGE_COLUMNS = ("WindowStart", *KEY_COLUMNS, *COUNT_COLUMNS)
# Two hex digits of the user hash: up to 256 parts, i.e. 128 million summary rows per window.
MAX_USER_PARTS = 256
# How Log Analytics (and the stand-in) name a result-set limit in a partial error.
_LIMIT_MARKERS = ("E_QUERY_RESULT_SET_TOO_LARGE", "-2133196797")


class UsageQueryError(RuntimeError):
    """Token usage could not be read completely; no window of the range may be marked final."""


@dataclass(frozen=True, slots=True)
class QueryPart:
    """A time range [start, end) and one of `user_parts` disjoint slices of the users."""

    start: datetime
    end: datetime
    user_parts: int = 1
    user_part: int = 0

    def user_hash_prefixes(self) -> list[str]:
        if self.user_parts == 1:
            return []  # every user; the query skips hashing altogether
        return [f"{value:02x}" for value in range(256) if value % self.user_parts == self.user_part]

    def split(self, window_minutes: int) -> tuple[QueryPart, QueryPart] | None:
        """Two parts that together are this one, or None when it cannot be split further."""
        width = timedelta(minutes=window_minutes)
        windows = (self.end - self.start) // width
        if windows > 1:
            middle = window_containing(self.start + (windows // 2) * width, window_minutes).start
            return (
                QueryPart(self.start, middle, self.user_parts, self.user_part),
                QueryPart(middle, self.end, self.user_parts, self.user_part),
            )
        if self.user_parts >= MAX_USER_PARTS:
            return None
        # part i of n becomes parts i and i+n of 2n: value % 2n is i or i+n exactly when value % n is i.
        parts = self.user_parts * 2
        return (
            QueryPart(self.start, self.end, parts, self.user_part),
            QueryPart(self.start, self.end, parts, self.user_part + self.user_parts),
        )

    def describe(self) -> str:
        users = "" if self.user_parts == 1 else f", users part {self.user_part + 1}/{self.user_parts}"
        return f"{self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M} UTC{users}"


@dataclass
class UsageResult:
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    queries: int = 0
    splits: int = 0
    retries: int = 0


@dataclass(frozen=True)
class UsageQuery:
    """How to ask: which workspace (or App Insights resource) and schema, with what patience."""

    workspace_id: str
    metrics_schema: MetricsSchema = "AppMetrics"
    # customMetrics lives in the App Insights resource, not the workspace: in Azure, give the
    # component's resource id; the stand-in serves customMetrics from the workspace.
    resource_id: str | None = None
    window_minutes: int = 60
    attempts: int = 3
    retry_delay_seconds: float = 5.0
    server_timeout_seconds: int = 600  # the query API's maximum


def query_usage(
    client: LogsQueryClient,
    spec: UsageQuery,
    start: datetime,
    end: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> UsageResult:
    """Usage rows (USAGE_COLUMNS) for the window-aligned range [start, end), complete or raises."""
    if spec.metrics_schema not in QUERY_FILES:
        raise ValueError(f"metrics_schema {spec.metrics_schema!r}: expected one of {sorted(QUERY_FILES)}")
    result = UsageResult(columns=USAGE_COLUMNS)
    pending = [QueryPart(start, end)]
    while pending:
        part = pending.pop()
        rows = _query_part(client, spec, part, result, sleep)
        if rows is None:
            halves = part.split(spec.window_minutes)
            if halves is None:
                raise UsageQueryError(
                    f"token usage for {part.describe()} exceeds the query API's result limits even in "
                    f"{MAX_USER_PARTS} user parts of one window; use a shorter COST_WINDOW_MINUTES"
                )
            result.splits += 1
            log.info("token usage for %s exceeds the query limits; splitting it in two", part.describe())
            pending.extend(reversed(halves))  # oldest first, only for readable logs
            continue
        result.rows.extend(rows)
    return result


def _query_part(
    client: LogsQueryClient,
    spec: UsageQuery,
    part: QueryPart,
    result: UsageResult,
    sleep: Callable[[float], None],
) -> list[Sequence[Any]] | None:
    """The part's rows; None when the result hit a size limit (split it); raises otherwise."""
    from azure.monitor.query import LogsQueryStatus

    query = load_query(
        QUERY_FILES[spec.metrics_schema],
        {
            "start_time": part.start,
            "end_time": part.end,
            "window_width": timedelta(minutes=spec.window_minutes),
            "user_hash_prefixes": part.user_hash_prefixes(),
        },
    )
    problem = ""
    for attempt in range(1, spec.attempts + 1):
        result.queries += 1
        kwargs: dict[str, Any] = {"timespan": (part.start, part.end), "server_timeout": spec.server_timeout_seconds}
        if spec.resource_id:
            response = client.query_resource(spec.resource_id, query, **kwargs)
        else:
            response = client.query_workspace(spec.workspace_id, query, **kwargs)
        if response.status == LogsQueryStatus.SUCCESS:
            table = response.tables[0]
            _check_columns(table.columns)
            return unpack_windows(table.rows)
        problem = _describe(response.partial_error)
        if any(marker in problem for marker in _LIMIT_MARKERS):
            return None
        if attempt < spec.attempts:
            result.retries += 1
            log.warning(
                "token usage query for %s returned a partial result (%s); retry %d of %d",
                part.describe(),
                problem,
                attempt,
                spec.attempts - 1,
            )
            sleep(spec.retry_delay_seconds * attempt)
    raise UsageQueryError(
        f"token usage query for {part.describe()} returned a partial result {spec.attempts} times: {problem}"
    )


def _check_columns(columns: Sequence[str]) -> None:
    if tuple(columns) != QUERY_COLUMNS:
        raise UsageQueryError(f"token usage query returned columns {list(columns)}, expected {list(QUERY_COLUMNS)}")


def unpack_windows(rows: Iterable[Iterable[Any]]) -> list[Sequence[Any]]:
    """Query rows (QUERY_COLUMNS) -> one USAGE_COLUMNS row per window x key.

    Log Analytics sends a dynamic cell as its JSON text; a parsed list is taken as it is too.
    """
    starts: dict[str, datetime] = {}  # a result repeats a few window starts: parse each once
    unpacked: list[Sequence[Any]] = []
    for row in rows:
        *key, windows = row
        for window in json.loads(windows) if isinstance(windows, str) else windows:
            if not isinstance(window, list) or len(window) != 1 + len(COUNT_COLUMNS):
                raise UsageQueryError(
                    f"token usage query: key {key} has a window entry {window!r}, expected "
                    f"[{', '.join(('WindowStart', *COUNT_COLUMNS))}]"
                )
            start = starts.get(window[0]) or starts.setdefault(window[0], _utc(window[0], key))
            unpacked.append((start, *key, *window[1:]))
    return unpacked


def _utc(text: Any, key: list[Any]) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError as error:
        raise UsageQueryError(
            f"token usage query: key {key} has a window start {text!r}, expected an ISO 8601 date-time"
        ) from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _describe(error: Any) -> str:
    if error is None:
        return "no error details"
    code, message = getattr(error, "code", ""), getattr(error, "message", "")
    return f"{code}: {message} {getattr(error, 'details', '') or ''}".strip()
