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
    head = "".join(_piece(name, value) + "," for name, value in (constants or {}).items())
    pieces = [_column_pieces(name, values) for name, values in columns.items()]
    return ["{" + head + ",".join(parts) + "}" for parts in zip(*pieces, strict=True)]


def _piece(name: str, value: Any) -> str:
    return json.dumps(name) + ":" + json.dumps(value, separators=(",", ":"), allow_nan=False)


def _column_pieces(name: str, values: Sequence[Any]) -> list[str]:
    """'"name":value' for every value of the column."""
    prefix = json.dumps(name) + ":"
    null = prefix + "null"
    kinds = set(map(type, values))
    kinds.discard(_NONE)
    if kinds == {int} or kinds == {float}:
        if kinds == {float} and not _all_finite(values):
            raise ValueError(f"column {name!r} holds NaN or infinity, which JSON cannot carry")
        # int.__repr__ and float.__repr__ are what json.dumps writes for them.
        if None not in values:
            return list(map(prefix.__add__, map(repr, values)))
        return [null if value is None else prefix + repr(value) for value in values]
    if kinds == {bool}:
        text = {True: prefix + "true", False: prefix + "false", None: null}
        return [text[value] for value in values]
    if kinds == {str}:
        # Window starts, models, subscriptions, users repeat: encode each distinct string once.
        encoded = {value: prefix + encode_basestring_ascii(value) for value in set(values) if value is not None}
        encoded[None] = null
        return list(map(encoded.__getitem__, values))
    return [prefix + json.dumps(value, separators=(",", ":"), allow_nan=False) for value in values]


def _all_finite(values: Sequence[float | None]) -> bool:
    present = [value for value in values if value is not None]
    # A sum is finite only when every term is (finite terms may overflow it: then look closer).
    return math.isfinite(sum(present)) or all(map(math.isfinite, present))
