"""Usage query files and parameters: twins stay twins, hostile values stay values, parts are disjoint.

(The summary readers' one latest-revision block: tests/logs/test_kql_includes.py.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb_kql
import pytest

from shared.costs.query import USAGE_COLUMNS, unpack_windows
from shared.errors import QueryError
from shared.logs.kql import KQL_DIR, kql_string_array, load_query, render_query
from shared.logs.parts import MAX_USER_PARTS, QueryPart
from tests.support.kql import HOSTILE

START = datetime(2026, 11, 27, tzinfo=UTC)


def _normalise(text: str) -> str:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    for schema_name, workspace_name in (("customMetrics", "AppMetrics"), ("timestamp", "TimeGenerated"),
                                        ("customDimensions", "Properties"), ("valueCount", "ItemCount"),
                                        ("valueSum", "Sum"), ("name ", "Name "), ("name in", "Name in")):
        body = body.replace(schema_name, workspace_name)
    return body


def test_custom_metrics_query_is_the_workspace_query_under_app_insights_names() -> None:
    workspace = (KQL_DIR / "token-usage-by-window.kql").read_text()
    insights = (KQL_DIR / "token-usage-by-window-custom-metrics.kql").read_text()
    assert _normalise(insights) == _normalise(workspace)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_array_values_stay_values(value: str) -> None:
    con = duckdb_kql.connect()
    con.sql("create table T(UserId VARCHAR)")
    con.sql("insert into T values ('alice'), ('bob')")
    query = render_query("let users = dynamic([]);\nT | where UserId in (users) | count", {"users": ["x", value]})
    assert duckdb_kql.query(con, query).fetchall() == [(0,)]
    with_bob = render_query("let users = dynamic([]);\nT | where UserId in (users) | count", {"users": [value, "bob"]})
    assert duckdb_kql.query(con, with_bob).fetchall() == [(1,)]
    element = duckdb_kql.query(con, f"print v = {kql_string_array([value])}[0]").fetchall()[0][0]
    assert json.loads(element) == value  # dynamic elements come back as JSON text


def test_user_parts_are_disjoint_and_complete_at_every_depth() -> None:
    part = QueryPart(START, START + timedelta(hours=1))
    frontier = [part]
    while frontier[0].user_parts < MAX_USER_PARTS:
        frontier = [half for item in frontier for half in item.split(60) or ()]
        prefixes = [p for item in frontier for p in item.user_hash_prefixes()]
        assert sorted(prefixes) == [f"{v:02x}" for v in range(256)]
    assert frontier[0].split(60) is None


def test_time_is_split_on_window_boundaries_before_users() -> None:
    first, second = QueryPart(START, START + timedelta(hours=5)).split(60)  # type: ignore[misc]
    assert (first.end, second.start, first.user_parts) == (START + timedelta(hours=2),) * 2 + (1,)


def test_usage_query_binds_every_parameter() -> None:
    text = load_query("token-usage-by-window.kql", {"start_time": START, "end_time": START + timedelta(hours=2),
                                                     "window_width": timedelta(minutes=30),
                                                     "user_hash_prefixes": ["0a", "8a"]})
    assert 'let user_hash_prefixes = dynamic(["0a", "8a"]);' in text
    assert "let window_width = 18000000000tick;" in text


def test_packed_windows_unpack_to_one_row_per_window_and_key() -> None:
    packed = [
        ("gpt-4o", "team-a", "alice", "api", '[["2026-11-27T09:00:00Z",2,30,10,5,35,1,20,4,24,0],'
                                             '["2026-11-27T10:00:00.0000000Z",1,7,0,3,10,0,0,0,0,1]]'),
        ("gpt-4o", "team-b", "bob", "api", [["2026-11-27T09:00:00Z", 1, 1, 0, 1, 2, 0, 0, 0, 0, 0]]),  # parsed
    ]
    nine, ten = START + timedelta(hours=9), START + timedelta(hours=10)
    columns = unpack_windows(packed)
    assert list(columns) == list(USAGE_COLUMNS)
    assert list(zip(*columns.values(), strict=True)) == [
        (nine, "gpt-4o", "team-a", "alice", "api", 2, 30, 10, 5, 35, 1, 20, 4, 24, 0),
        (ten, "gpt-4o", "team-a", "alice", "api", 1, 7, 0, 3, 10, 0, 0, 0, 0, 1),
        (nine, "gpt-4o", "team-b", "bob", "api", 1, 1, 0, 1, 2, 0, 0, 0, 0, 0),
    ]
    assert all(start.tzinfo == UTC for start in columns["WindowStart"])
    assert unpack_windows([("gpt-4o", "team-a", "alice", "api", "[]")]) == {name: [] for name in USAGE_COLUMNS}


@pytest.mark.parametrize(
    ("windows", "message"),
    [('[["2026-11-27T09:00:00Z",2,30,10,5]]', "alice"), ("[3]", "alice"), ('{"a": 1}', "alice"),
     ('[["yesterday",1,1,0,1,2,0,0,0,0,0]]', "'yesterday' is not an ISO 8601 date-time")],
)
def test_malformed_packed_windows_are_refused(windows: str, message: str) -> None:
    good = ("gpt-4o", "team-a", "bob", "api", '[["2026-11-27T09:00:00Z",1,1,0,1,2,0,0,0,0,0]]')
    with pytest.raises(QueryError, match=message):
        unpack_windows([good, ("gpt-4o", "team-a", "alice", "api", windows)])
