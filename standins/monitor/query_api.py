"""Log Analytics query API: ``POST /v1/workspaces/{workspaceId}/query`` and ``POST /v1/$batch``.

Body ``{"query", "timespan", "workspaces"}`` as LogsQueryClient sends it (azure-monitor-query 2.x
strips a trailing ``/v1`` from the endpoint and always adds it back, so both endpoint spellings
arrive here). KQL runs on DuckDB through duckdb-kql in a worker thread; results, errors and
partial results follow the service's shapes (see wire.py and errors.py). ``Prefer`` (wait=,
include-statistics, include-render) is accepted; statistics are reported minimally.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import duckdb
from aiohttp import web
from duckdb_kql import KqlError

from standins.monitor import errors
from standins.monitor.config import MonitorConfig
from standins.monitor.store import MonitorStore
from standins.monitor.timespan import TimespanError, parse_timespan
from standins.monitor.wire import encode, rows_within, table_json, wire_rows

QUERY_PATH_PREFIX = "/v1/"
_RESPONSE_OVERHEAD_BYTES = 64 * 1024  # room for column metadata and the partial-error member


class QueryApi:
    def __init__(self, config: MonitorConfig, store: MonitorStore) -> None:
        self._config = config
        self._store = store

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/workspaces/{workspaceId}/query", self.post_query)
        app.router.add_get("/v1/workspaces/{workspaceId}/query", self.get_query)
        app.router.add_post("/v1/$batch", self.post_batch)

    def _known_workspace(self, workspace: str) -> bool:
        return workspace.strip().lower() == self._config.workspace_id.lower()

    async def post_query(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _json(400, errors.bad_request("The request body is not valid JSON"))
        status, payload = await self.execute(
            request.match_info["workspaceId"], body, request.headers.get("Prefer", "")
        )
        return _json(status, payload)

    async def get_query(self, request: web.Request) -> web.Response:
        body = {"query": request.query.get("query"), "timespan": request.query.get("timespan")}
        status, payload = await self.execute(
            request.match_info["workspaceId"], body, request.headers.get("Prefer", "")
        )
        return _json(status, payload)

    async def post_batch(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            requests = body["requests"]
            if not isinstance(requests, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _json(400, errors.bad_request("The batch body must be {'requests': [...]}"))
        outcomes = await asyncio.gather(*(self._batch_item(item) for item in requests))
        return _json(200, {"responses": outcomes})

    async def _batch_item(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or item.get("path", "/query") != "/query":
            return {
                "id": item.get("id") if isinstance(item, dict) else None,
                "status": 400,
                "body": errors.bad_request("Only POST /query requests can be batched"),
            }
        headers = item.get("headers") or {}
        status, payload = await self.execute(
            str(item.get("workspace", "")), item.get("body"), headers.get("Prefer", "")
        )
        return {"id": item.get("id"), "status": status, "body": payload}

    async def execute(self, workspace_id: str, body: Any, prefer: str) -> tuple[int, dict[str, Any]]:
        """Run one query request; returns the HTTP status and the JSON body."""
        if not self._known_workspace(workspace_id):
            return 404, errors.workspace_not_found(workspace_id)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return 400, errors.bad_request("The request must contain a non-empty 'query'")
        extra = body.get("workspaces") or []
        unknown = [workspace for workspace in extra if not self._known_workspace(str(workspace))]
        if unknown:
            return 404, errors.workspace_not_found(str(unknown[0]))
        now = dt.datetime.now(dt.UTC)
        try:
            window = parse_timespan(body.get("timespan"), now)
        except TimespanError as exc:
            return 400, errors.bad_request(f"Invalid timespan: {exc}")
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(
                self._store.query, body["query"], now=now, window=window, max_rows=self._config.max_rows
            )
        except (KqlError, duckdb.Error) as exc:
            return 400, errors.kql_error(exc)
        rows = wire_rows(result)
        limit_message = errors.record_limit_message(self._config.max_rows) if result.truncated else None
        budget = max(self._config.max_response_bytes - _RESPONSE_OVERHEAD_BYTES, 0)
        if len(encode(rows)) > budget:
            rows = rows_within(rows, budget)
            limit_message = errors.size_limit_message(self._config.max_response_bytes)
        payload: dict[str, Any] = {"tables": [table_json(result.columns, rows)]}
        if "include-statistics=true" in prefer.replace(" ", ""):
            elapsed_s = time.perf_counter() - started
            payload["statistics"] = {
                "query": {
                    "executionTime": elapsed_s,
                    "datasetStatistics": [{"tableRowCount": len(rows), "tableSize": len(encode(rows))}],
                }
            }
        if limit_message is not None:
            payload["error"] = errors.partial_error(limit_message)
        return 200, payload


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=encode(payload), content_type="application/json")
