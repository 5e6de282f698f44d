"""Query parameters are bound as literals: a hostile value cannot change the query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb_kql
import pytest

from shared.errors import KqlParameterError
from shared.logs.kql import kql_string, load_query, render_query
from tests.support.kql import HOSTILE


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_string_round_trips_as_one_value(value: str) -> None:
    con = duckdb_kql.connect()
    rows = duckdb_kql.query(con, f"print v = {kql_string(value)}").fetchall()
    assert rows == [(value,)]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_cannot_change_a_filter(value: str) -> None:
    con = duckdb_kql.connect()
    con.sql("create table T(UserId VARCHAR)")
    con.sql("insert into T values ('alice'), ('bob')")
    query = render_query('let user = "alice";\nT | where UserId == user | count', {"user": value})
    assert duckdb_kql.query(con, query).fetchall() == [(0,)]


def test_control_characters_are_refused() -> None:
    with pytest.raises(KqlParameterError, match="U\\+0007"):
        kql_string("bell\a")


def test_shipped_query_binds_its_parameters() -> None:
    start = datetime(2026, 11, 27, 10, tzinfo=UTC)
    text = load_query(
        "token-usage-by-window.kql",
        {"start_time": start, "end_time": start + timedelta(hours=1), "window_width": timedelta(minutes=15)},
    )
    assert "let start_time = datetime(2026-11-27T10:00:00.000000Z);" in text
    assert "let end_time = datetime(2026-11-27T11:00:00.000000Z);" in text
    assert "let window_width = 9000000000tick;" in text  # 15 minutes in 100 ns ticks, exactly


def test_unknown_parameter_is_an_error() -> None:
    with pytest.raises(KqlParameterError, match="no `let nope"):
        render_query("let a = 1;\nT", {"nope": 1})


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(KqlParameterError, match="no time zone"):
        render_query("let a = now();\nT", {"a": datetime(2026, 1, 1)})
