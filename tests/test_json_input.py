"""The one reader of JSON input files: decoding, lines, duplicate keys, field checks, problems at once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.errors import InputError, InputFileError
from shared.json_input import (
    Invalid,
    Problems,
    boolean,
    choice,
    number,
    parse_json_text,
    path_of,
    read_json_file,
    share,
    show,
    text,
    whole,
)

DOCUMENT = """{
  "personas": [
    {"name": "a", "weight": 1},
    {
      "name": "b",
      "weight": "x",
      "share": 0.25
    }
  ],
  "models": {"gpt-4.1": {"price": 1e-6}}
}
"""


def _error(text_: str, source: str = "in.json") -> InputFileError:
    with pytest.raises(InputFileError) as caught:
        parse_json_text(text_, source, "input file")
    return caught.value


# --- reading ------------------------------------------------------------------------------------


def test_members_and_items_know_their_lines() -> None:
    root = parse_json_text(DOCUMENT, "in.json", "input file").root
    assert root.line == 1 and root.key_lines == {"personas": 2, "models": 10}
    personas = root["personas"]
    assert personas.line == 2 and personas.item_lines == [3, 4]
    assert personas[1].line == 4 and personas[1].key_lines == {"name": 5, "weight": 6, "share": 7}


def test_numbers_are_exact_never_floats() -> None:
    root = parse_json_text('{"a": 0.1, "b": 1e-6, "c": 3, "d": NaN, "e": -Infinity}', "in.json", "x").root
    assert root == {"a": Decimal("0.1"), "b": Decimal("0.000001"), "c": 3, "d": root["d"], "e": Decimal("-Infinity")}
    assert isinstance(root["c"], int) and root["d"].is_nan()


def test_file_with_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": "\xc3\xa9"}')
    document = read_json_file(path, "input file")
    assert document.root == {"a": "é"} and document.source == str(path)
    assert document.raw == path.read_bytes()


def test_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'{\n"a": "\xff"}')
    with pytest.raises(InputFileError) as caught:
        read_json_file(path, "input file")
    assert str(caught.value) == f"{path}: invalid input file:\n{path}:2: not UTF-8 text (byte 8)"


def test_syntax_error_names_line_and_column() -> None:
    error = _error('{\n  "a": 1,\n}')
    assert str(error) == (
        "in.json: invalid input file:\nin.json:3:1: not valid JSON: Expecting property name enclosed in double quotes"
    )
    [problem] = error.problems
    assert (problem.line, problem.column, problem.field) == (3, 1, "")


def test_missing_file_says_so_or_what_the_caller_says(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"nope\.json: cannot read the input file: No such file"):
        read_json_file(tmp_path / "nope.json", "input file")
    with pytest.raises(InputFileError, match=r"nope\.json: see the sample"):
        read_json_file(tmp_path / "nope.json", "input file", not_found="see the sample")


def test_duplicate_keys_are_refused_with_their_line_and_path() -> None:
    error = _error('{\n  "a": 1,\n  "m": {"x": [{"k": 1,\n    "k": 2}]},\n  "a": 3\n}')
    assert [str(problem) for problem in error.problems] == [
        "in.json:5: a: given more than once (JSON would silently keep the last)",
        "in.json:4: m.x[0].k: given more than once (JSON would silently keep the last)",
    ]
    assert isinstance(error, InputError) and isinstance(error, ValueError)


def test_paths_and_shown_values_are_as_the_file_spells_them() -> None:
    assert path_of("", "personas") == "personas"
    assert path_of("personas", 2) == "personas[2]"
    assert path_of("models", "gpt-4.1") == 'models["gpt-4.1"]'
    assert path_of('models["gpt-4.1"]', "input") == 'models["gpt-4.1"].input'
    shown = [show(value) for value in ("x", None, True, Decimal("1.50"), 3, {}, [], "é" * 100)]
    assert shown[:7] == ['"x"', "null", "true", "1.50", "3", "an object", "a list"]
    assert len(shown[7]) == 80 and shown[7].endswith("...")


# --- value checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "good", "bad", "expected"),
    [
        (text, [(" a ", "a")], ["", "  ", 3, None], "a non-empty string"),
        (number(above=0), [(1, Decimal(1)), (Decimal("0.5"), Decimal("0.5"))], [0, -1, True, "1", Decimal("NaN")],
         "a number greater than 0"),
        (number(minimum=0), [(0, Decimal(0))], [-1, Decimal("-0.1"), Decimal("Infinity")], "a number, 0 or more"),
        (number(minimum=1, maximum=5), [(5, Decimal(5))], [6, Decimal("0.9")], "a number from 1 to 5"),
        (share, [(0, Decimal(0)), (1, Decimal(1))], [Decimal("1.01"), -1], "a number from 0 to 1"),
        (whole(minimum=1), [(1, 1)], [0, Decimal("1.5"), True, "2"], "a whole number, 1 or more"),
        (choice(("hour", "day")), [("day", "day")], ["week", 1, None], "one of hour, day"),
        (boolean, [(False, False)], [0, "true", None], "true or false"),
    ],
)  # fmt: skip
def test_checks_return_typed_values_or_say_what_they_expect(
    check: Any, good: list[tuple[Any, Any]], bad: list[Any], expected: str
) -> None:
    for value, result in good:
        assert check(value) == result and type(check(value)) is type(result)
    for value in bad:
        with pytest.raises(Invalid) as caught:
            check(value)
        assert caught.value.expected == expected


# --- reading fields; every problem at once ------------------------------------------------------


def test_every_problem_of_a_file_is_raised_at_once_with_file_line_and_field() -> None:
    document = parse_json_text(DOCUMENT, "personas.json", "persona file")
    problems = Problems(document.source, "persona file")
    top = problems.fields(document.root, "")
    read = []
    for path, line, raw in top.items("personas"):
        persona = problems.fields(raw, path, line)
        persona.unknown({"name", "weight"})
        read.append(
            (
                persona.get("name", text),
                persona.get("weight", number(above=0), Decimal(1), fallback=Decimal(0)),
                persona.get("user", text, "anonymous"),
                persona.get("deployment", text),
            )
        )
    assert read[0] == ("a", Decimal(1), "anonymous", None)
    assert read[1] == ("b", Decimal(0), "anonymous", None)
    with pytest.raises(InputFileError) as caught:
        problems.raise_if_any()
    assert str(caught.value).splitlines() == [
        "personas.json: invalid persona file:",
        "personas.json:3: personas[0].deployment: missing; expected a non-empty string",
        "personas.json:7: personas[1].share: unknown field; expected some of name, weight",
        'personas.json:6: personas[1].weight: expected a number greater than 0, got "x"',
        "personas.json:4: personas[1].deployment: missing; expected a non-empty string",
    ]
    assert caught.value.source == "personas.json" and len(caught.value.problems) == 4


def test_no_problems_raises_nothing() -> None:
    problems = Problems("in.json", "input file")
    assert problems.fields({"a": 1}, "").get("a", whole(minimum=0)) == 1
    assert not problems
    problems.raise_if_any()


def test_a_plain_dict_is_read_the_same_way_without_lines() -> None:
    problems = Problems("p.json", "persona file")
    fields = problems.fields({"weight": -1, "n": {"m": "x"}}, "personas[0]")
    fields.get("weight", number(minimum=0), expected="a weight >= 0")
    inner = fields.object("n")
    assert inner is not None
    inner.get("m", choice(("y",)))
    fields.object("o", expected="an object of things")
    assert fields.items("list") == []
    assert [str(problem) for problem in problems.items] == [
        "p.json: personas[0].weight: expected a weight >= 0, got -1",
        'p.json: personas[0].n.m: expected one of y, got "x"',
        "p.json: personas[0].o: missing; expected an object of things",
        "p.json: personas[0].list: missing; expected a non-empty list",
    ]


def test_lone_values_and_caller_worded_problems() -> None:
    root = parse_json_text('{"to": [\n "a@example.com",\n 4]}', "r.json", "rules").root
    problems = Problems("r.json", "rules")
    top = problems.fields(root, "")
    checked = [problems.value(path, line, value, text) for path, line, value in top.items("to")]
    top.problem("to", "is odd")
    top.bad("to", "one address")
    assert checked == ["a@example.com", None]
    assert [str(problem) for problem in problems.items] == [
        "r.json:3: to[1]: expected a non-empty string, got 4",
        "r.json:1: to: is odd",
        "r.json:1: to: expected one address, got a list",
    ]
    with pytest.raises(InputFileError, match=r"r\.json:1: stop here"):
        problems.fail(1, "", "stop here")
