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
from operator import itemgetter
from typing import Any

from aiohttp import web

from standins.monitor import errors
from standins.monitor.bodies import BodyError, read_body
from standins.monitor.coerce import ValueTypeError, coerce, coerce_column
from standins.monitor.config import MonitorConfig
from standins.monitor.schema import Table
from standins.monitor.store import MonitorStore

INGESTION_PATH_PREFIX = "/dataCollectionRules/"
SUPPORTED_API_VERSIONS = frozenset({"2021-11-01-preview", "2023-01-01"})
# The service's per-call limit on the (compressed) request body.
MAX_CALL_BYTES = 1024 * 1024


class RowError(ValueError):
    """A row that does not match its stream's declaration."""


def validate_rows(table: Table, stream: str, rows: Any, now: dt.datetime) -> dict[str, list[Any]]:
    """The rows as store columns (name -> values, one per row), or RowError naming the first row
    and column that do not fit.

    Checked column by column (coerce_column), which costs a few bulk passes per column instead
    of a Python call per cell; a request with any problem is checked again row by row, which
    finds the first bad cell in the order the service reports it.
    """
    if isinstance(rows, list) and set(map(type, rows)) <= {dict}:
        try:
            return _columns(table, rows, now)
        except (KeyError, ValueTypeError):
            pass
    return _columns_of_checked_rows(table, _check_rows(table, stream, rows), now)


def _columns(table: Table, rows: list[dict[str, Any]], now: dt.datetime) -> dict[str, list[Any]]:
    """Raises KeyError for an undeclared column and ValueTypeError for a value that does not fit."""
    columns: dict[str, list[Any]] = {}
    for name, values in _transposed(rows).items():
        column = table.column(name)
        if column is None:
            raise KeyError(name)
        columns[name] = coerce_column(column, values)
    return _with_time_generated(table, columns, len(rows), now)


def _transposed(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column name -> one value per row; a row without the key and a row with null both give None."""
    names = list(rows[0]) if rows else []
    # Rows of one writer have the same keys: as many as the first row's, and each of them.
    if set(map(len, rows)) == {len(names)} and len(names) > 1:
        try:
            return dict(zip(names, map(list, zip(*map(itemgetter(*names), rows), strict=True)), strict=True))
        except KeyError:
            pass
    return {name: [row.get(name) for row in rows] for name in set().union(*rows)}


def _check_rows(table: Table, stream: str, rows: Any) -> list[dict[str, Any]]:
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
        checked.append(values)
    return checked


def _columns_of_checked_rows(
    table: Table, rows: list[dict[str, Any]], now: dt.datetime
) -> dict[str, list[Any]]:
    names = {name for row in rows for name in row}
    columns = {name: [row.get(name) for row in rows] for name in names}
    return _with_time_generated(table, columns, len(rows), now)


def _with_time_generated(
    table: Table, columns: dict[str, list[Any]], row_count: int, now: dt.datetime
) -> dict[str, list[Any]]:
    # A DCR must produce TimeGenerated; rows that lack it get the ingestion time.
    if table.column("TimeGenerated") is not None:
        times = columns.get("TimeGenerated", [None] * row_count)
        columns["TimeGenerated"] = [now if value is None else value for value in times]
    return columns


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
            return web.json_response(errors.content_too_large(MAX_CALL_BYTES), status=413)
        try:
            body = await read_body(request)
            # Decoding and checking a 1 MiB body takes a while: off the event loop, like the insert.
            columns = await asyncio.to_thread(self._decode, table, stream, body)
        except (BodyError, ValueError) as exc:
            # RowError and JSON errors are both ValueErrors; each message says which it was.
            return _error(400, "InvalidContent", f"The request content is invalid: {exc}")
        await asyncio.to_thread(self._store.insert_columns, table.name, columns)
        return web.Response(status=204)

    @staticmethod
    def _decode(table: Table, stream: str, body: bytes) -> dict[str, list[Any]]:
        return validate_rows(table, stream, json.loads(body), dt.datetime.now(dt.UTC))


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(errors.ingestion_error(code, message), status=status)
