"""A query whose answer may exceed the Log Analytics query API's limits, asked in parts that fit.

The query API caps a result at 500,000 rows / ~64 MB and then answers with a *partial* result, so:

  * a partial result caused by those limits is split and re-asked: first the time range (halves,
    on boundaries of the caller's unit: cost windows, days), then, for a single unit still too
    large (a tenant with a million users), the users, by the first two hex digits of
    hash_md5(UserId) (2, 4, ... 256 disjoint parts; a user's rows stay in one part, so every part
    is a complete answer for its groups);
  * any other partial result (timeout, engine error) is retried, then fails: the caller changes
    nothing that depends on the answer, so the next run asks again.
Every failure is a QueryError naming the query, the part and why; each part is asked with
shared/logs/query.py's query_table, which maps SDK errors (HTTP status after the SDK's own retries,
no connection) and checks the columns, so callers catch only our tree.
Nothing is ever taken from a partial result. The queries declare `start_time`, `end_time` and
`user_hash_prefixes` (empty: every user), which each part binds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import QueryError
from shared.logs.kql import load_query
from shared.logs.query import PartialResultError, query_table
from shared.windows import window_containing

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

log = logging.getLogger(__name__)

# Two hex digits of the user hash: up to 256 parts, i.e. 128 million rows per time unit.
MAX_USER_PARTS = 256


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

    def split(self, unit_minutes: int) -> tuple[QueryPart, QueryPart] | None:
        """Two parts that together are this one, or None when it cannot be split further."""
        width = timedelta(minutes=unit_minutes)
        units = (self.end - self.start) // width
        if units > 1:
            middle = window_containing(self.start + (units // 2) * width, unit_minutes).start
            if self.start < middle < self.end:
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


@dataclass(frozen=True)
class PartedQuery:
    """One query file and how to ask it; `parameters` are bound besides each part's own three."""

    what: str  # names the query in logs and errors: "token usage", "alert usage"
    file: str
    columns: Sequence[str]  # the columns the answer must have, in order
    split_unit_minutes: int  # time splits fall on multiples of this (whole windows, whole days)
    # The caller's patience, from its settings (COST_QUERY_ATTEMPTS, COST_RETRY_DELAY_SECONDS): no
    # default here, so config's is the only one. Attempts are for partial results other than size limits.
    attempts: int
    retry_delay_seconds: float
    limit_hint: str = ""  # what a user can do when even the smallest part is too large
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # The timespan sent with a part; by default the part's own range.
    timespan: Callable[[QueryPart], tuple[datetime, datetime]] = lambda part: (part.start, part.end)
    # Ask this resource (resource-centric) instead of the workspace; None, the workspace (not a setting's
    # default: only the usage query may name a resource, COST_METRICS_RESOURCE_ID).
    resource_id: str | None = None
    # Not a setting: the query API's maximum (10 minutes), which host.json's functionTimeout allows for.
    server_timeout_seconds: int = 600


@dataclass
class PartedResult:
    rows: list[Any] = field(default_factory=list)  # the parts' rows, oldest part first (none with each_part)
    queries: int = 0
    splits: int = 0
    retries: int = 0


def query_in_parts(
    client: LogsQueryClient,
    workspace_id: str,
    spec: PartedQuery,
    start: datetime,
    end: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
    each_part: Callable[[list[Any]], None] | None = None,
    user_parts: int = 1,
    concurrency: int = 1,
) -> PartedResult:
    """Every row of the query over [start, end), in as many parts as the limits require; or raises QueryError.
    With `each_part`, each part's rows go to it as they arrive and the result keeps none: a caller that
    turns rows into compact columns holds one part's rows at a time, not the whole answer's. `user_parts`
    (a power of two up to MAX_USER_PARTS): ask that many user slices of the range from the start, for a
    caller that knows its answer is too large to come whole (each answer cut at the limit is thrown away).
    `concurrency`: parts asked at once (the query API runs five of a user's queries at once and queues the
    rest: learn.microsoft.com/azure/azure-monitor/fundamentals/service-limits#user-query-throttling); their
    answers are handled one at a time in this thread, as they come."""
    if user_parts < 1 or user_parts > MAX_USER_PARTS or user_parts & (user_parts - 1):
        raise ValueError(f"user_parts must be a power of two from 1 to {MAX_USER_PARTS}, got {user_parts}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    result = PartedResult()
    pending = [QueryPart(start, end, user_parts, index) for index in reversed(range(user_parts))]
    asked: dict[Future[tuple[list[Any] | None, int]], QueryPart] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="query-part") as pool:
        try:
            while pending or asked:
                while pending and len(asked) < concurrency:
                    part = pending.pop()
                    asked[pool.submit(_ask, client, workspace_id, spec, part, sleep)] = part
                done, _ = wait(asked, return_when=FIRST_COMPLETED)
                for future in done:
                    part = asked.pop(future)
                    rows, attempts = future.result()
                    result.queries += attempts
                    result.retries += attempts - 1
                    if rows is None:
                        pending.extend(reversed(_halves(spec, part)))  # oldest first, only for readable logs
                        result.splits += 1
                    elif each_part is not None:
                        each_part(rows)
                    else:
                        result.rows.extend(rows)
        finally:
            for future in asked:
                future.cancel()  # after a failure: parts not started yet are not asked
    return result


def _halves(spec: PartedQuery, part: QueryPart) -> tuple[QueryPart, QueryPart]:
    halves = part.split(spec.split_unit_minutes)
    if halves is None:
        raise QueryError(
            f"{spec.what} for {part.describe()} exceeds the query API's result limits even in "
            f"{MAX_USER_PARTS} user parts{'; ' + spec.limit_hint if spec.limit_hint else ''}"
        )
    log.info("%s for %s exceeds the query limits; splitting it in two", spec.what, part.describe())
    return halves


def _ask(
    client: LogsQueryClient,
    workspace_id: str,
    spec: PartedQuery,
    part: QueryPart,
    sleep: Callable[[float], None],
) -> tuple[list[Any] | None, int]:
    """The part's rows, None when the answer hit a size limit (split it), and how many times it was asked;
    raises otherwise."""
    query = load_query(
        spec.file,
        {
            **spec.parameters,
            "start_time": part.start,
            "end_time": part.end,
            "user_hash_prefixes": part.user_hash_prefixes(),
        },
    )
    what = f"{spec.what} query for {part.describe()}"
    asked: list[None] = []
    try:
        rows = query_table(
            client,
            workspace_id,
            what,
            query,
            spec.timespan(part),
            spec.columns,
            resource_id=spec.resource_id,
            server_timeout_seconds=spec.server_timeout_seconds,
            attempts=spec.attempts,
            retry_delay_seconds=spec.retry_delay_seconds,
            sleep=sleep,
            on_ask=lambda: asked.append(None),
        )
    except PartialResultError as error:
        if error.size_limit:
            return None, len(asked)
        raise
    return rows, len(asked)
