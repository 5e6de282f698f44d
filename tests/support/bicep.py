"""Read the Bicep in infra/ offline with pycep-parser (a pure-Python Bicep parser).

The real Bicep compiler is a .NET binary that cannot be installed here, so the infra tests read
the parsed templates instead. pycep gives identifiers and string literals both as Python strings;
`identifier()` tells them apart by the names a template declares.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

from tests import ROOT

INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(path: Path) -> dict[str, Any]:
    template: dict[str, Any] = BicepParser().parse(file_path=path)
    return template


def app_module(name: str) -> dict[str, Any]:
    return parse(INFRA / "app" / f"{name}.bicep")


def declared_names(template: dict[str, Any]) -> set[str]:
    return {
        *template.get("parameters", {}),
        *template.get("variables", {}),
        *template.get("resources", {}),
        *template.get("modules", {}),
    }


def identifier(template: dict[str, Any], value: Any) -> str | None:
    """The declared name `value` refers to, or None when it is a literal."""
    return value if isinstance(value, str) and value in declared_names(template) else None


def accessor_path(node: Any) -> list[str]:
    """`a.b.c` as ["a", "b", "c"]; [] when node is not a plain property access chain."""
    if isinstance(node, str):
        return [node]
    operator = node.get("operator") if isinstance(node, dict) else None
    if not operator or operator.get("type") != "property_accessor":
        return []
    head = accessor_path(operator["operands"]["operand_1"])
    tail = accessor_path(operator["operands"]["operand_2"])
    return head + tail if head and tail else []


def function_call(node: Any, name: str) -> dict[str, Any] | None:
    """The parameters of a call to function `name` (pycep's snake_case name), else None."""
    if isinstance(node, dict) and isinstance(node.get("function"), dict) and node["function"].get("type") == name:
        parameters: dict[str, Any] = node["function"]["parameters"]
        return parameters
    return None


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template.get("resources", {}).items()
        if resource.get("type") == resource_type
    }


def resource_body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body; for a `[for ...]` or `if (...)` resource, the body it deploys."""
    config: dict[str, Any] = resource["config"]
    if ("loop_type" in config or "condition" in config) and "config" in config:
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def walk(node: Any) -> list[Any]:
    """Every nested value of a parsed template (depth first)."""
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def evaluate(template: dict[str, Any], node: Any, parameters: dict[str, Any]) -> Any:
    """The value of a parsed expression for the given parameter values (defaults otherwise).

    Covers what choosing a deployment mode takes: literals, parameters, variables, `==`, `!=`,
    `cond ? a : b`. A reference Bicep only knows at deploy time (`monitoring.outputs.x`) comes
    back as its access path, a tuple.
    """
    if isinstance(node, str):
        if node in template.get("parameters", {}):
            return parameters.get(node, template["parameters"][node].get("default"))
        if node in template.get("variables", {}):
            return evaluate(template, template["variables"][node]["value"], parameters)
        return node
    operator = node.get("operator") if isinstance(node, dict) else None
    if operator is None:
        return node
    operands = operator["operands"]
    kind = operator["type"]
    if kind in ("equals", "not_equals"):
        left, right = (evaluate(template, operands[side], parameters) for side in ("operand_1", "operand_2"))
        return (left == right) == (kind == "equals")
    if kind == "conditional":
        branch = "true_value" if evaluate(template, operands["condition"], parameters) else "false_value"
        return evaluate(template, operands[branch], parameters)
    if kind == "property_accessor":
        return tuple(accessor_path(node))
    raise NotImplementedError(f"evaluate: operator {kind}")
