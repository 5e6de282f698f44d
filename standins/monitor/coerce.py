"""JSON values checked against a column's Kusto type and turned into the Python values the store takes.

Stricter than Azure on purpose: a DCR silently drops a column it does not declare and stores
NULL for a value that does not convert, which hides exactly the bugs a local run should catch.

``coerce`` takes one value; ``coerce_column`` takes a column of a request (tens of thousands of
values) and gives the same results without a Python call per cell where it can: values that
need no conversion are checked by type (and range) in bulk, and strings that do (datetimes,
GUIDs, pre-serialised dynamics) are converted once per distinct value, which for uploaded
summaries (a handful of window and revision times) is a few calls per request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from standins.monitor.schema import Column

_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)
# .NET writes 7 fractional digits; Python's parser takes at most 6.
_EXCESS_FRACTION = re.compile(r"(\.\d{6})\d+")


class ValueTypeError(ValueError):
    """A value that does not fit its column's type."""


def parse_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueTypeError(f"expected an ISO 8601 date-time string, got {type(value).__name__}")
    try:
        parsed = dt.datetime.fromisoformat(_EXCESS_FRACTION.sub(r"\1", value.strip()))
    except ValueError as exc:
        raise ValueTypeError(f"'{value}' is not an ISO 8601 date-time") from exc
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _integer(bounds: range, kind: str) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueTypeError(f"expected {kind}, got {json.dumps(value)}")
        if value not in bounds:
            raise ValueTypeError(f"{value} is out of range for {kind}")
        return value

    return convert


def _real(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueTypeError(f"expected a number, got {json.dumps(value)}")
    return float(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueTypeError(f"expected a string, got {json.dumps(value)}")
    return value


def _guid(value: Any) -> str:
    try:
        return str(uuid.UUID(_string(value)))
    except ValueError as exc:
        raise ValueTypeError(f"'{value}' is not a GUID") from exc


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueTypeError(f"expected true or false, got {json.dumps(value)}")
    return value


def _dynamic(value: Any) -> str:
    # Clients often send a dynamic column pre-serialised; Log Analytics stores the parsed object.
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_BY_TYPE: dict[str, Callable[[Any], Any]] = {
    "datetime": parse_datetime,
    "string": _string,
    "guid": _guid,
    "real": _real,
    "int": _integer(_INT32, "an int (32-bit integer)"),
    "long": _integer(_INT64, "a long (64-bit integer)"),
    "bool": _boolean,
    "boolean": _boolean,
    "dynamic": _dynamic,
}


def coerce(column: Column, value: Any) -> Any:
    """The store value for ``value`` in ``column``; null stays null in every type."""
    if value is None:
        return None
    convert = _BY_TYPE.get(column.kusto_type)
    if convert is None:
        raise ValueTypeError(f"type {column.kusto_type} is not accepted by the ingestion stand-in")
    return convert(value)


_NONE = type(None)
# Column types whose values pass through unchanged when every value already has the right type.
_PASS_THROUGH: dict[str, type] = {"string": str, "real": float, "bool": bool, "boolean": bool}
_INTEGER_BOUNDS: dict[str, range] = {"int": _INT32, "long": _INT64}
# Conversions that depend on the value alone, so one call per distinct string is the same as one per cell.
_PER_DISTINCT_STRING = frozenset({"datetime", "guid", "dynamic"})


def coerce_column(column: Column, values: Sequence[Any]) -> list[Any]:
    """``[coerce(column, value) for value in values]``, computed in bulk where possible.

    Raises ValueTypeError for a value that does not fit, not necessarily the first such value:
    callers that report the first bad cell re-check cell by cell (see ingestion_api.py).
    """
    # Exact types, not isinstance: bool is an int, and a bool in a long column must be refused.
    kinds = set(map(type, values))
    kinds.discard(_NONE)
    kind = column.kusto_type
    if kinds <= {_PASS_THROUGH.get(kind)}:
        return list(values)
    bounds = _INTEGER_BOUNDS.get(kind)
    if bounds is not None and kinds == {int}:
        present = [value for value in values if value is not None]
        if min(present) in bounds and max(present) in bounds:
            return list(values)
    elif kind in _PER_DISTINCT_STRING and kinds == {str}:
        converted = {value: coerce(column, value) for value in set(values)}
        return [converted[value] for value in values]
    return [coerce(column, value) for value in values]
