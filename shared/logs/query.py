"""Ask Log Analytics one query and take its one table only when the answer is complete and as expected.

The one place a query's answer is judged: an SDK error (an HTTP status after the SDK's own retries, no
connection) becomes a QueryError naming the query; a partial result becomes a PartialResultError
(a QueryError) carrying the service's partial error in words, because a partial answer would
under-count spend and resolve alerts that still fire; a table whose columns are not the expected ones,
in order, is a QueryError naming the missing and unexpected columns, since callers read rows by
position. A partial answer for any reason but the result-set limits, or a connection that ended without an
answer (the SDK retries HTTP statuses, not these: found by the chaos soak, bench/soak), is asked again, up to
`attempts` times in all, since a query reads and can be repeated; a partial at the limits raises at once
(shared/logs/parts.py asks such a query in smaller parts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.errors import QueryError, azure_service_error

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

log = logging.getLogger(__name__)

# Asks of one query in all, and the wait before the n-th retry (n x this), unless the caller says otherwise.
QUERY_ATTEMPTS = 3
QUERY_RETRY_DELAY_SECONDS = 1.0

# How Log Analytics (and the stand-in) name a result-set limit in a partial error.
_SIZE_LIMIT_MARKERS = ("E_QUERY_RESULT_SET_TOO_LARGE", "-2133196797")


class PartialResultError(QueryError):
    """The query answered only in part; `reason` is the service's partial error in words.

    A subclass only because shared/logs/parts.py tells a result-set limit (ask in smaller parts)
    from any other partial (ask again); everyone else catches QueryError.
    """

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} returned a partial result: {reason}")
        self.reason = reason

    @property
    def size_limit(self) -> bool:
        """Whether the answer hit the query API's result-set limits (500,000 rows / ~64 MB)."""
        return any(marker in self.reason for marker in _SIZE_LIMIT_MARKERS)


def query_table(
    client: LogsQueryClient,
    workspace_id: str,
    what: str,
    query: str,
    timespan: tuple[datetime, datetime],
    columns: Sequence[str],
    *,
    resource_id: str | None = None,
    server_timeout_seconds: int | None = None,
    attempts: int = QUERY_ATTEMPTS,
    retry_delay_seconds: float = QUERY_RETRY_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    on_ask: Callable[[], None] | None = None,
) -> list[Any]:
    """The rows of the query's table, which has exactly `columns`; or raises QueryError.

    `what` names the query in errors ("alert data query", "token usage query for <part>").
    `resource_id` asks that resource (resource-centric) instead of the workspace; without
    `server_timeout_seconds` the query API's default (3 minutes) applies. `on_ask` is called before each ask
    (shared/logs/parts.py counts them). After `attempts` partial answers the QueryError says how many.
    """
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    last: QueryError | None = None
    for attempt in range(1, attempts + 1):
        if last is not None:
            log.warning("%s: %s; retry %d of %d", what, last, attempt - 1, attempts - 1)
            sleep(retry_delay_seconds * (attempt - 1))
        if on_ask is not None:
            on_ask()
        try:
            return _ask_once(client, workspace_id, what, query, timespan, columns, resource_id, server_timeout_seconds)
        except PartialResultError as error:
            if error.size_limit:
                raise
            last = error
        except QueryError as error:
            if not isinstance(error.__cause__, ServiceRequestError | ServiceResponseError):
                raise
            last = error
    assert last is not None
    if isinstance(last, PartialResultError) and attempts > 1:
        raise QueryError(f"{what} returned a partial result {attempts} times: {last.reason}") from last
    raise last


def _ask_once(
    client: LogsQueryClient,
    workspace_id: str,
    what: str,
    query: str,
    timespan: tuple[datetime, datetime],
    columns: Sequence[str],
    resource_id: str | None,
    server_timeout_seconds: int | None,
) -> list[Any]:
    from azure.core.exceptions import AzureError
    from azure.monitor.query import LogsQueryStatus

    kwargs: dict[str, Any] = {"timespan": timespan}
    if server_timeout_seconds is not None:
        kwargs["server_timeout"] = server_timeout_seconds
    try:
        if resource_id:
            response = client.query_resource(resource_id, query, **kwargs)
        else:
            response = client.query_workspace(workspace_id, query, **kwargs)
    except AzureError as error:
        # The SDK has retried the HTTP statuses its policy retries; query_table asks again after a lost connection.
        raise azure_service_error(QueryError, what, error) from error
    if response.status != LogsQueryStatus.SUCCESS:
        raise PartialResultError(what, _describe_partial_error(response.partial_error))
    table = response.tables[0]
    if tuple(table.columns) != tuple(columns):
        raise QueryError(
            f"{what} returned columns {list(table.columns)}, expected {list(columns)}"
            f"{_difference(table.columns, columns)}"
        )
    return list(table.rows)


def _describe_partial_error(error: Any) -> str:
    """A partial result's error (code, message, details) in one line."""
    if error is None:
        return "no error details"
    code, message = getattr(error, "code", ""), getattr(error, "message", "")
    return f"{code}: {message} {getattr(error, 'details', '') or ''}".strip()


def _difference(actual: Sequence[str], expected: Sequence[str]) -> str:
    missing = [name for name in expected if name not in actual]
    unexpected = [name for name in actual if name not in expected]
    if not (missing or unexpected):
        return " (same columns, another order)"
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
        [f"unexpected {', '.join(unexpected)}"] if unexpected else []
    )
    return " (" + "; ".join(parts) + ")"
