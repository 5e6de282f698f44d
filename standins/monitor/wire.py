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


_NONE = type(None)
# Per Kusto type, the Python types whose values are already in their wire form (checked in bulk).
_WIRE_READY: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "dynamic": frozenset({str}),
    "guid": frozenset({str}),
    "decimal": frozenset({str}),
    "long": frozenset({int, bool}),
    "int": frozenset({int, bool}),
    "real": frozenset({float}),  # and finite
}


def wire_rows(result: QueryResult) -> Sequence[Sequence[Any]]:
    """The result's rows with every value in its wire form (JSON-ready; tuples encode as arrays).

    Converted column by column: a column already in wire form (strings, in-range integers, finite
    reals: most of them) is checked in bulk and left alone, and a datetime column is converted
    once per distinct value (a summarized result repeats a few window starts). Only when some
    column changes are the rows rebuilt.
    """
    if not result.rows:
        return result.rows
    columns: list[Sequence[Any]] = list(zip(*result.rows, strict=True))
    changed = False
    for index, (_, kind) in enumerate(result.columns):
        converted = _wire_column(kind, columns[index])
        if converted is not None:
            columns[index] = converted
            changed = True
    return list(zip(*columns, strict=True)) if changed else result.rows


def _wire_column(kind: str, values: Sequence[Any]) -> list[Any] | None:
    """The column in wire form, or None when it already is."""
    convert = _CONVERTERS.get(kind)
    if convert is None:
        return None
    kinds = set(map(type, values))
    kinds.discard(_NONE)
    if not kinds:
        return None  # all null: null in every type
    ready = _WIRE_READY.get(kind)
    if ready is not None and kinds <= ready and _in_wire_range(kind, values):
        return None
    if kinds <= {dt.datetime}:
        # Equal datetimes are the same instant, whose wire form is one string: convert each once.
        distinct = {value: _datetime(value) for value in set(values) if value is not None}
        return [None if value is None else distinct[value] for value in values]
    return [None if value is None else convert(value) for value in values]


def _in_wire_range(kind: str, values: Sequence[Any]) -> bool:
    present = [value for value in values if value is not None]
    if not present:
        return True
    if kind in ("long", "int"):
        return min(present) in _INT64_RANGE and max(present) in _INT64_RANGE
    if kind == "real":
        return all(map(math.isfinite, present))
    return True


def table_json(columns: Sequence[tuple[str, str]], encoded_rows: bytes) -> bytes:
    """One table of the response, around its already-encoded rows."""
    return object_with(
        {"name": PRIMARY_RESULT, "columns": [{"name": name, "type": kind} for name, kind in columns]},
        rows=encoded_rows,
    )


def object_with(members: dict[str, Any], **encoded: bytes) -> bytes:
    """A JSON object of ``members`` plus members whose values are already-encoded JSON."""
    parts = [encode(name) + b":" + value for name, value in encoded.items()]
    if members:
        parts.append(encode(members)[1:-1])
    return b"{" + b",".join(parts) + b"}"


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rows_within(rows: Sequence[Sequence[Any]], max_bytes: int) -> Sequence[Sequence[Any]]:
    """The longest prefix of ``rows`` whose encoded size stays within ``max_bytes``."""
    total = 2  # the enclosing brackets
    for index, row in enumerate(rows):
        total += len(encode(row)) + 1
        if total > max_bytes:
            return rows[:index]
    return rows
