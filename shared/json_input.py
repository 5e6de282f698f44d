"""One way to read a JSON input file: personas, alert rules, price table, deployment map.

    document = read_json_file(path, "persona file")     # decode, parse, refuse duplicate keys
    problems = Problems(document.source, "persona file")
    top = problems.fields(document.root, "")
    for path, line, raw in top.items("personas"):        # "personas[0]", its line, its value
        persona = problems.fields(raw, path, line)
        weight = persona.get("weight", number(minimum=0), 1)  # a bad value: one problem, with its line
    problems.raise_if_any()                              # every problem at once

Reading: UTF-8 (a BOM is allowed: Windows editors write one), JSON with numbers kept exact (a
fraction or NaN/Infinity becomes a Decimal, never a float, so a price is never rounded on the way
in and a non-finite value is named by the field check instead of failing the parse), objects and
arrays that remember the line of each member, and a key given twice refused with its line (json.loads
would silently keep the last one).

Messages: one line per problem, `<file>:<line>: <field path>: <what is wrong>`, the path in the
jq style the file is read with (`personas[2].weight`, `models["gpt-4.1"][0].prices.input`):
    personas.json:12: personas[2].weight: expected a number, 0 or more, got "x"
All problems of a file are raised at once, as one InputFileError (shared/errors.py), so one round
of edits fixes them. A value read from a plain dict (a caller that parsed it itself) has no lines;
its messages are `<file>: <field path>: ...`.

The value checks (`text`, `number`, `whole`, `choice`, `boolean`, `share`, `email_address`; a caller's own is a
Check too) are pure: one value in, the value typed out, or Invalid(expected). They know nothing of
files, so shared/config.py can run the same ones on a setting's parsed text and word the message
with the setting's name. Stdlib only.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar

from shared.errors import FileProblem, InputError, InputFileError

T = TypeVar("T")

# --- the document ----------------------------------------------------------------------------


class JsonObject(dict[str, Any]):
    """A JSON object that knows its line and the line where each member's value starts."""

    line: int | None = None
    key_lines: dict[str, int]
    duplicates: tuple[tuple[str, int], ...] = ()


class JsonArray(list[Any]):
    """A JSON array that knows its line and the line where each item starts."""

    line: int | None = None
    item_lines: list[int]


@dataclass(frozen=True)
class JsonDocument:
    """A parsed input file: its name for messages, its text and bytes, and the root value."""

    source: str
    text: str
    raw: bytes  # as read: a version hash is taken of these
    root: Any


def read_json_file(path: Path, what: str, *, not_found: str | None = None) -> JsonDocument:
    """Read and parse `path`; InputFileError naming the file if it cannot be read, decoded or parsed.

    `what` names the file in messages ("persona file"); `not_found`, when given, replaces the
    generic message for a missing file (say where the sample is).
    """
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as error:
        message = not_found or f"cannot read the {what}: {error.strerror or error}"
        raise InputFileError(source, what, [FileProblem(source, None, "", message)]) from None
    except OSError as error:
        problem = FileProblem(source, None, "", f"cannot read the {what}: {error.strerror or error}")
        raise InputFileError(source, what, [problem]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        problem = FileProblem(source, line, "", f"not UTF-8 text (byte {error.start})")
        raise InputFileError(source, what, [problem]) from None
    return parse_json_text(text, source, what, raw=raw)


def parse_json_text(text: str, source: str, what: str, *, raw: bytes | None = None) -> JsonDocument:
    """Parse JSON text as read_json_file does (for callers that hold the text already)."""
    decoder = _LocatingDecoder(text)
    try:
        root = decoder.decode(text)
    except json.JSONDecodeError as error:
        problem = FileProblem(source, error.lineno, "", f"not valid JSON: {error.msg}", column=error.colno)
        raise InputFileError(source, what, [problem]) from None
    duplicates = [
        FileProblem(source, line, path_of(path, key), "given more than once (JSON would silently keep the last)")
        for path, obj in _objects(root, "")
        for key, line in obj.duplicates
    ]
    # JSON's "\ud800" escape decodes to a lone surrogate: no text, and no UTF-8 header, query or email can
    # carry it later, so it is refused here with its field rather than failing a run far from the file.
    not_text = [
        FileProblem(source, line, path, f"{show(value)} holds a lone surrogate (an unpaired \\u escape); expected text")
        for path, line, value in _strings(root, "", getattr(root, "line", 1))
        if _LONE_SURROGATE.search(value)
    ]
    if duplicates or not_text:
        raise InputFileError(source, what, duplicates + not_text)
    return JsonDocument(source, text, text.encode("utf-8") if raw is None else raw, root)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _strings(value: Any, path: str, line: int | None) -> Iterator[tuple[str, int | None, str]]:
    """Every string of a parsed document, object keys included, with its path and line."""
    if isinstance(value, str):
        yield path, line, value
    elif isinstance(value, JsonObject):
        for key, member in value.items():
            member_line = value.key_lines.get(key, line)
            yield path_of(path, key), member_line, key
            yield from _strings(member, path_of(path, key), member_line)
    elif isinstance(value, JsonArray):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]", value.item_lines[index] if value.item_lines else line)


class _LocatingDecoder(json.JSONDecoder):
    """json's own pure-Python scanner with object and array parsing wrapped to record lines.

    The wrappers hand the stock JSONObject / JSONArray a scan_once that notes where each value
    starts, so the grammar and its error messages stay json's.
    """

    def __init__(self, text: str) -> None:
        super().__init__(parse_float=Decimal, parse_constant=Decimal)
        self._newlines = [match.start() for match in re.finditer("\n", text)]
        self.parse_object = self._object
        self.parse_array = self._array
        # The C scanner calls its own object parser; the Python one calls ours.
        self.scan_once = json.scanner.py_make_scanner(self)  # type: ignore[attr-defined]

    def _line(self, position: int) -> int:
        return bisect.bisect_left(self._newlines, position) + 1

    def _object(
        self,
        s_and_end: tuple[str, int],
        strict: bool,
        scan_once: Callable[[str, int], tuple[Any, int]],
        object_hook: Any,
        object_pairs_hook: Any,
        memo: dict[str, str] | None = None,
    ) -> tuple[JsonObject, int]:
        starts: list[int] = []

        def recording(string: str, index: int) -> tuple[Any, int]:
            starts.append(index)
            return scan_once(string, index)

        def build(pairs: list[tuple[str, Any]]) -> JsonObject:
            obj = JsonObject(pairs)
            obj.line = self._line(s_and_end[1] - 1)
            obj.key_lines = {}
            duplicates: list[tuple[str, int]] = []
            for (key, _), start in zip(pairs, starts, strict=True):
                line = self._line(start)
                if key in obj.key_lines:
                    duplicates.append((key, line))
                else:
                    obj.key_lines[key] = line
            obj.duplicates = tuple(duplicates)
            return obj

        result: tuple[JsonObject, int] = json.decoder.JSONObject(  # type: ignore[attr-defined]
            s_and_end, strict, recording, None, build, memo
        )
        return result

    def _array(
        self, s_and_end: tuple[str, int], scan_once: Callable[[str, int], tuple[Any, int]]
    ) -> tuple[JsonArray, int]:
        starts: list[int] = []

        def recording(string: str, index: int) -> tuple[Any, int]:
            starts.append(index)
            return scan_once(string, index)

        values, end = json.decoder.JSONArray(s_and_end, recording)  # type: ignore[attr-defined]
        array = JsonArray(values)
        array.line = self._line(s_and_end[1] - 1)
        array.item_lines = [self._line(start) for start in starts[: len(values)]]
        return array, end


def _objects(value: Any, path: str) -> Iterator[tuple[str, JsonObject]]:
    if isinstance(value, JsonObject):
        yield path, value
        for key, member in value.items():
            yield from _objects(member, path_of(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _objects(item, f"{path}[{index}]")


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def path_of(path: str, key: str | int) -> str:
    """The jq-style path of a member: `a.b`, `a["gpt-4.1"]`, `a[2]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def show(value: Any) -> str:
    """A value as the file spells it (JSON), shortened: what "got ..." quotes."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    # A lone surrogate as JSON spells it, so the message itself can be printed and logged.
    text = _LONE_SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return text if len(text) <= 80 else text[:77] + "..."


# --- value checks: pure, shared with app settings ------------------------------------------------


class Invalid(InputError):
    """A value is not what a field wants; `expected` says what would be. Raised by a Check and caught
    where the value is read (Fields, load_settings), which report it with the file or setting."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


class Check(Generic[T]):
    """A pure check of one value: `check(value)` is the value, typed, or raises Invalid(check.expected).

    `read` returns the typed value, or None to refuse it (it may also raise Invalid itself, to say
    something more specific).
    """

    def __init__(self, expected: str, read: Callable[[Any], T | None]) -> None:
        self.expected = expected
        self._read = read

    def __call__(self, value: Any) -> T:
        result = self._read(value)
        if result is None:
            raise Invalid(self.expected)
        return result


def _bounds(minimum: Decimal | int | None, maximum: Decimal | int | None, above: Decimal | int | None) -> str:
    """The bounds in words, as they follow "a number" (the same words the app settings use)."""
    if above is not None:
        return f" greater than {above}"
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f", {minimum} or more"
    return f", {maximum} or less" if maximum is not None else ""


def number(
    *,
    minimum: Decimal | int | None = None,
    maximum: Decimal | int | None = None,
    above: Decimal | int | None = None,
) -> Check[Decimal]:
    """A finite JSON number (not a bool) within the bounds, as an exact Decimal."""

    def read(value: Any) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return None
        result = Decimal(value)
        if (
            not result.is_finite()
            or (minimum is not None and result < minimum)
            or (maximum is not None and result > maximum)
            or (above is not None and result <= above)
        ):
            return None
        return result

    return Check("a number" + _bounds(minimum, maximum, above), read)


def whole(*, minimum: int | None = None, maximum: int | None = None, above: int | None = None) -> Check[int]:
    """A whole JSON number (2, not 2.0 or true) within the bounds."""

    def read(value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        if (
            (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
            or (above is not None and value <= above)
        ):
            return None
        return value

    return Check("a whole number" + _bounds(minimum, maximum, above), read)


def choice(options: Sequence[str]) -> Check[str]:
    """One of `options`, exactly."""
    return Check("one of " + ", ".join(options), lambda value: value if value in options else None)


# A non-empty string, surrounding blanks removed.
text: Check[str] = Check(
    "a non-empty string", lambda value: (value.strip() or None) if isinstance(value, str) else None
)
# Any string, empty included (descriptions, notes).
any_text: Check[str] = Check("a text", lambda value: value if isinstance(value, str) else None)
boolean: Check[bool] = Check("true or false", lambda value: value if isinstance(value, bool) else None)
share = number(minimum=0, maximum=1)
# A deliberately strict address (alert recipients, the sender): one @, no spaces, angle brackets or line
# breaks, which would add a header or a recipient; a dotless domain is allowed (the local outbox's
# localhost). fullmatch: `$` also matches before a final newline.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")
email_address: Check[str] = Check(
    "an email address (one @, no spaces or angle brackets)",
    lambda value: value if isinstance(value, str) and _ADDRESS.fullmatch(value) else None,
)


# --- problems, and reading objects field by field ------------------------------------------------

REQUIRED: Any = object()  # the `default` of a field that must be given


class Problems:
    """Collects every problem of one file; raise_if_any raises them together as one InputFileError."""

    def __init__(self, source: str, what: str) -> None:
        self.source = source
        self.what = what
        self.items: list[FileProblem] = []

    def add(self, line: int | None, field: str, message: str) -> None:
        self.items.append(FileProblem(self.source, line, field, message))

    def fail(self, line: int | None, field: str, message: str) -> NoReturn:
        """Add a problem that stops the reading (nothing more can be checked) and raise them all."""
        self.add(line, field, message)
        self.raise_if_any()
        raise AssertionError("unreachable")

    def value(
        self, path: str, line: int | None, value: Any, check: Callable[[Any], T], *, expected: str | None = None
    ) -> T | None:
        """A lone value (an array item) checked; None, with a problem, when it is not what `check` wants."""
        try:
            return check(value)
        except Invalid as invalid:
            self.add(line, path, f"expected {expected or invalid.expected}, got {show(value)}")
            return None

    def raise_if_any(self) -> None:
        if self.items:
            raise InputFileError(self.source, self.what, self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def fields(self, value: Any, path: str, line: int | None = None) -> Fields:
        """Read `value` (an object) field by field; `path` and `line` locate it in the file."""
        return Fields(self, value, path, line)


class Fields:
    """Reads one JSON object; each bad field becomes one problem with its line, and a fallback value."""

    def __init__(self, problems: Problems, value: Any, path: str, line: int | None) -> None:
        self.problems = problems
        self.raw: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        self.path = path
        self.line = line if line is not None else getattr(value, "line", None)
        self.used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def line_of(self, key: str) -> int | None:
        lines = getattr(self.raw, "key_lines", None)
        return lines.get(key, self.line) if lines is not None else self.line

    def path_of(self, key: str) -> str:
        return path_of(self.path, key)

    def get(
        self,
        key: str,
        check: Callable[[Any], T],
        default: Any = REQUIRED,
        *,
        expected: str | None = None,
        fallback: Any = None,
    ) -> Any:
        """The checked value of `key`; its default when absent; `fallback` (after a problem) when bad.

        `expected` words what the field wants instead of the check's own wording.
        """
        self.used.add(key)
        if key not in self.raw:
            if default is REQUIRED:
                wanted = expected or getattr(check, "expected", "")
                self.problems.add(self.line, self.path_of(key), "missing" + (f"; expected {wanted}" if wanted else ""))
                return fallback
            return default
        try:
            return check(self.raw[key])
        except Invalid as invalid:
            self.bad(key, expected or invalid.expected)
            return fallback

    def optional(self, key: str, check: Callable[[Any], T], default: Any = None, *, expected: str | None = None) -> Any:
        """As get, for a field that may also be given as null: absent or null, it is `default`."""
        if self.raw.get(key) is None:
            self.used.add(key)
            return default
        return self.get(key, check, expected=expected)

    def bad(self, key: str, expected: str) -> None:
        """The value of `key` is not `expected` (a check across fields, say)."""
        self.problems.add(self.line_of(key), self.path_of(key), f"expected {expected}, got {show(self.raw.get(key))}")

    def problem(self, key: str, message: str) -> None:
        """Any other problem with the field `key` (message in the caller's words)."""
        self.problems.add(self.line_of(key), self.path_of(key), message)

    def unknown(self, allowed: set[str] | frozenset[str], kind: str = "") -> list[str]:
        """Report keys not in `allowed` (a misspelt key must not be silently ignored); returns them."""
        extra = sorted(set(self.raw) - set(allowed))
        listed = ", ".join(sorted(set(allowed) - {"_comment"}))
        for key in extra:
            self.problem(key, f"unknown field{' of ' + kind if kind else ''}; expected some of {listed}")
        return extra

    def object(self, key: str, *, expected: str = "an object", required: bool = True) -> Fields | None:
        """The member `key` as Fields; None (with a problem when required) if absent or not an object."""
        self.used.add(key)
        value = self.raw.get(key)
        if not isinstance(value, Mapping):
            if key in self.raw:
                self.bad(key, expected)
            elif required:
                self.problems.add(self.line, self.path_of(key), f"missing; expected {expected}")
            return None
        return Fields(self.problems, value, self.path_of(key), self.line_of(key))

    def items(self, key: str, *, expected: str = "a non-empty list") -> list[tuple[str, int | None, Any]]:
        """The items of the non-empty array `key` as (path, line, value); [] with a problem otherwise."""
        self.used.add(key)
        value = self.raw.get(key)
        if not isinstance(value, list) or not value:
            if key in self.raw:
                self.bad(key, expected)
            else:
                self.problems.add(self.line, self.path_of(key), f"missing; expected {expected}")
            return []
        return located_items(value, self.path_of(key), self.line_of(key))


def located_items(value: Sequence[Any], path: str, line: int | None) -> list[tuple[str, int | None, Any]]:
    """(path, line, item) of each item of an array; the array's line when it does not know its items'."""
    lines = getattr(value, "item_lines", None)
    return [(f"{path}[{index}]", lines[index] if lines else line, item) for index, item in enumerate(value)]
