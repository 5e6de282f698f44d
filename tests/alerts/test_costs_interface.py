"""Alerts read costs through one named interface, shared/costs/outputs.py, and costs never read alerts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests import ROOT

SHARED = ROOT / "shared"
INTERFACE = "shared.costs.outputs"
# Until shared/money.py holds round_money, the findings format money with costs' pricing helpers;
# once it exists this exception lapses by itself and the rule is strict.
PENDING_MONEY_MOVE = (
    set() if (SHARED / "money.py").exists() else {("shared/alerts/findings.py", "shared.costs.pricing")}
)


def _imports(path: Path) -> set[str]:
    """Every module the file imports, at the top, inside functions or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _files(package: str) -> list[Path]:
    return sorted((SHARED / package).rglob("*.py"))


def test_alerts_and_email_import_nothing_of_costs_but_its_outputs() -> None:
    wrong = [
        (path.relative_to(ROOT).as_posix(), module)
        for path in _files("alerts") + _files("email")
        for module in sorted(_imports(path))
        if module.startswith("shared.costs") and module != INTERFACE
    ]
    assert set(wrong) <= PENDING_MONEY_MOVE, wrong


def test_costs_never_imports_alerts_or_email() -> None:
    wrong = [
        (path.relative_to(ROOT).as_posix(), module)
        for path in _files("costs")
        for module in sorted(_imports(path))
        if module.startswith(("shared.alerts", "shared.email"))
    ]
    assert wrong == []


def test_the_interface_is_light_to_import() -> None:
    code = f"import sys, {INTERFACE}; assert not {{'pandas', 'numpy', 'azure'}} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
