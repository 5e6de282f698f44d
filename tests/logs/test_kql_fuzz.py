"""Fuzz: any value bound into a query's `let` parameter is one KQL literal that Microsoft's parser reads back
as exactly that value and the Azure Monitor stand-in (duckdb-kql) returns unchanged, or the binder refuses it
with the documented KqlParameterError; it never changes the query around it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import duckdb_kql
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.errors import KqlParameterError
from shared.logs.kql import ParamValue, render_query
from tests.support.fuzz import hostile_text
from tests.support.kql_literals import KqlLiteralReader

TICKS_PER_MICROSECOND = 10
_EPOCH_TICKS = 621355968000000000  # 1970-01-01 in .NET ticks (100 ns since 0001-01-01)
# A query whose result a broken-out value would change: one row, its parameter, and a marker after it.
QUERY = 'let value = "example";\nlet marker = "after";\nprint bound = value, marker'


@pytest.fixture(scope="module")
def parser() -> Iterator[KqlLiteralReader]:
    reader = KqlLiteralReader()
    yield reader
    reader.close()


def _bound(value: ParamValue) -> str | None:
    try:
        return render_query(QUERY, {"value": value})
    except KqlParameterError:
        return None


def _read_back(kind: str | None, text: str | None, value: ParamValue) -> None:
    """Microsoft's parser read `text` (kql_literals.js' spelling) as a literal of `kind`: the value bound."""
    assert text is not None
    if isinstance(value, bool):
        assert (kind, text) == ("bool", "true" if value else "false")
    elif isinstance(value, datetime):
        micros = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        # The parser's bridge build holds a datetime as a JavaScript Date: milliseconds.
        assert (kind, int(text)) == ("datetime", _EPOCH_TICKS + micros // 1000 * 1000 * TICKS_PER_MICROSECOND)
    elif isinstance(value, timedelta):
        ticks = value // timedelta(microseconds=1) * TICKS_PER_MICROSECOND
        # Exact while a double holds it (the bridge's arithmetic); the stand-in checks every tick below.
        assert kind == "timespan" and (int(text) == ticks if abs(ticks) < 2**53 else float(text) == float(ticks))
    elif isinstance(value, int):
        assert (kind, int(text)) == ("long", value)
    elif isinstance(value, float):
        assert kind == "real" and float(text) == value
    else:
        assert (kind, text) == ("string", value)


def _check_bound(parser: KqlLiteralReader, value: ParamValue, query: str) -> None:
    parsed = parser.read(query)
    assert parsed.diagnostics == () and parsed.statements == ("LetStatement", "LetStatement", "ExpressionStatement")
    bound, marker = parsed.lets
    assert marker.value == "after" and bound.name == "value"
    # One literal; a negative timespan is a minus sign before one (the stand-in takes no timespan(-1tick)).
    negative_timespan = isinstance(value, timedelta) and value < timedelta(0)
    assert bound.syntax == (
        "-LiteralExpression"
        if negative_timespan
        else "DynamicExpression"
        if isinstance(value, list)
        else "LiteralExpression"
    ), bound.syntax
    if isinstance(value, list):
        assert bound.type == "dynamic" and json.loads(bound.value or "") == value
    else:
        _read_back(bound.type, bound.value, value)
    rows = duckdb_kql.query(duckdb_kql.connect(), query).fetchall()
    assert len(rows) == 1 and rows[0][1] == "after"
    stand_in = rows[0][0]
    if isinstance(value, datetime):
        assert stand_in.replace(tzinfo=UTC) == value
    elif isinstance(value, list):
        assert json.loads(stand_in) == value
    else:
        assert stand_in == value


_utc_datetimes = st.datetimes(
    timezones=st.just(UTC)
    | st.builds(
        timezone,
        st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
            lambda d: timedelta(minutes=d // timedelta(minutes=1))
        ),
    )
)
_values: st.SearchStrategy[Any] = st.one_of(
    hostile_text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    _utc_datetimes,
    st.timedeltas(),
    st.lists(hostile_text, max_size=4),
)  # fmt: skip


@given(_values)
@example(datetime(999, 5, 1, 12, tzinfo=UTC))  # %Y wrote "999": not a KQL datetime
@example(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))  # before year 1 in UTC
@example(timedelta(microseconds=1500))  # was bound as 1ms
@example(timedelta(days=-1, microseconds=7))
@example(timedelta(days=999_999_999))  # past KQL's timespan range
@example(2**63)  # past KQL's long
@example(float("inf"))
@example("\ud800 lone surrogate")  # no UTF-8 request can carry it
@example("\u2028 line separator \x85 next line")
@example(["a\\", '"', "\u2028"])
def test_a_bound_value_is_one_literal_read_back_unchanged_or_refused(parser: KqlLiteralReader, value: Any) -> None:
    query = _bound(value)
    if query is None:
        return
    _check_bound(parser, value, query)
