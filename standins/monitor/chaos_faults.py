"""The Azure Monitor stand-in's injected faults (standins/chaos.py): points ``monitor.query`` and
``monitor.ingestion``, as a middleware inside the bearer check (only requests Azure would serve meet them).

Shapes, as the services send them:
- query 500 / 503: the OneAPI error object of a fatal error (learn.microsoft.com/azure/azure-monitor/logs/api/
  response-format, "Azure Monitor Log Analytics API errors"); the codes are the stand-in's choice, the
  service documents none for these statuses (clients act on the status);
- query 429: throttled, with Retry-After (the query API's per-user rate limits: learn.microsoft.com/azure/
  azure-monitor/service-limits; not re-read for this change: the code "ThrottledError" is the stand-in's choice,
  the status and the header are what azure-core acts on);
- query "partial": the real answer, its first table cut to half its rows, plus the ``error`` member a
  non-fatal error adds to a 200 (response-format: "If a non-fatal error occurs during query execution, the
  response status code is 200 OK ... also contains an error object"); the message names no result-set limit,
  so the app must ask again rather than split (shared/logs/parts.py), and never takes the rows as the answer;
- query "timeout": held `timeout_seconds`, then the connection dropped with no answer (an idle timeout
  between client and service; standins/chaos.py hold_then_drop). The service's own timeout is a 504
  (learn.microsoft.com/azure/azure-monitor/logs/api/timeouts); a drop is the harder case, as azure-core does
  not retry a POST whose answer never came;
- ingestion 500 / 503 / 429 (+ Retry-After) / 413: ``{"error": {"code", "message"}}``, the body this stand-in
  already sends for the API's own refusals (errors.ingestion_error; 413 is exactly its answer to a call over
  1 MB, errors.content_too_large). The API's limits (1 MB per call, throttling with Retry-After) are in
  learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview; its 5xx/429 codes are not
  published and were not checked against a recorded answer;
- ingestion "drop_after_accept": the rows are stored as usual, then the connection drops before the 204; the
  client cannot tell, retries (shared/logs/upload.py does; azure-core does not retry the POST) and the rows
  land twice: nothing in the API deduplicates a resent call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from standins.chaos import Chaos, drop_connection, hold_then_drop, retry_after
from standins.monitor import errors
from standins.monitor.ingestion_api import INGESTION_PATH_PREFIX, MAX_CALL_BYTES
from standins.monitor.query_api import QUERY_PATH_PREFIX
from standins.monitor.wire import encode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Not a limit: the inner code and message name no result-set limit (shared/logs/query.py's size_limit is False).
INTERRUPTED_CODE = "QueryInterrupted"
INTERRUPTED_MESSAGE = "Query execution was interrupted before it completed; the results are partial."
_SERVER_ERRORS = {
    "500": ("InternalServerError", "An internal error occurred while processing the request."),
    "503": ("ServiceUnavailableError", "The service is temporarily unavailable. Please retry."),
}


def chaos_middleware(chaos: Chaos) -> Any:
    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(QUERY_PATH_PREFIX):
            return await _query_fault(chaos, request, handler)
        if request.path.startswith(INGESTION_PATH_PREFIX):
            return await _ingestion_fault(chaos, request, handler)
        return await handler(request)

    return inject


async def _query_fault(chaos: Chaos, request: web.Request, handler: Handler) -> web.StreamResponse:
    point = "monitor.query"
    kind = chaos.draw(point)
    if kind is None:
        return await handler(request)
    plan = chaos.plan
    where = f"{request.method} {request.path}"
    throttled = ("ThrottledError", "Too many requests: the query rate limit was exceeded.")
    if (status := _status_fault(chaos, point, kind, where, errors.query_error, throttled)) is not None:
        return status
    if kind == "timeout":
        chaos.record(point, kind, f"{where}: held {plan.timeout_seconds:g} s, then dropped")
        await hold_then_drop(request, plan.timeout_seconds)
        return web.Response(status=504)  # never sent: the connection is gone
    response = await handler(request)  # "partial"
    cut = _partial(response)
    if cut is None:  # an error or a $batch answer: nothing to cut, no fault
        return response
    body, kept, total = cut
    chaos.record(point, kind, f"{where}: kept {kept} of {total} rows")
    return web.Response(status=200, body=encode(body), content_type="application/json")


def _status_fault(
    chaos: Chaos,
    point: str,
    kind: str,
    where: str,
    error_body: Callable[[str, str], dict[str, Any]],
    throttled: tuple[str, str],
) -> web.Response | None:
    """A 5xx or a 429 with Retry-After in the API's own error shape (`error_body(code, message)`); None for
    other kinds."""
    if kind in _SERVER_ERRORS:
        chaos.record(point, kind, where)
        code, message = _SERVER_ERRORS[kind]
        return web.json_response(error_body(code, message), status=int(kind))
    if kind == "429":
        chaos.record(point, kind, where)
        return web.json_response(error_body(*throttled), status=429, headers=retry_after(chaos.plan))
    return None


def _partial(response: web.StreamResponse) -> tuple[dict[str, Any], int, int] | None:
    """The single-query answer with its first table cut to half its rows and the partial error added."""
    if response.status != 200 or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    body = json.loads(response.body)
    tables = body.get("tables") if isinstance(body, dict) else None
    if not tables:
        return None
    rows = tables[0]["rows"]
    kept = len(rows) // 2
    tables[0]["rows"] = rows[:kept]
    body.setdefault("error", errors.partial_error(INTERRUPTED_MESSAGE, INTERRUPTED_CODE))
    return body, kept, len(rows)


async def _ingestion_fault(chaos: Chaos, request: web.Request, handler: Handler) -> web.StreamResponse:
    point = "monitor.ingestion"
    kind = chaos.draw(point)
    if kind is None:
        return await handler(request)
    where = f"{request.method} {request.path}"
    throttled = ("TooManyRequests", "The request rate limit was exceeded. Retry later.")
    if (status := _status_fault(chaos, point, kind, where, errors.ingestion_error, throttled)) is not None:
        return status
    if kind == "413":
        chaos.record(point, kind, where)
        return web.json_response(errors.content_too_large(MAX_CALL_BYTES), status=413)
    response = await handler(request)  # "drop_after_accept"
    if response.status != 204:  # refused anyway: nothing was accepted, no fault
        return response
    chaos.record(point, kind, f"{where}: rows stored, 204 not sent")
    drop_connection(request)
    return response
