"""The suite's own layout: fixtures come from conftest.py and helpers from non-test modules, so no test
module imports another (which made ruff see fixture parameters as redefinitions: `noqa: F811`)."""

from __future__ import annotations

import ast

from tests import ROOT

TESTS = ROOT / "tests"


def _imported_modules(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_no_test_module_imports_another_and_no_redefinition_is_silenced() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        imported_tests = [
            name for name in _imported_modules(ast.parse(text))
            if name.startswith("tests.") and name.rpartition(".")[2].startswith("test_")
        ]  # fmt: skip
        offenders += [f"{where} imports {name}" for name in imported_tests]
        if "F811" in text and path != TESTS / "test_suite_layout.py":
            offenders.append(f"{where} silences F811")
    assert not offenders, "\n".join(offenders)
