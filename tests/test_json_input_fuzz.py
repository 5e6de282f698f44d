"""Fuzz: the one JSON reader takes any bytes and any JSON text: it gives back exactly the value written, or
the documented InputFileError naming the file and the line (and field) of what it refuses."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.errors import InputFileError
from shared.json_input import parse_json_text, read_json_file
from tests.support.fuzz import json_values

SOURCE = "input.json"


def _canonical(value: Any) -> Any:
    """Numbers as the text JSON writes them (the reader keeps them exact, as Decimal or int)."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float | Decimal):
        return "number " + str(Decimal(repr(value)) if isinstance(value, float) else value).replace("Infinity", "inf")
    if isinstance(value, dict):
        return {key: _canonical(member) for key, member in value.items()}
    return [_canonical(item) for item in value]


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(key) or _has_lone_surrogate(member) for key, member in value.items())
    return isinstance(value, list) and any(_has_lone_surrogate(item) for item in value)


@given(json_values, st.booleans())
@example({"name": "caf\ud800"}, True)  # JSON's unpaired "\ud800": read as a lone surrogate before
def test_any_json_value_reads_back_exactly_or_its_lone_surrogates_are_refused(value: Any, indent: bool) -> None:
    text = json.dumps(value, indent=2 if indent else None)
    try:
        document = parse_json_text(text, SOURCE, "input")
    except InputFileError as error:
        assert _has_lone_surrogate(value)
        assert all(problem.line is not None and "lone surrogate" in problem.message for problem in error.problems)
        return
    assert not _has_lone_surrogate(value)
    assert _canonical(document.root) == _canonical(value)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-json")


@given(st.binary(max_size=200) | st.text(max_size=60).map(lambda text: text.encode("utf-8")))
@example(b'{"a": "\xff"}')
@example(b"\xef\xbb\xbf{}")  # a BOM
def test_any_bytes_read_or_are_refused_naming_file_and_line(folder: Path, raw: bytes) -> None:
    path = folder / "input.json"
    path.write_bytes(raw)
    try:
        read_json_file(path, "input")
    except InputFileError as error:
        assert error.source == str(path) and all(problem.line is not None for problem in error.problems)
        assert str(error).startswith(f"{path}: invalid input:\n{path}:")
