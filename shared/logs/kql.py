"""KQL query files: load one, bind its `let` parameters safely.

Each file in shared/logs/kql/ opens with a comment header and declares its parameters as
`let <name> = <example>;` lines at the top, so the file runs as-is in the portal and validates
with Microsoft's parser. At run time each parameter line's value is replaced by a literal we
render ourselves: strings are escaped, so a client-controlled value (a user id with quotes,
backslashes, newlines or pipes) stays a value and cannot change the query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.errors import KqlParameterError

KQL_DIR = Path(__file__).parent / "kql"

# A sequence of strings becomes a dynamic array literal (for `x in (param)` filters).
ParamValue = str | int | float | bool | datetime | timedelta | Sequence[str]

_LET_LINE = re.compile(r"^let\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*?);\s*$")


def kql_string(value: str) -> str:
    """A KQL double-quoted string literal that denotes exactly ``value``."""
    escaped = []
    for char in value:
        if char == "\\":
            escaped.append("\\\\")
        elif char == '"':
            escaped.append('\\"')
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20:
            raise KqlParameterError(f"control character U+{ord(char):04X} cannot be passed in a KQL string")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def kql_literal(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise KqlParameterError(f"datetime {value!r} has no time zone; pass an aware UTC datetime")
        return f"datetime({value.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds() * 1000)}ms"
    if isinstance(value, int):
        return f"long({value})"
    if isinstance(value, float):
        return f"real({value!r})"
    if isinstance(value, str):
        return kql_string(value)
    return kql_string_array(value)


def kql_string_array(values: Sequence[str]) -> str:
    """A dynamic array literal of strings, each escaped as kql_string does."""
    if not all(isinstance(value, str) for value in values):
        raise KqlParameterError(f"only strings can be passed in a KQL array parameter, got {values!r}")
    return "dynamic([" + ", ".join(kql_string(value) for value in values) + "])"


def render_query(text: str, params: dict[str, ParamValue], *, source: str = "<query>") -> str:
    """Replace the value of each top `let` parameter line; every declared one must be given."""
    lines = text.splitlines()
    seen: set[str] = set()
    for index, line in enumerate(lines):
        match = _LET_LINE.match(line.strip())
        if not match or match.group("name") not in params:
            continue
        name = match.group("name")
        lines[index] = f"let {name} = {kql_literal(params[name])};"
        seen.add(name)
    missing = sorted(set(params) - seen)
    if missing:
        raise KqlParameterError(f"{source}: no `let {missing[0]} = ...;` parameter line for {missing}")
    return "\n".join(lines)


def load_query(name: str, params: dict[str, ParamValue]) -> str:
    path = KQL_DIR / name
    return render_query(path.read_text(encoding="utf-8"), params, source=str(path))
