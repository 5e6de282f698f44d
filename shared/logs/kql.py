"""KQL query files: load one (expanding its includes), bind its `let` parameters safely.

Each file in shared/logs/kql/ opens with a comment header and declares its parameters as
`let <name> = <example>;` lines at the top, so it validates with Microsoft's parser. At run time
each parameter line's value is replaced by a literal we render ourselves: strings are escaped, so
a client-controlled value (a user id with quotes, backslashes, newlines or pipes) stays a value
and cannot change the query. tools/build_workbook.py binds the same lines to the workbook's time
range with the same binder (bind_parameters).

A block several queries need (the latest complete revision of the cost summaries) is written once,
in its own file between `// -- begin include` and `// -- end include`, and each user has the line
`// include: <file>` where the block belongs; read_query puts the block there before binding, so
Azure, the local stand-in and the workbook all run the expanded text. An included file is a query
of its own too (its parameter lines, the block, a last expression), so it validates and runs alone;
its parameters must be declared by the including file above the include line. Includes do not nest.
(Not a Log Analytics stored function: that would be workspace state deployed by Bicep apart from the
app's code, so a deployment could run new code on an old function, and the local stand-in would
have to be handed the definition separately; an include keeps the query text versioned with the
code and identical in Azure and the stand-in.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.errors import KqlFileError, KqlParameterError

KQL_DIR = Path(__file__).parent / "kql"

# A sequence of strings becomes a dynamic array literal (for `x in (param)` filters).
ParamValue = str | int | float | bool | datetime | timedelta | Sequence[str]

_LET_LINE = re.compile(r"^let\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*?);\s*$")
_INCLUDE_LINE = re.compile(r"^//\s*include:\s*(?P<name>\S+)\s*$")
_BEGIN_INCLUDE = "// -- begin include"
_END_INCLUDE = "// -- end include"


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
        elif "\ud800" <= char <= "\udfff":
            # A lone surrogate (JSON's "\ud800", a non-UTF-8 environment variable): the query is sent as
            # UTF-8, which cannot carry it.
            raise KqlParameterError(f"lone surrogate U+{ord(char):04X} cannot be passed in a KQL string")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


# KQL's long and timespan are 64-bit (a timespan counts 100 ns ticks): a value past them would wrap or fail.
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_TICKS_PER_MICROSECOND = 10


def kql_literal(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise KqlParameterError(f"datetime {value!r} has no time zone; pass an aware UTC datetime")
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise KqlParameterError(f"datetime {value!r} is outside 0001-01-01..9999-12-31 in UTC") from None
        # isoformat, not strftime: %Y writes year 999 as "999", which is no KQL datetime.
        return f"datetime({utc.replace(tzinfo=None).isoformat(timespec='microseconds')}Z)"
    if isinstance(value, timedelta):
        # Exactly, in ticks (100 ns): milliseconds from total_seconds() dropped the rest, and a parser may read
        # "86400000001microseconds" through a float.
        ticks = value // timedelta(microseconds=1) * _TICKS_PER_MICROSECOND
        if not _LONG_MIN <= ticks <= _LONG_MAX:
            raise KqlParameterError(f"timedelta {value!r} is outside KQL's timespan range")
        return f"{ticks}tick"
    if isinstance(value, int):
        if not _LONG_MIN <= value <= _LONG_MAX:
            raise KqlParameterError(f"{value} does not fit KQL's 64-bit long")
        return f"long({value})"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise KqlParameterError(f"{value!r} is not a finite number")
        return f"real({value!r})"
    if isinstance(value, str):
        return kql_string(value)
    return kql_string_array(value)


def kql_string_array(values: Sequence[str]) -> str:
    """A dynamic array literal of strings, each escaped as kql_string does."""
    if not all(isinstance(value, str) for value in values):
        raise KqlParameterError(f"only strings can be passed in a KQL array parameter, got {values!r}")
    return "dynamic([" + ", ".join(kql_string(value) for value in values) + "])"


def bind_parameters(text: str, values: Mapping[str, str], *, source: str = "<query>") -> str:
    """Replace the value of each top `let` parameter line named in `values` by that KQL text;
    every name in `values` must have its line."""
    lines = text.splitlines()
    seen: set[str] = set()
    for index, line in enumerate(lines):
        match = _LET_LINE.match(line.strip())
        if not match or match.group("name") not in values:
            continue
        name = match.group("name")
        lines[index] = f"let {name} = {values[name]};"
        seen.add(name)
    missing = sorted(set(values) - seen)
    if missing:
        raise KqlParameterError(f"{source}: no `let {missing[0]} = ...;` parameter line for {missing}")
    return "\n".join(lines)


def render_query(text: str, params: dict[str, ParamValue], *, source: str = "<query>") -> str:
    """Bind each top `let` parameter line to a safely rendered literal; every one given must be declared."""
    return bind_parameters(text, {name: kql_literal(value) for name, value in params.items()}, source=source)


def expand_includes(text: str, *, source: str = "<query>", kql_dir: Path = KQL_DIR) -> str:
    """Replace each `// include: <file>` line by the block of that file in `kql_dir` (see the module
    docstring); a text without include lines is returned unchanged."""
    lines = text.splitlines()
    if not any(_INCLUDE_LINE.match(line.strip()) for line in lines):
        return text
    expanded: list[str] = []
    for number, line in enumerate(lines, start=1):
        match = _INCLUDE_LINE.match(line.strip())
        if not match:
            expanded.append(line)
            continue
        name = match.group("name")
        where = f"{source}, line {number}"
        block, parameters = _included_block(kql_dir / name, where=where)
        declared = {found.group("name") for earlier in expanded if (found := _LET_LINE.match(earlier.strip()))}
        undeclared = sorted(parameters - declared)
        if undeclared:
            raise KqlFileError(
                f"{where}: {name} uses the parameters {undeclared}: declare `let {undeclared[0]} = ...;` above the "
                "include line"
            )
        # Marked, so a reader of the expanded query (workbook, portal) sees where the block comes from.
        expanded += [f"// -- {name} (included)", *block, f"// -- end of {name}"]
    return "\n".join(expanded)


def _included_block(path: Path, *, where: str) -> tuple[list[str], set[str]]:
    """The lines between the begin and end markers of `path`, and the parameters declared above them."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KqlFileError(f"{where}: cannot read the included file {path}: {exc}") from exc
    stripped = [line.strip() for line in lines]
    if stripped.count(_BEGIN_INCLUDE) != 1 or stripped.count(_END_INCLUDE) != 1:
        raise KqlFileError(f"{where}: {path} must have one `{_BEGIN_INCLUDE}` and one `{_END_INCLUDE}` line")
    begin, end = stripped.index(_BEGIN_INCLUDE), stripped.index(_END_INCLUDE)
    if end < begin:
        raise KqlFileError(f"{where}: {path}: `{_END_INCLUDE}` comes before `{_BEGIN_INCLUDE}`")
    block = lines[begin + 1 : end]
    nested = [number for number, line in enumerate(block, start=begin + 2) if _INCLUDE_LINE.match(line.strip())]
    if nested:
        raise KqlFileError(f"{where}: {path}, line {nested[0]}: an included block cannot include another file")
    parameters = {found.group("name") for line in stripped[:begin] if (found := _LET_LINE.match(line))}
    return block, parameters


def read_query(name: str, *, kql_dir: Path = KQL_DIR) -> str:
    """The text of query file `name` with its includes expanded, parameters not yet bound."""
    path = kql_dir / name
    return expand_includes(path.read_text(encoding="utf-8"), source=str(path), kql_dir=kql_dir)


def load_query(name: str, params: dict[str, ParamValue]) -> str:
    """Query file `name`, includes expanded, with every parameter in `params` bound."""
    return render_query(read_query(name), params, source=str(KQL_DIR / name))
