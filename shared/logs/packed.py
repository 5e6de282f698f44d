"""Packed query answers: one row per key carrying its time entries as a list, unpacked into columns here.

A query answering one row per key and time bucket repeats each key's strings in every bucket's row, and
azure-monitor-query turns every row into objects of its own (tens of microseconds each): at hundreds of
thousands of keys x tens of buckets that is most of a run, and gigabytes. So the queries that return many
buckets per key pack them, `make_list(pack_array(<time>, <numbers>...))` by key: each key crosses the wire
and the SDK once, and its entries are unpacked here, column by column. Log Analytics sends a dynamic cell
as its JSON text; a parsed list is taken as it is too. Readers: the costs usage query (windows per
deployment x subscription x user x API, shared/costs/query.py) and the alert usage query (buckets per model
x deployment x subscription x user x API x currency, shared/alerts/data.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from shared.errors import QueryError
from shared.windows import as_utc


@dataclass(frozen=True)
class Packing:
    """How a packed answer reads: its key columns, then one cell holding a list of entries."""

    what: str  # names the query in errors: "token usage query"
    keys: tuple[str, ...]  # the key columns, in the answer's order (the list cell comes after them)
    entry: tuple[str, ...]  # each entry's fields in order; the first is a date-time (the entry's start)
    noun: str  # what an entry is, in errors: "window", "bucket"

    @property
    def columns(self) -> tuple[str, ...]:
        """The unpacked columns: the entry's start, the keys, then the entry's other fields."""
        return (self.entry[0], *self.keys, *self.entry[1:])


@dataclass(frozen=True)
class Unpacked:
    """A packed answer taken apart: each key once with how many entries it packed, and the entries' fields."""

    packing: Packing
    keys: dict[str, list[Any]]  # one value per answer row, for each key column
    counts: list[int]  # entries per answer row
    fields: dict[str, list[Any]]  # one value per entry, for each entry field: starts as UTC datetimes

    def columns(self) -> dict[str, list[Any]]:
        """One value per entry x key in each of packing.columns, the keys repeated."""
        columns = dict(self.fields)
        for name, values in self.keys.items():
            columns[name] = list(chain.from_iterable(map(repeat, values, self.counts)))
        return {name: columns[name] for name in self.packing.columns}


def unpack(rows: Iterable[Iterable[Any]], packing: Packing) -> dict[str, list[Any]]:
    """One value per entry x key in each of packing.columns: starts as UTC datetimes, keys repeated, the
    other fields as sent. Raises QueryError naming the key of a cell that is no list of whole entries."""
    return unpack_keyed(rows, packing).columns()


def unpack_keyed(rows: Iterable[Iterable[Any]], packing: Packing) -> Unpacked:
    """The answer's keys once each and its entries' fields (for a caller that turns keys into codes, not one
    string per entry). Raises QueryError as unpack does."""
    keys: list[list[Any]] = [[] for _ in packing.keys]
    counts: list[int] = []
    width = len(packing.entry)
    fields: list[list[Any]] = [[] for _ in packing.entry]
    getters = [itemgetter(index) for index in range(width)]
    for row in rows:
        *key, cell = row
        parsed = json.loads(cell) if isinstance(cell, str) else cell
        if not isinstance(parsed, list):
            raise QueryError(f"{packing.what}: key {key} has {packing.noun}s {parsed!r}, expected a list")
        bad = next((entry for entry in parsed if type(entry) is not list or len(entry) != width), None)
        if bad is not None:
            raise QueryError(
                f"{packing.what}: key {key} has a {packing.noun} entry {bad!r}, expected [{', '.join(packing.entry)}]"
            )
        for column, value in zip(keys, key, strict=True):
            column.append(value)
        counts.append(len(parsed))
        # Field i of this key's entries in one C-level pass each; the parsed lists go when the row is done.
        for field, getter in zip(fields, getters, strict=True):
            field.extend(map(getter, parsed))
    # An answer repeats a few starts: parse each distinct one once.
    starts = {text: _utc(text, packing) for text in set(fields[0])}
    fields[0] = list(map(starts.__getitem__, fields[0]))
    return Unpacked(packing, dict(zip(packing.keys, keys, strict=True)), counts,
                    dict(zip(packing.entry, fields, strict=True)))  # fmt: skip


def _utc(text: Any, packing: Packing) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError as error:
        raise QueryError(f"{packing.what}: a {packing.noun} start {text!r} is not an ISO 8601 date-time") from error
    return as_utc(parsed)
