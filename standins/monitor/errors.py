"""Error bodies shaped like Azure Monitor's, so the SDKs raise what they raise against Azure.

Query API (LogsQueryClient): ``{"error": {"message", "code", "correlationId", "innererror":
{...}}}``; azure-core puts code/message/inner error into HttpResponseError's message and
LogsQueryError reads the innermost ``innererror.message``. Partial results are HTTP 200 with the
tables plus ``error.code == "PartialError"``. Ingestion API: ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import duckdb
from duckdb_kql import KqlError, KqlSchemaError, KqlSyntaxError, KqlUnsupportedError

RECORD_LIMIT_CODE = "-2133196797"


def _correlation_id() -> str:
    return str(uuid.uuid4())


def query_error(code: str, message: str, innererror: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "code": code, "correlationId": _correlation_id()}
    if innererror is not None:
        error["innererror"] = innererror
    return {"error": error}


def workspace_not_found(workspace_id: str) -> dict[str, Any]:
    return query_error("WorkspaceNotFoundError", f"Workspace {workspace_id} could not be found")


def resource_not_found(resource_id: str) -> dict[str, Any]:
    return query_error("ResourceNotFoundError", f"The resource {resource_id} could not be found")


def bad_request(message: str) -> dict[str, Any]:
    return query_error("BadArgumentError", message)


def authentication_required(reason: str) -> dict[str, Any]:
    return query_error("AuthorizationRequiredError", f"Valid authentication was not provided: {reason}")


_UNKNOWN_COLUMN = re.compile(r'Referenced column "?([^"\s]+)"? not found')
_UNKNOWN_TABLE = re.compile(r"Table with name \"?([^\"\s!]+)\"? does not exist")


def _semantic_message(exc: Exception) -> str:
    text = str(exc)
    if match := _UNKNOWN_COLUMN.search(text):
        return f"Failed to resolve scalar expression named '{match.group(1)}'"
    if match := _UNKNOWN_TABLE.search(text):
        return f"Failed to resolve table or column expression named '{match.group(1)}'"
    if isinstance(exc, KqlUnsupportedError):
        return f"{text} — not supported by the local Azure Monitor stand-in (duckdb-kql)"
    return text.splitlines()[0] if text else type(exc).__name__


def kql_error(exc: KqlError | duckdb.Error) -> dict[str, Any]:
    """The 400 body Log Analytics returns for a query it cannot parse or bind."""
    if isinstance(exc, KqlSyntaxError):
        first = exc.diagnostics[0] if exc.diagnostics else None
        detail: dict[str, Any] = {"code": "SYN0002", "message": f"Query could not be parsed: {exc}"}
        if first is not None:
            detail.update(line=first.span.line, pos=first.span.column)
        inner = {
            "code": "SyntaxError",
            "message": "A recognition error occurred in the query.",
            "innererror": detail,
        }
    else:
        code = (
            "SEM0100"
            if isinstance(exc, KqlSchemaError | duckdb.BinderException | duckdb.CatalogException)
            else "SEM0001"
        )
        inner = {
            "code": "SemanticError",
            "message": "A semantic error occurred.",
            "innererror": {"code": code, "message": _semantic_message(exc)},
        }
    return query_error("BadArgumentError", "The request had some invalid properties", inner)


def partial_error(message: str, inner_code: str = RECORD_LIMIT_CODE) -> dict[str, Any]:
    """The ``error`` member of a 200 response whose rows were cut (by default at a result-set limit)."""
    return {
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "correlationId": _correlation_id(),
        "details": [
            {
                "code": "EngineError",
                "message": "Something went wrong processing your query on the server.",
                "innererror": {
                    "code": inner_code,
                    "message": message,
                    "severity": 2,
                    "severityName": "Error",
                },
            }
        ],
    }


def record_limit_message(max_rows: int) -> str:
    return (
        f"Query result set has exceeded the internal record count limit {max_rows} "
        "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)"
    )


def size_limit_message(max_bytes: int) -> str:
    return (
        f"Query result set has exceeded the internal data size limit {max_bytes} "
        "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)"
    )


def ingestion_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def content_too_large(max_bytes: int) -> dict[str, Any]:
    """The Logs Ingestion API's 413 body for a call over its per-call limit."""
    return ingestion_error("ContentLengthLimitExceeded", f"The request body exceeds {max_bytes} bytes.")
