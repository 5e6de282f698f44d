"""Hypothesis strategies for the fuzz tests: hostile text, any JSON value, and one field of a valid
document replaced, removed or joined by an unknown one.

The example count is bounded by the settings profile tests/conftest.py loads ("ci", the default, runs in
`make test`); `--hypothesis-profile long` runs many more (README, Tests).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from shared.errors import InputFileError

# Pieces that break naive code: KQL and JSON quoting, line and header breaks (every character Python's
# str.splitlines or the email package treats as one), HTML, RFC 2047 encoded words, a BOM, a NUL, lone
# surrogates (what JSON's "\ud800" or a non-UTF-8 environment variable decodes to), bidi overrides.
HOSTILE_PIECES = (
    '"', "'", "\\", "`", "|", ";", "//", "/*", "*/", "\n", "\r\n", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x85",
    "\u2028", "\u2029", "\x00", "\x7f", "\ufeff", "\u202e", "\ud800", "\udfff", "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>", "&amp;", "&#0;", "]]>", "\r\nBcc: attacker@example.com", "\nSubject: x",
    "=?utf-8?q?Bcc:_x?=", "=?utf-8?b?QmNjOiB4?=", "let x = 1;", '" | take 0 //', "{{ 7*7 }}", "%s%n",
    "é", "名前", "🙂", " ", "",
)  # fmt: skip


def _joined(parts: list[str]) -> str:
    return "".join(parts)


# Any code point, lone surrogates too (st.characters() leaves them out).
_any_character = st.characters() | st.characters(categories=["Cs"])


# Text made of hostile pieces and arbitrary characters (surrogates included), short or very long.
hostile_text: st.SearchStrategy[str] = st.one_of(
    st.lists(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=8)), max_size=12).map(_joined),
    st.text(_any_character, max_size=40),
    st.builds(
        lambda piece, times: piece * times,
        st.sampled_from(HOSTILE_PIECES[:-1]) | st.text(min_size=1, max_size=4),
        st.integers(min_value=200, max_value=3000),
    ),
)

# Any JSON value as Python's json module writes it (NaN and Infinity included, which json.dumps emits and
# the project's reader takes as numbers to refuse by field); huge and tiny numbers, hostile strings.
json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e-300, 1e300, 10**30, 2**63, -(2**63) - 1]),
    hostile_text,
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) to a member of a JSON value, parents before children."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, member in value.items():
            found.append((*prefix, key))
            found += paths_of(member, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*prefix, index))
            found += paths_of(item, (*prefix, index))
    return found


@dataclass(frozen=True)
class Mutation:
    """What was done to the valid document: `kind` (replace, remove, add) at `path`."""

    kind: str
    path: tuple[Any, ...]
    value: Any = None

    def apply(self, document: Any) -> Any:
        changed = copy.deepcopy(document)
        parent = changed
        for step in self.path[:-1]:
            parent = parent[step]
        last = self.path[-1]
        if self.kind == "replace":
            parent[last] = self.value
        elif self.kind == "remove":
            del parent[last]
        else:  # add: an unknown key beside `last` (an object) or an extra item (an array)
            if isinstance(parent, dict):
                parent["unexpected field " + str(self.value)[:20]] = self.value
            else:
                parent.append(self.value)
        return changed


def mutations(document: Any) -> st.SearchStrategy[Mutation]:
    """One field of `document` (any depth) replaced by any JSON value, removed, or a sibling added."""
    return st.builds(
        Mutation,
        st.sampled_from(("replace", "replace", "replace", "remove", "add")),
        st.sampled_from(paths_of(document)),
        json_values,
    )


def json_text(document: Any) -> str:
    """The document as a file would hold it, one member a line (so problems have distinct lines); non-ASCII
    as \\u escapes, so a lone surrogate is written as JSON writes it."""
    return json.dumps(document, indent=2)


def loads(text: str) -> Any:
    """A JSON file as plain Python values (the valid sample a mutation starts from)."""
    parsed: Any = json.loads(text)
    return parsed


def refused_clearly(error: InputFileError, source: str) -> None:
    """The documented clear error: one InputFileError for the file, every problem on its own line with the
    file, the line and (except for the document as a whole) the field."""
    assert error.source == source and error.problems
    message = str(error)
    for problem in error.problems:
        assert problem.source == source
        assert problem.line is not None, f"no line: {problem}"
        assert problem.field or problem.line == 1, f"no field: {problem}"
        assert str(problem) in message
