"""Column-wise data -> one compact JSON object text per row, as the Logs Ingestion API takes rows.

Summaries leave pandas column by column, and a run uploads hundreds of thousands of rows. Building
a dict per row and json.dumps-ing the lists costs a Python call per cell twice over; here each
column is encoded in one pass (numbers and booleans by their repr, each distinct string once) and
the row texts are joined from those pieces. The output is what json.dumps(row, separators=(",", ":"))
gives for the same row, and pure ASCII (non-ASCII characters escaped), so a row's length in
characters is its length in bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii  # json.dumps' own string encoder (C)
from typing import Any

_NONE = type(None)


def encode_rows(columns: Mapping[str, Sequence[Any]], constants: Mapping[str, Any] | None = None) -> list[str]:
    """One JSON object text per row: `constants` (the same in every row, encoded once) then
    `columns` (one value per row each; None is null)."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    if not lengths or lengths == {0}:
        return []
    encoded = {name: _column(name, values) for name, values in columns.items()}
    # One %-format per row (C-level) from the columns' texts: no per-cell concatenation in Python.
    # Member texts are escaped for %; each column's own spec (%d or %s) goes after its name.
    members = [_member(name, json.dumps(value, separators=(",", ":"), allow_nan=False)).replace("%", "%%")
               for name, value in (constants or {}).items()]
    members += [_member(name, "").replace("%", "%%") + spec for name, (spec, _) in encoded.items()]
    template = "{" + ",".join(members) + "}"
    return [template % row for row in zip(*(values for _, values in encoded.values()), strict=True)]


def _member(name: str, value_text: str) -> str:
    return json.dumps(name) + ":" + value_text


def _column(name: str, values: Sequence[Any]) -> tuple[str, Sequence[Any]]:
    """The column as a %-format and the values it formats: ints as they are (%d), others as texts (%s)."""
    kinds = set(map(type, values))
    kinds.discard(_NONE)
    if kinds == {int} and None not in values:
        return "%d", values
    if kinds == {int} or kinds == {float}:
        if kinds == {float} and not _all_finite(values):
            raise ValueError(f"column {name!r} holds NaN or infinity, which JSON cannot carry")
        # int.__repr__ and float.__repr__ are what json.dumps writes for them.
        if None not in values:
            return "%s", list(map(repr, values))
        return "%s", ["null" if value is None else repr(value) for value in values]
    if kinds == {bool}:
        text = {True: "true", False: "false", None: "null"}
        return "%s", list(map(text.__getitem__, values))
    if kinds == {str}:
        # Window starts, models, subscriptions, users repeat: encode each distinct string once.
        strings = {value: encode_basestring_ascii(value) for value in set(values) if value is not None}
        strings[None] = "null"
        return "%s", list(map(strings.__getitem__, values))
    return "%s", [json.dumps(value, separators=(",", ":"), allow_nan=False) for value in values]


def _all_finite(values: Sequence[float | None]) -> bool:
    present = [value for value in values if value is not None]
    # A sum is finite only when every term is (finite terms may overflow it: then look closer).
    return math.isfinite(sum(present)) or all(map(math.isfinite, present))
