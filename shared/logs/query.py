"""Ask Log Analytics one query and take its one table only when the answer is complete and as expected.

The one place a query's answer is judged: an SDK error (an HTTP status after the SDK's own retries, no
connection) becomes a QueryError naming the query; a partial result becomes a PartialResultError
(a QueryError) carrying the service's partial error in words, because a partial answer would
under-count spend and resolve alerts that still fire; a table whose columns are not the expected ones,
in order, is a QueryError naming the missing and unexpected columns, since callers read rows by
position. shared/logs/parts.py uses it for each part and decides there which partials to split or retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.errors import QueryError, azure_service_error

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

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
) -> list[Any]:
    """The rows of the query's table, which has exactly `columns`; or raises QueryError.

    `what` names the query in errors ("alert data query", "token usage query for <part>").
    `resource_id` asks that resource (resource-centric) instead of the workspace; without
    `server_timeout_seconds` the query API's default (3 minutes) applies.
    """
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
        # The SDK has retried what its policy retries; anything left is not ours to retry.
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
