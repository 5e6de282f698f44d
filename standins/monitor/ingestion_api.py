"""Logs Ingestion API: ``POST /dataCollectionRules/{ruleId}/streams/{stream}?api-version=...``.

What LogsIngestionClient.upload sends: JSON arrays of rows, gzip-compressed, at most 1 MiB of
JSON per request. The one configured DCR (kind Direct) routes each custom table's declared
stream (``Custom-<Table>``, from log_tables.json) into that table. Success is 204.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from standins.monitor import errors
from standins.monitor.bodies import BodyError, read_body
from standins.monitor.coerce import ValueTypeError, coerce
from standins.monitor.config import MonitorConfig
from standins.monitor.schema import Table
from standins.monitor.store import MonitorStore

INGESTION_PATH_PREFIX = "/dataCollectionRules/"
SUPPORTED_API_VERSIONS = frozenset({"2021-11-01-preview", "2023-01-01"})
# The service's per-call limit on the (compressed) request body.
MAX_CALL_BYTES = 1024 * 1024


class RowError(ValueError):
    """A row that does not match its stream's declaration."""


def validate_rows(table: Table, stream: str, rows: Any, now: dt.datetime) -> list[dict[str, Any]]:
    """Rows as store values, or RowError naming the first row and column that do not fit."""
    if not isinstance(rows, list):
        raise RowError("the body must be a JSON array of objects")
    checked: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise RowError(f"row {index} is not a JSON object")
        values: dict[str, Any] = {}
        for name, value in row.items():
            column = table.column(name)
            if column is None:
                raise RowError(f"row {index}: column '{name}' is not declared in stream '{stream}'")
            try:
                values[name] = coerce(column, value)
            except ValueTypeError as exc:
                raise RowError(f"row {index}: column '{name}' ({column.kusto_type}): {exc}") from exc
        # A DCR must produce TimeGenerated; rows that lack it get the ingestion time.
        if table.column("TimeGenerated") is not None and values.get("TimeGenerated") is None:
            values["TimeGenerated"] = now
        checked.append(values)
    return checked


class IngestionApi:
    def __init__(self, config: MonitorConfig, store: MonitorStore) -> None:
        self._config = config
        self._store = store

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/dataCollectionRules/{ruleId}/streams/{stream}", self.post_stream)

    async def post_stream(self, request: web.Request) -> web.Response:
        rule_id, stream = request.match_info["ruleId"], request.match_info["stream"]
        api_version = request.query.get("api-version")
        if api_version not in SUPPORTED_API_VERSIONS:
            return _error(
                400,
                "InvalidApiVersion",
                f"api-version '{api_version}' is not supported; use one of {sorted(SUPPORTED_API_VERSIONS)}",
            )
        if rule_id != self._config.dcr_immutable_id:
            return _error(404, "NotFound", f"Data collection rule with immutable Id '{rule_id}' not found.")
        table = self._store.schema.table_for_stream(stream)
        if table is None:
            return _error(
                400,
                "InvalidStream",
                f"Stream '{stream}' is not declared in data collection rule '{rule_id}'.",
            )
        if request.content_length is not None and request.content_length > MAX_CALL_BYTES:
            return _error(
                413, "ContentLengthLimitExceeded", f"The request body exceeds {MAX_CALL_BYTES} bytes."
            )
        try:
            rows = validate_rows(table, stream, json.loads(await read_body(request)), dt.datetime.now(dt.UTC))
        except (BodyError, ValueError) as exc:
            # RowError and JSON errors are both ValueErrors; each message says which it was.
            return _error(400, "InvalidContent", f"The request content is invalid: {exc}")
        await asyncio.to_thread(self._store.insert_rows, table.name, rows)
        return web.Response(status=204)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(errors.ingestion_error(code, message), status=status)
