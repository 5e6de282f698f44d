"""Every .kql file in the repository must pass Microsoft's KQL parser against our table schemas.

The fixture tests prove the validator actually catches what we rely on it for
(unknown columns/functions, type and syntax errors), so a green repository run
means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import ROOT
from tests.support.kql_validation import (
    KqlDiagnostic,
    KqlValidatorUnavailable,
    find_repo_kql_files,
    format_diagnostics,
    validate_kql_files,
    validate_queries_as_run,
)

FIXTURES = ROOT / "tests" / "logs" / "fixtures" / "kql"
REPO_KQL_FILES = find_repo_kql_files()


@pytest.fixture(scope="module")
def repo_results(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, list[KqlDiagnostic]]:
    # One node process for all repository files: loading the parser is the slow part. Files that
    # include a block are checked as the app runs them (expanded); the included file alone too.
    return validate_queries_as_run(REPO_KQL_FILES, tmp_path_factory.mktemp("expanded-kql"))


@pytest.fixture(scope="module")
def fixture_results() -> dict[str, list[KqlDiagnostic]]:
    results = validate_kql_files(sorted(FIXTURES.glob("*.kql")))
    return {path.name: diagnostics for path, diagnostics in results.items()}


@pytest.mark.parametrize(
    "kql_file", REPO_KQL_FILES, ids=[str(p.relative_to(ROOT)) for p in REPO_KQL_FILES]
)
def test_repository_kql_file_has_no_diagnostics(
    kql_file: Path, repo_results: dict[Path, list[KqlDiagnostic]]
) -> None:
    # Stricter than the CLI's exit code on purpose: our own queries should not
    # even carry suggestions, so any diagnostic fails here.
    diagnostics = repo_results[kql_file]
    assert not diagnostics, "KQL diagnostics:\n" + format_diagnostics(diagnostics)


def test_discovery_covers_shared_and_skips_fixtures() -> None:
    found = set(find_repo_kql_files())
    shared = {p.resolve() for p in (ROOT / "shared").rglob("*.kql")}
    # The app ships its queries under shared/; an empty set would mean the
    # parametrized repository test silently checks nothing.
    assert shared, "no .kql files under shared/"
    assert shared <= found
    assert not any(FIXTURES in p.parents for p in found)
    assert not any("node_modules" in p.parts or ".venv" in p.parts for p in found)


def test_discovery_prunes_dependency_and_local_dirs(tmp_path: Path) -> None:
    for rel in [
        "shared/logs/kql/a.kql",
        "deep/er/b.kql",
        "node_modules/pkg/c.kql",
        ".venv/lib/d.kql",
        ".local/e.kql",
        "tests/logs/fixtures/kql/f.kql",
        "tests/g.kql",
        "shared/logs/kql/readme.md",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("print 1\n")
    found = [p.relative_to(tmp_path.resolve()).as_posix() for p in find_repo_kql_files(tmp_path)]
    assert sorted(found) == ["deep/er/b.kql", "shared/logs/kql/a.kql", "tests/g.kql"]


@pytest.mark.parametrize(
    "name",
    [
        "good_appmetrics.kql",
        "declare_query_parameters.kql",
        "token_cost_summary.kql",
        "lab_custom_metrics.kql",
    ],
)
def test_valid_fixture_passes(name: str, fixture_results: dict[str, list[KqlDiagnostic]]) -> None:
    diagnostics = fixture_results[name]
    assert not diagnostics, format_diagnostics(diagnostics)


@pytest.mark.parametrize(
    ("name", "line", "message_part"),
    [
        ("unknown_column.kql", 4, "'TokenCount' does not refer to any known column"),
        ("unknown_function.kql", 3, "'to_tokens' does not refer to any known function"),
        ("type_error_sum_string.kql", 2, "must be summable"),
        ("type_error_datetime_vs_string.kql", 3, "not defined for the operand types datetime and string"),
        ("syntax_error.kql", 3, "Missing expression"),
        # Correctness warnings block: a shadowed `let` parameter silently changes the query's meaning.
        ("shadowed_parameter.kql", 3, "ignored in favor of a column with the same name"),
        ("correctness_warning_join_kind.kql", 2, "join kind"),
        # Project rules added by validate.js on top of the parser.
        ("no_query.kql", 1, "contains no query expression"),
        ("two_results_crlf.kql", 3, "the app reads only the first result table"),
    ],
)
def test_bad_fixture_fails_at_line(
    name: str, line: int, message_part: str, fixture_results: dict[str, list[KqlDiagnostic]]
) -> None:
    blocking = [d for d in fixture_results[name] if d.blocking]
    assert blocking, f"{name}: expected a blocking diagnostic, got none"
    matching = [d for d in blocking if message_part in d.message]
    assert matching, f"{name}: no diagnostic mentions {message_part!r}:\n" + format_diagnostics(blocking)
    assert matching[0].line == line, format_diagnostics(matching)


def test_crlf_line_numbers_and_every_error_reported(fixture_results: dict[str, list[KqlDiagnostic]]) -> None:
    # Line 4 under \r\n endings proves line counting matches the parser's; the
    # second diagnostic proves one problem does not hide the next.
    unknown = [d for d in fixture_results["two_results_crlf.kql"] if "'nope'" in d.message]
    assert [(d.line, d.column, d.severity) for d in unknown] == [(4, 9, "Error")]


def test_diagnostic_str_is_path_line_column() -> None:
    diagnostic = KqlDiagnostic(
        path=ROOT / "shared" / "logs" / "kql" / "q.kql", line=3, column=7, severity="Error", message="boom"
    )
    assert str(diagnostic) == "shared/logs/kql/q.kql:3:7: Error: boom"


def test_helper_reports_missing_schema_as_unavailable(tmp_path: Path) -> None:
    query = tmp_path / "q.kql"
    query.write_text("AppMetrics | take 1\n")
    with pytest.raises(KqlValidatorUnavailable, match="cannot read schema"):
        validate_kql_files([query], schema=tmp_path / "missing.json")


def test_no_files_needs_no_node() -> None:
    assert validate_kql_files([]) == {}
