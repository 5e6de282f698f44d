"""Log Analytics query API: ``POST /v1/workspaces/{workspaceId}/query``, ``POST /v1/$batch`` and the
resource-centric ``POST /v1/{resourceId}/query`` for the App Insights component (its tables only).

Body ``{"query", "timespan", "workspaces"}`` as LogsQueryClient sends it (azure-monitor-query 2.x
strips a trailing ``/v1`` from the endpoint and always adds it back, so both endpoint spellings
arrive here). KQL runs on DuckDB through duckdb-kql in a worker thread; results, errors and
partial results follow the service's shapes (see wire.py and errors.py). ``Prefer`` (wait=,
include-statistics, include-render) is accepted; statistics are reported minimally.

Results can be hundreds of thousands of rows, so a response body is encoded exactly once: the
rows are encoded on their own (their size decides whether the result is cut at the size limit)
and the body, or a batch of bodies, is assembled around those bytes.
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
from standins.monitor.store import MonitorStore, QueryResult
from standins.monitor.timespan import TimespanError, parse_timespan
from standins.monitor.wire import encode, object_with, rows_within, table_json, wire_rows

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
        # Resource-centric: LogsQueryClient.query_resource sends POST /v1/subscriptions/.../query
        # (the id's leading slash folded into the path's; a doubled slash is accepted too).
        app.router.add_post(r"/v1/{resource_id:/*(?i:subscriptions)/.+}/query", self.post_resource_query)

    def _known_workspace(self, workspace: str) -> bool:
        return workspace.strip().lower() == self._config.workspace_id.lower()

    async def post_query(self, request: web.Request) -> web.Response:
        return await self._post(request, request.match_info["workspaceId"])

    async def post_resource_query(self, request: web.Request) -> web.Response:
        """A query scoped to the App Insights component: its tables (customMetrics, ...) only."""
        resource_id = "/" + request.match_info["resource_id"].lstrip("/")
        if resource_id.lower() != self._config.app_resource_id.lower():
            return _json_bytes(404, encode(errors.resource_not_found(resource_id)))
        return await self._post(request, self._config.workspace_id, application_scope=True)

    async def _post(self, request: web.Request, workspace_id: str, *, application_scope: bool = False) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _json_bytes(400, encode(errors.bad_request("The request body is not valid JSON")))
        status, payload = await self.execute(
            workspace_id, body, request.headers.get("Prefer", ""), application_scope=application_scope
        )
        return _json_bytes(status, payload)

    async def get_query(self, request: web.Request) -> web.Response:
        body = {"query": request.query.get("query"), "timespan": request.query.get("timespan")}
        status, payload = await self.execute(
            request.match_info["workspaceId"], body, request.headers.get("Prefer", "")
        )
        return _json_bytes(status, payload)

    async def post_batch(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            requests = body["requests"]
            if not isinstance(requests, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _json_bytes(400, encode(errors.bad_request("The batch body must be {'requests': [...]}")))
        outcomes = await asyncio.gather(*(self._batch_item(item) for item in requests))
        return _json_bytes(200, object_with({}, responses=b"[" + b",".join(outcomes) + b"]"))

    async def _batch_item(self, item: Any) -> bytes:
        """One element of the batch's ``responses``, encoded."""
        if not isinstance(item, dict) or item.get("path", "/query") != "/query":
            return encode({
                "id": item.get("id") if isinstance(item, dict) else None,
                "status": 400,
                "body": errors.bad_request("Only POST /query requests can be batched"),
            })
        headers = item.get("headers") or {}
        status, payload = await self.execute(
            str(item.get("workspace", "")), item.get("body"), headers.get("Prefer", "")
        )
        return object_with({"id": item.get("id"), "status": status}, body=payload)

    async def execute(
        self, workspace_id: str, body: Any, prefer: str, *, application_scope: bool = False
    ) -> tuple[int, bytes]:
        """Run one query request; returns the HTTP status and the encoded JSON body."""
        if not self._known_workspace(workspace_id):
            return 404, encode(errors.workspace_not_found(workspace_id))
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return 400, encode(errors.bad_request("The request must contain a non-empty 'query'"))
        extra = body.get("workspaces") or []
        unknown = [workspace for workspace in extra if not self._known_workspace(str(workspace))]
        if unknown:
            return 404, encode(errors.workspace_not_found(str(unknown[0])))
        now = dt.datetime.now(dt.UTC)
        try:
            window = parse_timespan(body.get("timespan"), now)
        except TimespanError as exc:
            return 400, encode(errors.bad_request(f"Invalid timespan: {exc}"))
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(
                self._store.query,
                body["query"],
                now=now,
                window=window,
                max_rows=self._config.max_rows,
                application_scope=application_scope,
            )
        except (KqlError, duckdb.Error) as exc:
            return 400, encode(errors.kql_error(exc))
        # Encoding a large result is CPU work like the query: in a worker thread too.
        return 200, await asyncio.to_thread(self._result_body, result, prefer, started)

    def _result_body(self, result: QueryResult, prefer: str, started: float) -> bytes:
        rows = wire_rows(result)
        limit_message = errors.record_limit_message(self._config.max_rows) if result.truncated else None
        budget = max(self._config.max_response_bytes - _RESPONSE_OVERHEAD_BYTES, 0)
        encoded_rows = encode(rows)
        if len(encoded_rows) > budget:
            rows = rows_within(rows, budget)
            encoded_rows = encode(rows)
            limit_message = errors.size_limit_message(self._config.max_response_bytes)
        members: dict[str, Any] = {}
        if "include-statistics=true" in prefer.replace(" ", ""):
            elapsed_s = time.perf_counter() - started
            members["statistics"] = {
                "query": {
                    "executionTime": elapsed_s,
                    "datasetStatistics": [{"tableRowCount": len(rows), "tableSize": len(encoded_rows)}],
                }
            }
        if limit_message is not None:
            members["error"] = errors.partial_error(limit_message)
        return object_with(members, tables=b"[" + table_json(result.columns, encoded_rows) + b"]")


def _json_bytes(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")
