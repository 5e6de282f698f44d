"""encode_rows writes, column by column, exactly what json.dumps writes row by row."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.logs.rows import encode_rows


def test_rows_are_what_json_dumps_writes() -> None:
    columns: dict[str, list[Any]] = {
        "WindowStart": ["2026-11-27T01:00:00.000000Z"] * 4,
        "UserId": ['alice "the" admin', "bob\\\n", "zoë 用户", None],
        "Tokens": [0, 2**62, -5, None],
        "Cost": [0.1 + 0.2, 1e-06, 12345.678901, None],
        "Unpriced": [False, True, None, False],
        "Nothing": [None] * 4,
        "Mixed": [1, "x", [1, {"a": None}], None],
        'quote"d': [1.5, 2.5, 3.5, 4.5],
    }
    texts = encode_rows(columns)
    names = list(columns)
    expected = [json.dumps(dict(zip(names, values, strict=True)), separators=(",", ":"))
                for values in zip(*columns.values(), strict=True)]
    assert texts == expected
    assert all(text.isascii() for text in texts)
    assert [json.loads(text)["Cost"] for text in texts] == columns["Cost"]


def test_bool_and_int_columns_do_not_share_encodings() -> None:
    texts = encode_rows({"b": [True, False], "n": [1, 0]})
    assert texts == ['{"b":true,"n":1}', '{"b":false,"n":0}']


def test_no_rows_and_bad_columns() -> None:
    assert encode_rows({}) == [] and encode_rows({"a": []}) == []
    with pytest.raises(ValueError, match="different lengths"):
        encode_rows({"a": [1], "b": [1, 2]})
    with pytest.raises(ValueError, match="'Cost' holds NaN"):
        encode_rows({"Cost": [1.0, float("nan")]})


def test_constants_lead_every_row() -> None:
    texts = encode_rows({"n": [1, None]}, constants={"Window": "2026-11-27T01:00:00Z", "Final": True, "Note": None})
    assert [json.loads(text) for text in texts] == [
        {"Window": "2026-11-27T01:00:00Z", "Final": True, "Note": None, "n": value} for value in (1, None)
    ]
    assert texts[0] == '{"Window":"2026-11-27T01:00:00Z","Final":true,"Note":null,"n":1}'


@pytest.mark.parametrize("values", [[1.0, float("inf")], [float("-inf"), None], [1e308, 1e308, float("nan")]])
def test_non_finite_reals_are_refused(values: list[float | None]) -> None:
    with pytest.raises(ValueError, match="NaN or infinity"):
        encode_rows({"Cost": values})


def test_huge_finite_reals_pass() -> None:
    assert encode_rows({"Cost": [1e308, 1e308]}) == ['{"Cost":1e+308}', '{"Cost":1e+308}']


def test_percent_signs_in_names_and_values_stay_literal() -> None:
    texts = encode_rows({"share %d": [1], "note": ["100% %s"]}, constants={"rate %": "5%"})
    assert texts == [json.dumps({"rate %": "5%", "share %d": 1, "note": "100% %s"}, separators=(",", ":"))]
