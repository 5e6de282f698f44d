"""The cost workbook: generated from the repository's KQL files, current, and every query valid.

Workbooks expands {TimeRange:start} / {TimeRange:end} into datetime expressions before the query
runs; the validation below expands them the same way and runs Microsoft's KQL parser over the
result against shared/logs/schemas/log_tables.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.logs.kql import read_query
from tests import ROOT
from tests.support.bicep import app_module, function_call, resource_body
from tests.support.kql_validation import format_diagnostics, validate_kql_files
from tools import build_workbook as builder

WORKBOOK = ROOT / "infra" / "app" / "workbook.json"
EXPANDED = {"{TimeRange:start}": "datetime(2026-01-01T00:00:00Z)", "{TimeRange:end}": "datetime(2026-01-08T00:00:00Z)"}


def workbook_queries() -> list[tuple[str, str]]:
    workbook: dict[str, Any] = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    return [(item["name"], item["content"]["query"]) for item in workbook["items"] if item["type"] == 3]


def test_workbook_json_is_generated_from_the_current_kql_files() -> None:
    assert WORKBOOK.read_text(encoding="utf-8") == builder.render(builder.build()), (
        "infra/app/workbook.json is stale: run .venv/bin/python -m tools.build_workbook"
    )


def test_bicep_deploys_the_generated_workbook() -> None:
    body = resource_body(app_module("workbook")["resources"]["workbook"])
    loaded = function_call(body["properties"]["serializedData"], "load_text_content")
    assert loaded is not None
    assert (ROOT / "infra" / "app" / loaded["file_path"]).resolve() == WORKBOOK


def test_every_panel_starts_with_a_repository_query_file() -> None:
    for panel in builder.PANELS:
        # As the app runs it: includes expanded (shared/logs/kql.py).
        source = read_query(panel.source).rstrip()
        query = dict(workbook_queries())[panel.name]
        bound = builder.bind_time_range(source, panel.source)
        assert query.startswith(bound), panel.name


def test_a_query_file_without_time_parameters_is_refused(tmp_path: Path) -> None:
    (tmp_path / "q.kql").write_text("AppMetrics | take 1\n")
    panel = builder.Panel("p", "P", "q.kql", "", "table")
    with pytest.raises(builder.WorkbookError, match="workbook time range"):
        builder.panel_query(panel, tmp_path)


def test_every_workbook_query_validates(tmp_path: Path) -> None:
    paths = []
    for name, query in workbook_queries():
        for placeholder, value in EXPANDED.items():
            query = query.replace(placeholder, value)
        assert "{" not in query.replace("{TimeRange", ""), f"{name}: unexpanded placeholder"
        path = tmp_path / f"{name}.kql"
        path.write_text(query, encoding="utf-8")
        paths.append(path)
    assert paths, "the workbook has no query"
    results = validate_kql_files(paths)
    problems = [d for diagnostics in results.values() for d in diagnostics]
    assert not problems, "workbook KQL diagnostics:\n" + format_diagnostics(problems)
