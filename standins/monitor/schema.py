"""Table schemas of the local workspace, read from the project's single schema file.

``shared/logs/schemas/log_tables.json`` declares the workspace tables in Kusto types: built-in
``AppMetrics`` (where App Insights pre-aggregated metrics land), the App Insights view
``customMetrics`` (same rows under classic names) and the custom ``_CL`` tables with the DCR
stream that feeds each one. This module turns that into DuckDB DDL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

DEFAULT_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "shared" / "logs" / "schemas" / "log_tables.json"

# Kusto scalar type -> DuckDB column type. Datetimes are stored as TIMESTAMPTZ and every
# connection runs with TimeZone=UTC, so values are UTC instants as in Kusto.
KUSTO_TO_DUCKDB: dict[str, str] = {
    "datetime": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "real": "DOUBLE",
    "int": "INTEGER",
    "long": "BIGINT",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "dynamic": "JSON",
    "guid": "VARCHAR",
    "timespan": "INTERVAL",
    "decimal": "DECIMAL(38, 18)",
}

# The column Log Analytics filters on when a request carries a timespan.
TIME_COLUMNS = ("TimeGenerated", "timestamp")

METRICS_TABLE = "AppMetrics"
METRICS_VIEW = "customMetrics"

# customMetrics is App Insights' name for the same rows the workspace keeps in AppMetrics.
# Pre-aggregated: value is the sum of the aggregated measurements, valueCount their count.
_CUSTOM_METRICS_FROM_APP_METRICS: dict[str, str] = {
    "timestamp": '"TimeGenerated"',
    "name": '"Name"',
    "value": '"Sum"',
    "valueCount": '"ItemCount"',
    "valueSum": '"Sum"',
    "valueMin": '"Min"',
    "valueMax": '"Max"',
    # AppMetrics keeps no standard deviation, so neither can the view.
    "valueStdDev": "NULL",
    "customDimensions": '"Properties"',
    "operation_Name": '"OperationName"',
    "operation_Id": '"OperationId"',
    "client_Type": '"ClientType"',
    "client_IP": '"ClientIP"',
    "cloud_RoleName": '"AppRoleName"',
    "cloud_RoleInstance": '"AppRoleInstance"',
    "appId": '"ResourceGUID"',
    "appName": "regexp_extract(\"_ResourceId\", '[^/]*$')",
    "iKey": '"IKey"',
    "sdkVersion": '"SDKVersion"',
    # A stable per-row id derived from the row, since AppMetrics stores none.
    "itemId": 'CAST(md5(CAST("TimeGenerated" AS VARCHAR) || "Name"'
    " || coalesce(CAST(\"Properties\" AS VARCHAR), '')) AS UUID)",
    "itemType": "'customMetric'",
}


@dataclass(frozen=True)
class Column:
    name: str
    kusto_type: str

    @property
    def duckdb_type(self) -> str:
        return KUSTO_TO_DUCKDB[self.kusto_type]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    stream: str | None = None

    @property
    def time_column(self) -> str | None:
        names = {column.name for column in self.columns}
        return next((name for name in TIME_COLUMNS if name in names), None)

    @cached_property
    def _by_name(self) -> dict[str, Column]:
        return {column.name: column for column in self.columns}

    def column(self, name: str) -> Column | None:
        # A dict, not a scan: ingestion looks a column up for every cell of a request it validates.
        return self._by_name.get(name)


@dataclass(frozen=True)
class LogSchema:
    tables: tuple[Table, ...]
    views: tuple[Table, ...]

    @property
    def queryable(self) -> tuple[Table, ...]:
        return self.tables + self.views

    def table(self, name: str) -> Table | None:
        return next((table for table in self.tables if table.name == name), None)

    def table_for_stream(self, stream: str) -> Table | None:
        return next((table for table in self.tables if table.stream == stream), None)


def _columns(raw: list[dict[str, Any]]) -> tuple[Column, ...]:
    columns = tuple(Column(str(item["name"]), str(item["type"])) for item in raw)
    unknown = [column.kusto_type for column in columns if column.kusto_type not in KUSTO_TO_DUCKDB]
    if unknown:
        raise ValueError(f"unsupported Kusto types in schema: {unknown}")
    return columns


def load_schema(path: Path = DEFAULT_SCHEMA_PATH) -> LogSchema:
    raw = json.loads(path.read_text(encoding="utf-8"))
    builtin: dict[str, list[dict[str, Any]]] = raw["builtin"]
    tables = [Table(name, _columns(columns)) for name, columns in builtin.items() if name != METRICS_VIEW]
    tables += [
        Table(name, _columns(spec["columns"]), stream=str(spec["stream"]))
        for name, spec in raw["custom"].items()
    ]
    views = [Table(METRICS_VIEW, _columns(builtin[METRICS_VIEW]))] if METRICS_VIEW in builtin else []
    return LogSchema(tuple(tables), tuple(views))


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def create_table_sql(table: Table) -> str:
    columns = ", ".join(f"{quote(column.name)} {column.duckdb_type}" for column in table.columns)
    return f"CREATE TABLE IF NOT EXISTS {quote(table.name)} ({columns})"


def add_missing_columns_sql(table: Table, existing: set[str]) -> list[str]:
    """Columns added to the schema file after the database was created are added in place."""
    return [
        f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {column.duckdb_type}"
        for column in table.columns
        if column.name not in existing
    ]


def create_view_sql(view: Table, catalog: str) -> str:
    """The view's SQL, reading its base table by fully qualified name.

    Qualified because queries shadow base tables with per-request temporary views of the same
    name (see store.py); an unqualified reference here would bind to those instead.
    """
    if view.name != METRICS_VIEW:
        raise ValueError(f"no definition for view {view.name!r}")
    missing = [column.name for column in view.columns if column.name not in _CUSTOM_METRICS_FROM_APP_METRICS]
    if missing:
        raise ValueError(f"customMetrics columns without a mapping from AppMetrics: {missing}")
    mapping = _CUSTOM_METRICS_FROM_APP_METRICS
    select = ", ".join(
        f"CAST({mapping[column.name]} AS {column.duckdb_type}) AS {quote(column.name)}"
        for column in view.columns
    )
    source = f"{quote(catalog)}.main.{quote(METRICS_TABLE)}"
    return f"CREATE OR REPLACE VIEW {quote(view.name)} AS SELECT {select} FROM {source}"
