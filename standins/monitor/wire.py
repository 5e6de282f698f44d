"""Query results in the Log Analytics query API's JSON form (what LogsQueryClient parses).

``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[...]]}]}`` with
Kusto type names; datetimes as ISO 8601 UTC strings ending in Z; ``dynamic`` values as their JSON
text (the service sends dynamic cells as strings, so callers ``json.loads`` them); timespans as
``[d.]hh:mm:ss[.fffffff]``; non-finite reals spelled ``NaN`` / ``Infinity``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from standins.monitor.store import QueryResult

PRIMARY_RESULT = "PrimaryResult"
_INT64_RANGE = range(-(2**63), 2**63)


def iso_utc(value: dt.datetime) -> str:
    # A datetime without tzinfo comes from a TIMESTAMP expression, which is UTC by construction.
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def kusto_timespan(value: dt.timedelta) -> str:
    ticks = (value.days * 86_400 + value.seconds) * 10_000_000 + value.microseconds * 10
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    days, rest = divmod(ticks, 86_400 * 10_000_000)
    hours, rest = divmod(rest, 3_600 * 10_000_000)
    minutes, rest = divmod(rest, 60 * 10_000_000)
    seconds, fraction = divmod(rest, 10_000_000)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{fraction:07d}" if fraction else text


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.timedelta):
        return kusto_timespan(value)
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value


def _datetime(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00.000000Z"
    return str(value)


def _dynamic(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return json.dumps(_jsonable(value), separators=(",", ":"))


def _real(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return float(value) if isinstance(value, Decimal) else value


def _long(value: Any) -> Any:
    return value if isinstance(value, bool) or value in _INT64_RANGE else str(value)


def _string(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value if isinstance(value, str) else str(value)


def _timespan(value: Any) -> Any:
    return kusto_timespan(value) if isinstance(value, dt.timedelta) else str(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime,
    "dynamic": _dynamic,
    "real": _real,
    "long": _long,
    "int": _long,
    "string": _string,
    "guid": str,
    "decimal": str,
    "timespan": _timespan,
}


def _identity(value: Any) -> Any:
    return value


def wire_rows(result: QueryResult) -> list[list[Any]]:
    converters = [_CONVERTERS.get(kind, _identity) for _, kind in result.columns]
    return [
        [None if value is None else convert(value) for value, convert in zip(row, converters, strict=True)]
        for row in result.rows
    ]


def table_json(columns: Sequence[tuple[str, str]], rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "name": PRIMARY_RESULT,
        "columns": [{"name": name, "type": kind} for name, kind in columns],
        "rows": rows,
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rows_within(rows: list[list[Any]], max_bytes: int) -> list[list[Any]]:
    """The longest prefix of ``rows`` whose encoded size stays within ``max_bytes``."""
    total = 2  # the enclosing brackets
    for index, row in enumerate(rows):
        total += len(encode(row)) + 1
        if total > max_bytes:
            return rows[:index]
    return rows
