"""The import direction of shared/, as each package's __init__ docstring declares it ("May import: ...").

The docstrings are the map a newcomer reads; this test keeps them true. traffic/ and costs/ never meet,
alerts/ reads costs only through shared.costs.outputs, and nothing in shared/ imports the stand-ins.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

SHARED = ROOT / "shared"
PACKAGES = sorted(path.parent.name for path in SHARED.glob("*/__init__.py"))


def _imports(path: Path) -> set[str]:
    """Every module the file imports: at the top, inside functions or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _declared(package: str) -> tuple[set[str], str]:
    """What the package's docstring says it may import (dotted prefixes), and the docstring."""
    doc = ast.get_docstring(ast.parse((SHARED / package / "__init__.py").read_text(encoding="utf-8"))) or ""
    match = re.search(r"May import:(.*?)\.(\s|$)", doc, re.S)
    assert match, f"shared/{package}/__init__.py: the docstring has no 'May import: ...' sentence"
    return set(re.findall(r"shared(?:\.\w+)+", match.group(1))), doc


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_its_docstring_declares(package: str) -> None:
    allowed, _ = _declared(package)
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (SHARED / package).rglob("*.py")
        for module in _imports(path)
        if module.startswith("shared.")
        and not module.startswith(f"shared.{package}")
        and not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed)
    )
    assert wrong == [], f"not declared in shared/{package}/__init__.py: " + "; ".join(wrong)


@pytest.mark.parametrize(
    ("package", "never"),
    [
        ("traffic", ("shared.costs", "shared.alerts", "shared.email")),
        ("costs", ("shared.traffic", "shared.alerts", "shared.email")),
        ("logs", ("shared.traffic", "shared.costs", "shared.alerts", "shared.email")),
        # email/ lays out what alerts/digest.py decides: importing alerts back would be a cycle.
        ("email", ("shared.traffic", "shared.costs", "shared.logs", "shared.alerts")),
    ],
)
def test_the_declarations_keep_the_flow_one_way(package: str, never: tuple[str, ...]) -> None:
    # The rule itself, so that widening a docstring cannot quietly widen the rule.
    allowed, _ = _declared(package)
    assert sorted(prefix for prefix in allowed if prefix.startswith(never)) == []


def test_alerts_read_costs_only_through_its_outputs() -> None:
    allowed, _ = _declared("alerts")
    assert sorted(prefix for prefix in allowed if prefix.startswith("shared.costs")) == ["shared.costs.outputs"]


def test_nothing_in_shared_imports_the_stand_ins_or_the_tests() -> None:
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in SHARED.rglob("*.py")
        for module in _imports(path)
        if module.split(".")[0] in ("standins", "tests", "tools", "bench")
    )
    assert wrong == []


def test_costs_outputs_are_light_to_import() -> None:
    code = "import sys, shared.costs.outputs; assert not {'pandas', 'numpy', 'azure'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_config_is_the_only_reader_of_the_environment() -> None:
    # function_app.py hands os.environ to load_settings; below it, nothing reads the environment.
    reads = re.compile(r"\bos\.environ\b|\bgetenv\b|\bfrom os import\b")
    readers = [str(path.relative_to(ROOT)) for path in SHARED.rglob("*.py") if reads.search(path.read_text("utf-8"))]
    assert readers == []
