"""The workspace's storage: one DuckDB file, written by the ingestion APIs and read with KQL.

Concurrency: one DuckDB database opened once per process (DuckDB allows a single writing
process per file). Every read runs on its own cursor — DuckDB's per-thread connection to the same
database — so queries execute in worker threads under MVCC while ingestion keeps appending.
Writes share one cursor behind a lock: appends are batched per request, and serialising them
avoids write-write transaction conflicts without costing throughput at this scale.

Timespan filtering: a request's timespan must restrict every table the KQL reads, wherever the
table appears (joins, unions, lets). Rewriting KQL is fragile, so instead each query's cursor gets
temporary views named like the tables (``AppMetrics``, ``customMetrics``, ``..._CL``) that select
the base table's rows inside the window. DuckDB resolves temporary objects before the database's
own, and temporary objects are private to their cursor, so concurrent queries with different
timespans cannot see each other's windows and the base tables are never touched.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql
import pandas as pd
from duckdb_kql.types import kusto_type

from standins.monitor.schema import (
    DEFAULT_SCHEMA_PATH,
    METRICS_TABLE,
    LogSchema,
    Table,
    add_missing_columns_sql,
    create_table_sql,
    create_view_sql,
    load_schema,
    quote,
)
from standins.monitor.timespan import TimeWindow

# pandas dtypes whose missing values DuckDB reads as NULL (the nullable extension types).
_PANDAS_DTYPES: dict[str, str] = {
    "datetime": "datetime64[us, UTC]",
    "real": "Float64",
    "int": "Int32",
    "long": "Int64",
    "bool": "boolean",
    "boolean": "boolean",
    "timespan": "timedelta64[us]",
}
BULK_BATCH_ROWS = 500_000
_APPLICATION_SCOPE_CATALOG = "application_scope"


@dataclass
class _PendingAppend:
    """A frame queued for the next group append, and what became of it."""

    table: str
    frame: pd.DataFrame
    done: bool = False
    error: BaseException | None = None


@dataclass(frozen=True)
class QueryResult:
    """A query's primary table: Kusto-typed columns and at most ``max_rows`` rows."""

    columns: tuple[tuple[str, str], ...]
    rows: list[tuple[Any, ...]]
    truncated: bool


class MonitorStore:
    """The tables of the local workspace in one DuckDB file (or ``:memory:``)."""

    def __init__(self, db_path: str | Path, schema: LogSchema | None = None) -> None:
        self.schema = schema or load_schema(DEFAULT_SCHEMA_PATH)
        target = str(db_path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(target)
        self._con.execute("SET TimeZone='UTC'")
        self._cursor_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_PendingAppend] = []
        self._writer = self._con.cursor()
        self._writer.execute("SET TimeZone='UTC'")
        self._catalog = str(self._con.sql("SELECT current_database()").fetchall()[0][0])
        self._create_tables()

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
            self._con.close()

    def __enter__(self) -> MonitorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create_tables(self) -> None:
        with self._write_lock:
            for table in self.schema.tables:
                self._writer.execute(create_table_sql(table))
                existing = {
                    str(row[0])
                    for row in self._writer.execute(
                        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?",
                        [self._catalog, table.name],
                    ).fetchall()
                }
                for statement in add_missing_columns_sql(table, existing):
                    self._writer.execute(statement)
            # The default catalog of application-scope queries: empty, so workspace tables do not resolve.
            self._writer.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_APPLICATION_SCOPE_CATALOG}")
            # Recreated on every open: the view names its base table by catalog, which follows the file name.
            for view in self.schema.views:
                self._writer.execute(create_view_sql(view, self._catalog))

    # -- writes ---------------------------------------------------------------------------------

    def insert_rows(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append rows of Python values (datetime, str, float, int, bool; dynamic as JSON text).

        Columns a row leaves out are NULL. Callers validate; unknown columns raise KeyError.
        """
        names = {key for row in rows for key in row}
        return self.insert_columns(table_name, {name: [row.get(name) for row in rows] for name in names})

    def insert_columns(self, table_name: str, columns: Mapping[str, Sequence[Any]]) -> int:
        """Append rows given column by column (name -> one value per row, all the same length).

        Values as for insert_rows; columns left out are NULL. Unknown columns raise KeyError.
        """
        table = self._table(table_name)
        unknown = set(columns) - {column.name for column in table.columns}
        if unknown:
            raise KeyError(f"columns not in {table_name}: {sorted(unknown)}")
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths for {table_name}: {sorted(lengths)}")
        if not lengths or lengths == {0}:
            return 0
        frame = pd.DataFrame(
            {
                column.name: pd.Series(
                    columns[column.name], dtype=_PANDAS_DTYPES.get(column.kusto_type, "object")
                )
                for column in table.columns
                if column.name in columns
            }
        )
        return self.insert_frame(table_name, frame)

    def insert_frame(self, table_name: str, frame: pd.DataFrame) -> int:
        """Append a DataFrame whose columns are a subset of the table's (the fast bulk path).

        Group commit: an append costs a fixed ~10 ms (register, plan, commit) however few its rows,
        and concurrent ingestion requests each bring ~1,500. So appends queue, and whichever caller
        takes the write lock appends everything queued by then, one INSERT per table and column set;
        each caller returns once its own rows are committed (or raises its own error).
        """
        pending = _PendingAppend(self._table(table_name).name, frame)
        with self._pending_lock:
            self._pending.append(pending)
        with self._write_lock:
            if not pending.done:
                self._append_pending()
        if pending.error is not None:
            raise pending.error
        return len(frame)

    def _append_pending(self) -> None:
        """Append every queued frame; the caller holds the write lock."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        groups: dict[tuple[str, tuple[str, ...]], list[_PendingAppend]] = {}
        for item in batch:
            groups.setdefault((item.table, tuple(map(str, item.frame.columns))), []).append(item)
        for (table_name, _), items in groups.items():
            try:
                self._append_group(table_name, items)
            except Exception as error:  # every caller not yet served gets it, and raises it
                for item in items:
                    if not item.done:
                        item.error = error
            finally:
                for item in items:
                    item.done = True

    def _append_group(self, table_name: str, items: list[_PendingAppend]) -> None:
        if len(items) > 1:
            try:
                self._append(table_name, pd.concat([item.frame for item in items], ignore_index=True))
            except duckdb.Error:
                pass  # nothing of the group was written: one by one, so each caller gets its own outcome
            else:
                return
        for item in items:
            try:
                self._append(table_name, item.frame)
            except duckdb.Error as error:
                item.error = error
            item.done = True

    def _append(self, table_name: str, frame: pd.DataFrame) -> None:
        view_name = f"_incoming_{uuid.uuid4().hex}"
        self._writer.register(view_name, frame)
        try:
            self._writer.execute(f"INSERT INTO {quote(table_name)} BY NAME SELECT * FROM {quote(view_name)}")
        finally:
            self._writer.unregister(view_name)

    def _table(self, table_name: str) -> Table:
        table = self.schema.table(table_name)
        if table is None:
            raise KeyError(f"no table {table_name!r} in the workspace schema")
        return table

    # -- reads ----------------------------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._cursor_lock:
            cursor = self._con.cursor()
        try:
            cursor.execute("SET TimeZone='UTC'")
            yield cursor
        finally:
            cursor.close()

    def query(
        self,
        kql: str,
        *,
        now: dt.datetime,
        window: TimeWindow | None = None,
        max_rows: int = 500_000,
        application_scope: bool = False,
    ) -> QueryResult:
        """Run KQL as the query API does: tables limited to ``window``, ``now()`` pinned to ``now``.

        ``application_scope``: the query names the App Insights component, not the workspace, so
        only the App Insights schema (customMetrics, ...) resolves, as in Azure; workspace tables
        (AppMetrics, custom tables) are unknown names. The cursor's default catalog becomes an
        empty one, leaving only this cursor's temporary views of the component's tables.

        Raises duckdb_kql.KqlError for queries it cannot translate and duckdb.Error for queries
        DuckDB refuses (unknown tables/columns, type errors).
        """
        with self._cursor() as cursor:
            if application_scope:
                # Every component table through its view, then a default catalog where nothing else resolves.
                self._shadow(cursor, self.schema.views, window)
                cursor.execute(f"USE {_APPLICATION_SCOPE_CATALOG}")
            elif window is not None:
                timed = [table for table in self.schema.queryable if table.time_column is not None]
                self._shadow(cursor, timed, window)
            relation = _composites_as_json(duckdb_kql.query(cursor, kql, allow_write=False, query_now=now))
            columns = tuple(
                (str(name), kusto_type(kind))
                for name, kind in zip(relation.columns, relation.types, strict=True)
            )
            rows = relation.limit(max_rows + 1).fetchall()
        truncated = len(rows) > max_rows
        return QueryResult(columns, rows[:max_rows] if truncated else rows, truncated)

    def _shadow(self, cursor: duckdb.DuckDBPyConnection, tables: Iterable[Table], window: TimeWindow | None) -> None:
        """A temporary view per table, named like it, of the table's rows inside `window` (all rows
        when there is no window or the table has no time column)."""
        for table in tables:
            where = ""
            if window is not None and table.time_column is not None:
                start, end = (_timestamp_literal(window.start), _timestamp_literal(window.end))
                where = f" WHERE {quote(table.time_column)} BETWEEN {start} AND {end}"
            cursor.execute(
                f"CREATE OR REPLACE TEMP VIEW {quote(table.name)} AS SELECT * FROM "
                f"{quote(self._catalog)}.main.{quote(table.name)}{where}"
            )

    def sql(self, statement: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run read-only SQL on a private cursor; for tests and tools that inspect the store."""
        with self._cursor() as cursor:
            return cursor.execute(statement, parameters or []).fetchall()


# DuckDB types that are Kusto dynamic values but do not come back from DuckDB as their JSON text.
_COMPOSITE_TYPE_IDS = frozenset({"list", "array", "struct", "map"})


def _composites_as_json(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The relation with list/struct/map columns serialized to JSON text by DuckDB.

    duckdb-kql gives make_list(pack_array(...)) as a JSON[] list whose elements are JSON text;
    fetched as Python values those would be encoded as strings inside the array, where Log
    Analytics sends the nested arrays themselves. to_json embeds JSON elements as they are.
    """
    composite = [str(kind.id) in _COMPOSITE_TYPE_IDS for kind in relation.types]
    if not any(composite):
        return relation
    return relation.project(
        ", ".join(
            f"to_json({quote(name)}) AS {quote(name)}" if is_composite else quote(name)
            for name, is_composite in zip(relation.columns, composite, strict=True)
        )
    )


def _timestamp_literal(value: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{value.astimezone(dt.UTC).isoformat()}'"


def bulk_insert_app_metrics(
    target: MonitorStore | str | Path,
    rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    batch_rows: int = BULK_BATCH_ROWS,
) -> int:
    """Load AppMetrics rows in bulk (benchmarks): a DataFrame goes in as one columnar append.

    ``target`` is a running server's store, or a DuckDB file path while no server has it open.
    Row mappings use AppMetrics column names with Python values (see MonitorStore.insert_rows);
    they are appended in batches of ``batch_rows``. Returns the number of rows inserted.
    """
    store = target if isinstance(target, MonitorStore) else MonitorStore(target)
    try:
        if isinstance(rows, pd.DataFrame):
            return store.insert_frame(METRICS_TABLE, rows)
        inserted = 0
        iterator = iter(rows)
        while batch := list(itertools.islice(iterator, batch_rows)):
            inserted += store.insert_rows(METRICS_TABLE, batch)
        return inserted
    finally:
        if store is not target:
            store.close()
