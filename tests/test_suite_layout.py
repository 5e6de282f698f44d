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


def test_one_root_and_helpers_only_in_support() -> None:
    """The repository root is resolved once (tests/__init__.py); every module under tests/ that is not a
    test, a conftest or a package marker lives in tests/support/."""
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if "fixtures" in path.parts:
            continue
        where = path.relative_to(ROOT)
        own_path = "Path(" + "__file__)" in path.read_text(encoding="utf-8")  # split: this file is no offender
        if own_path and path.name != "__init__.py":
            offenders.append(f"{where} resolves a path from its own file; use `from tests import ROOT`")
        helper = path.name not in ("__init__.py", "conftest.py") and not path.name.startswith("test_")
        if helper and path.parent != TESTS / "support":
            offenders.append(f"{where} is a helper outside tests/support/")
    assert not offenders, "\n".join(offenders)


def test_test_folders_mirror_the_packages() -> None:
    """tests/<folder> is the tests of shared/<folder> (or of standins/, infra/); support/ holds helpers."""
    folders = {path.name for path in TESTS.iterdir() if path.is_dir() and path.name != "__pycache__"}
    packages = {path.name for path in (ROOT / "shared").iterdir() if (path / "__init__.py").exists()}
    assert folders - {"support", "standins", "infra"} == packages
