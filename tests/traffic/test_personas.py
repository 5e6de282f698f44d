"""Persona file: the shipped sample loads; every bad input names the file, persona, field, expectation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.errors import InputFileError
from shared.traffic.personas import Persona, key_settings, load_personas, parse_personas
from tests import ROOT

SAMPLE = ROOT / "shared" / "traffic" / "personas.sample.json"
KEYS = {
    "TRAFFIC_KEY_TEAM_SUPPORT": "k-support",
    "TRAFFIC_KEY_TEAM_RESEARCH": "k-research",
    "TRAFFIC_KEY_TEAM_BATCH": "k-batch",
}


def _persona(**overrides: Any) -> dict[str, Any]:
    persona: dict[str, Any] = {
        "name": "p1",
        "subscription": "team-a",
        "subscription_key_setting": "KEY_A",
        "user_id": "u1",
        "deployment": "gpt-4o-mini",
        "prompt_tokens": {"min": 50, "max": 100},
        "max_tokens": 20,
        "stream_share": 0.5,
        "include_usage_share": 0.5,
        "prefix_share": 0.2,
        "weight": 1,
    }
    persona.update(overrides)
    return persona


def _error(personas: list[Any], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(InputFileError) as caught:
        parse_personas({"personas": personas}, {"KEY_A": "secret"} if environ is None else environ, "p.json")
    return str(caught.value)


def test_sample_file_loads_and_resolves_keys_without_exposing_them() -> None:
    personas = load_personas(SAMPLE, KEYS)
    assert [p.name for p in personas] == [
        "support-bot",
        "research-analyst",
        "batch-summarizer",
        "legacy-widget",
    ]
    support = personas[0]
    assert support.subscription_key == "k-support" and support.subscription == "team-support"
    assert support.prompt_tokens.distribution == "log_uniform"
    assert "k-support" not in repr(support)
    # Defaults: no streaming, usage asked for when streaming, no shared prefix.
    batch = personas[2]
    assert (batch.stream_share, batch.include_usage_share) == (0.0, 1.0)
    assert personas[3].prefix_share == 0.0


def test_valid_persona_round_trips() -> None:
    (persona,) = parse_personas({"personas": [_persona()]}, {"KEY_A": " secret "}, "p.json")
    assert isinstance(persona, Persona)
    assert persona.subscription_key == "secret"
    assert (persona.prompt_tokens.min_tokens, persona.prompt_tokens.max_tokens) == (50, 100)


def test_missing_file_and_bad_json_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"missing\.json: persona file not found"):
        load_personas(tmp_path / "missing.json", {})
    broken = tmp_path / "broken.json"
    broken.write_text('{"personas": [\n  {"name": "x",}\n]}', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"broken\.json:2:\d+: not valid JSON"):
        load_personas(broken, {})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({}, "missing; expected a non-empty array"),
        ({"personas": []}, "expected a non-empty array of persona objects, got a list"),
        ({"personas": {}}, "expected a non-empty array of persona objects, got an object"),
        ([], 'expected an object {"personas": [...]}, got a list'),
    ],
)
def test_document_without_personas_is_refused(document: Any, problem: str) -> None:
    with pytest.raises(InputFileError, match=r"p\.json: personas: " + re.escape(problem)):
        parse_personas(document, {}, "p.json")


def test_unknown_and_empty_key_settings_are_named() -> None:
    message = _error(
        [
            _persona(),
            _persona(name="p2", subscription_key_setting="KEY_B"),
            _persona(name="p3", subscription_key_setting="KEY_EMPTY"),
        ],
        {"KEY_A": "x", "KEY_EMPTY": "  "},
    )
    assert "p.json: personas[1].subscription_key_setting: app setting KEY_B is not set" in message
    assert "p.json: personas[2].subscription_key_setting: app setting KEY_EMPTY is empty" in message
    assert "personas[0]" not in message


@pytest.mark.parametrize(
    ("overrides", "where", "expected"),
    [
        ({"stream_share": 1.5}, "personas[0].stream_share: ", "expected a number from 0 to 1, got 1.5"),
        ({"include_usage_share": -0.1}, "personas[0].include_usage_share", "from 0 to 1"),
        ({"prefix_share": "half"}, "personas[0].prefix_share: ", 'from 0 to 1, got "half"'),
        ({"prompt_tokens": {"min": -5, "max": 10}}, "personas[0].prompt_tokens.min: ", ">= 13 (the chat fr"),
        ({"prompt_tokens": {"min": -5, "max": 10}}, "personas[0].prompt_tokens.min: ", "got -5"),
        (
            {"prompt_tokens": {"min": 200, "max": 100}},
            "personas[0].prompt_tokens.max: ",
            "expected at least min (200), got 100",
        ),
        (
            {"prompt_tokens": {"min": 20, "max": 30, "distribution": "normal"}},
            "personas[0].prompt_tokens.distribution: ",
            'expected one of uniform, log_uniform, got "normal"',
        ),
        ({"prompt_tokens": 500}, "personas[0].prompt_tokens: ", "expected an object like {"),
        ({"prompt_tokens": 500}, "personas[0].prompt_tokens: ", "got 500"),
        ({"max_tokens": 0}, "personas[0].max_tokens: ", "expected a whole number of tokens >= 1, got 0"),
        ({"max_tokens": 2.5}, "personas[0].max_tokens: ", ">= 1, got 2.5"),
        ({"weight": -1}, "personas[0].weight: ", "expected a number from 0 to 1000000, got -1"),
        (
            {"reasoning_effort": "max"},
            "personas[0].reasoning_effort: ",
            'none, minimal, low, medium, high, xhigh, got "max"',
        ),
        ({"deployment": ""}, "personas[0].deployment: ", 'expected a non-empty string, got ""'),
        ({"colour": "blue"}, "personas[0].colour: unknown field", "expected some of"),
        ({"name": None}, "personas[0].name: ", "expected a non-empty string, got null"),
        (
            {"user_id": "caf\u00e9"},
            "personas[0].user_id: ",
            "visible ASCII characters (it is sent as the x-user-id HTTP header)",
        ),
    ],
)
def test_impossible_values_name_persona_field_and_expectation(
    overrides: dict[str, Any], where: str, expected: str
) -> None:
    message = _error([_persona(**overrides)])
    line = next(line for line in message.splitlines() if where in line)
    assert line.startswith("p.json: ") and expected in line


def test_problems_in_a_file_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "personas.json"
    personas = [_persona(), _persona(name="p2", weight="x")]
    path.write_text(json.dumps({"personas": personas}, indent=2), encoding="utf-8")
    with pytest.raises(InputFileError) as caught:
        load_personas(path, {"KEY_A": "secret"})
    lines = path.read_text(encoding="utf-8").splitlines()
    weight_line = next(number for number, line in enumerate(lines, 1) if '"weight": "x"' in line)
    expected = 'personas[1].weight: expected a number from 0 to 1000000, got "x"'
    assert f"{path}:{weight_line}: {expected}" in str(caught.value)


def test_zero_total_weight_and_duplicates_are_refused() -> None:
    message = _error([_persona(weight=0), _persona(name="p2", weight=0), _persona(name="p2", weight=0)])
    assert "personas[*].weight: all weights are 0" in message
    assert 'personas[2].name: "p2" used twice (first by personas[1])' in message


def test_all_problems_are_reported_at_once() -> None:
    message = _error([_persona(stream_share=2), "not an object", _persona(name="p2", max_tokens=-1)])
    assert len(message.splitlines()) == 4  # header + three problems
    assert 'personas[1]: expected an object, got "not an object"' in message


def test_sample_file_is_valid_json_with_comment() -> None:
    assert "_comment" in json.loads(SAMPLE.read_text(encoding="utf-8"))


def test_key_settings_are_the_settings_the_file_names_and_nothing_for_a_file_it_cannot_read(tmp_path: Path) -> None:
    assert key_settings(SAMPLE) == tuple(sorted(KEYS))
    broken = tmp_path / "broken.json"
    broken.write_text('{"personas": [')
    assert key_settings(broken) == ()
    assert key_settings(tmp_path / "missing.json") == ()
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"personas": [{"subscription_key_setting": 3}, "x", {"subscription_key_setting": "K "}]}))
    assert key_settings(odd) == ("K",)


def test_key_settings_read_a_file_as_load_personas_does(tmp_path: Path) -> None:
    # A BOM (Windows editors write one) is fine for load_personas, so it must be for key_settings too:
    # otherwise config collects no keys and every persona reports its key setting "not set".
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    assert key_settings(path) == tuple(sorted(KEYS))
    personas = load_personas(path, {name: "key" for name in KEYS})
    assert [persona.subscription_key for persona in personas] == ["key"] * len(personas)
