"""Validate .kql files with Microsoft's KQL parser via tools/kql/validate.js.

The parser (Kusto.Language) only exists for .NET and, as a Bridge.NET build, for
JavaScript; running it under node keeps the Python side free of .NET. All files
go to one node process because loading the parser dominates the cost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.logs.kql import expand_includes
from tests import ROOT

VALIDATOR = ROOT / "tools" / "kql" / "validate.js"
SCHEMA = ROOT / "shared" / "logs" / "schemas" / "log_tables.json"
PARSER_DIR = ROOT / "node_modules" / "@kusto" / "language-service-next"

# Directory names never searched for repository queries: dependencies, virtual
# envs and local scratch state are not ours to validate.
_SKIP_DIR_NAMES = frozenset({"node_modules", ".venv", ".local", ".git", "__pycache__", ".mypy_cache"})
# Deliberately bad queries live here; they are validated by their own tests.
_SKIP_SUBTREES = (Path("tests") / "logs" / "fixtures",)

# Exit codes of validate.js: 1 means "diagnostics found", 2 means it could not run.
_EXIT_OK = 0
_EXIT_BLOCKING = 1


class KqlValidatorUnavailable(RuntimeError):
    """node or the npm parser package is missing, or the validator crashed."""


@dataclass(frozen=True)
class KqlDiagnostic:
    path: Path
    line: int
    column: int
    severity: str
    message: str
    code: str = ""
    category: str = ""
    # Mirrors validate.js: any Error, or a Warning not in the Performance category.
    blocking: bool = True

    def __str__(self) -> str:
        return f"{_display(self.path)}:{self.line}:{self.column}: {self.severity}: {self.message}"


def _display(path: Path) -> str:
    # Repo-relative paths keep failure messages short and clickable from the repo root.
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def find_repo_kql_files(root: Path = ROOT) -> list[Path]:
    """Every .kql file under root, except dependencies, local state and test fixtures."""
    root = root.resolve()
    skipped = {root / sub for sub in _SKIP_SUBTREES}
    found: list[Path] = []
    # os.walk with in-place pruning: rglob would descend into node_modules first.
    for current, dirs, files in os.walk(root):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIR_NAMES and here / d not in skipped)
        found.extend(here / name for name in sorted(files) if name.endswith(".kql"))
    return found


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise KqlValidatorUnavailable(
            "`node` (>= 20) is not on PATH; it is needed to run tools/kql/validate.js"
        )
    if not PARSER_DIR.is_dir():
        raise KqlValidatorUnavailable(
            f"{_display(PARSER_DIR)} is missing: run `npm ci` in {ROOT} (or `make setup`)"
        )
    return node


def run_validator(paths: Sequence[Path], *, schema: Path = SCHEMA) -> dict[str, Any]:
    """Run validate.js once over all paths and return its parsed JSON report."""
    node = _node()
    # Paths go on stdin, not argv, so any number of files fits in one process.
    stdin = json.dumps([str(Path(p).resolve()) for p in paths])
    proc = subprocess.run(
        [node, str(VALIDATOR), "--schema", str(schema), "--stdin"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if proc.returncode not in (_EXIT_OK, _EXIT_BLOCKING):
        raise KqlValidatorUnavailable(
            f"tools/kql/validate.js failed (exit {proc.returncode}): {proc.stderr.strip()}"
        )
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def validate_kql_files(paths: Iterable[Path], *, schema: Path = SCHEMA) -> dict[Path, list[KqlDiagnostic]]:
    """Diagnostics per file (keys are the paths as given; an empty list means clean).

    Includes non-blocking diagnostics (suggestions, performance hints); filter on
    ``KqlDiagnostic.blocking`` to apply the validator's pass/fail policy.
    """
    given = list(paths)
    if not given:
        return {}
    report = run_validator(given, schema=schema)
    files = report["files"]
    if len(files) != len(given):
        raise KqlValidatorUnavailable(f"validator reported {len(files)} files for {len(given)} inputs")
    result: dict[Path, list[KqlDiagnostic]] = {}
    # validate.js answers in input order, so zip maps results back to the caller's own Path objects.
    for path, entry in zip(given, files, strict=True):
        result[path] = [
            KqlDiagnostic(
                path=path,
                line=int(d["line"]),
                column=int(d["column"]),
                severity=str(d["severity"]),
                message=str(d["message"]),
                code=str(d["code"]),
                category=str(d["category"]),
                blocking=bool(d["blocking"]),
            )
            for d in entry["diagnostics"]
        ]
    return result


def validate_queries_as_run(
    paths: Iterable[Path], workdir: Path, *, schema: Path = SCHEMA
) -> dict[Path, list[KqlDiagnostic]]:
    """validate_kql_files, but a file with `// include:` lines is validated expanded, as the app runs
    it (shared/logs/kql.py): its diagnostics name the expanded copy written to `workdir`, whose line
    numbers they give. Keys are the paths as given."""
    checked: dict[Path, Path] = {}
    for index, path in enumerate(paths):
        text = path.read_text(encoding="utf-8")
        expanded = expand_includes(text, source=str(path), kql_dir=path.parent)
        if expanded == text:
            checked[path] = path
            continue
        copy = workdir / f"{index:03d}-expanded-{path.name}"
        copy.write_text(expanded, encoding="utf-8")
        checked[copy] = path
    results = validate_kql_files(list(checked), schema=schema)
    return {checked[validated]: diagnostics for validated, diagnostics in results.items()}


def format_diagnostics(diagnostics: Iterable[KqlDiagnostic]) -> str:
    return "\n".join(str(d) for d in diagnostics)
