"""The latest-complete-revision block is written once and every reader of the cost summaries includes it.

Before, the block was copied into each reader and a test compared the copies; now it lives in
latest-complete-revision.kql and `// include:` lines put it where it belongs (shared/logs/kql.py),
so the app, the local stand-in and the workbook all run one definition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.errors import KqlFileError
from shared.logs.kql import KQL_DIR, expand_includes, load_query, read_query

BLOCK_FILE = "latest-complete-revision.kql"
INCLUDE = f"// include: {BLOCK_FILE}"
READERS = (
    "cost-summary-latest.kql", "cost-totals-by-subscription-day.kql", "alert-usage.kql", "alert-usage-size.kql",
    "bill-our-cost-by-deployment-day.kql", "focus-cost-by-day.kql", "report-cost-by-caller.kql",
)  # fmt: skip
START = datetime(2026, 11, 27, tzinfo=UTC)


def _block() -> str:
    text = (KQL_DIR / BLOCK_FILE).read_text(encoding="utf-8")
    return text.split("// -- begin include\n", 1)[1].split("// -- end include\n", 1)[0]


@pytest.mark.parametrize("reader", READERS)
def test_every_summary_reader_includes_the_one_latest_revision_block(reader: str) -> None:
    text = (KQL_DIR / reader).read_text(encoding="utf-8")
    assert text.splitlines().count(INCLUDE) == 1
    assert "arg_max(" not in text and "let latest_summaries" not in text, f"{reader} repeats the block"
    expanded = read_query(reader)
    assert f"// -- {BLOCK_FILE} (included)\n{_block()}// -- end of {BLOCK_FILE}\n" in expanded
    assert expanded.index("let end_time") < expanded.index("let summaries") < expanded.index("\nlatest_summaries")


def test_no_other_query_file_reads_the_summaries_without_the_block() -> None:
    def code(path: Path) -> str:
        return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("//"))

    others = [path for path in sorted(KQL_DIR.glob("*.kql")) if path.name != BLOCK_FILE]
    assert [path.name for path in others if "TokenCostSummary_CL" in code(path)] == []
    includers = [path.name for path in others if INCLUDE in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(includers) == sorted(READERS)
    assert _block().count("TokenCostSummary_CL") == 1


def test_the_included_query_binds_the_including_files_parameters() -> None:
    text = load_query(READERS[0], {"start_time": START, "end_time": START.replace(day=28)})
    assert "let start_time = datetime(2026-11-27T00:00:00.000000Z);" in text
    assert "let end_time = datetime(2026-11-28T00:00:00.000000Z);" in text
    assert "// include:" not in text


def test_a_text_without_include_lines_is_unchanged() -> None:
    text = "let a = 1;\nT | take a\n"
    assert expand_includes(text) == text


def _write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


BLOCK = "let t = 1;\n// -- begin include\nlet x = T | where v > t;\n// -- end include\nx\n"


def test_an_include_expands_to_the_block_between_the_markers(tmp_path: Path) -> None:
    _write(tmp_path, "b.kql", BLOCK)
    text = expand_includes("let t = 2;\n// include: b.kql\nx | count", source="q.kql", kql_dir=tmp_path)
    assert text == "let t = 2;\n// -- b.kql (included)\nlet x = T | where v > t;\n// -- end of b.kql\nx | count"


@pytest.mark.parametrize(
    ("block", "query", "message"),
    [
        (None, "let t = 2;\n// include: b.kql\nx", r"q\.kql, line 2: cannot read the included file .*b\.kql"),
        ("let x = T;\nx\n", "// include: b.kql\nx", r"q\.kql, line 1: .*b\.kql must have one `// -- begin include`"),
        (
            "// -- end include\n// -- begin include\nx\n",
            "// include: b.kql\nx",
            r"line 1: .*b\.kql: `// -- end include` comes before",
        ),
        (
            "// -- begin include\n// include: c.kql\n// -- end include\nx\n",
            "// include: b.kql\nx",
            r"q\.kql, line 1: .*b\.kql, line 2: an included block cannot include another file",
        ),
        (BLOCK, "// include: b.kql\nx", r"q\.kql, line 1: b\.kql uses the parameters \['t'\]: declare `let t = "),
    ],
    ids=["missing file", "no markers", "markers reversed", "nested include", "parameter not declared"],
)
def test_a_bad_include_names_the_file_and_line(tmp_path: Path, block: str | None, query: str, message: str) -> None:
    if block is not None:
        _write(tmp_path, "b.kql", block)
    with pytest.raises(KqlFileError, match=message):
        expand_includes(query, source="q.kql", kql_dir=tmp_path)
