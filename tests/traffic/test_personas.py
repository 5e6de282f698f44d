"""Persona file: the shipped sample loads; every bad input names the file, persona, field, expectation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.traffic.personas import Persona, PersonaError, key_settings, load_personas, parse_personas
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
    with pytest.raises(PersonaError) as caught:
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
    with pytest.raises(PersonaError, match=r"missing\.json: persona file not found"):
        load_personas(tmp_path / "missing.json", {})
    broken = tmp_path / "broken.json"
    broken.write_text('{"personas": [\n  {"name": "x",}\n]}', encoding="utf-8")
    with pytest.raises(PersonaError, match=r"broken\.json: not valid JSON at line 2 column"):
        load_personas(broken, {})


@pytest.mark.parametrize("document", [{}, {"personas": []}, {"personas": {}}, []])
def test_document_without_personas_is_refused(document: Any) -> None:
    with pytest.raises(PersonaError, match=r"p\.json: personas: expected a non-empty array"):
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
    assert "p.json: persona 'p2'.subscription_key_setting: app setting KEY_B is not set" in message
    assert "p.json: persona 'p3'.subscription_key_setting: app setting KEY_EMPTY is empty" in message
    assert "persona 'p1'" not in message


@pytest.mark.parametrize(
    ("overrides", "where", "expected"),
    [
        ({"stream_share": 1.5}, "persona 'p1'.stream_share: got 1.5", "expected a number from 0 to 1"),
        ({"include_usage_share": -0.1}, "persona 'p1'.include_usage_share", "from 0 to 1"),
        ({"prefix_share": "half"}, "persona 'p1'.prefix_share: got 'half'", "from 0 to 1"),
        ({"prompt_tokens": {"min": -5, "max": 10}}, "persona 'p1'.prompt_tokens.min: got -5", ">= 13"),
        (
            {"prompt_tokens": {"min": 200, "max": 100}},
            "persona 'p1'.prompt_tokens.max: got 100",
            "expected at least min (200)",
        ),
        (
            {"prompt_tokens": {"min": 20, "max": 30, "distribution": "normal"}},
            "persona 'p1'.prompt_tokens.distribution: got 'normal'",
            "['uniform', 'log_uniform']",
        ),
        ({"prompt_tokens": 500}, "persona 'p1'.prompt_tokens: got 500", "expected an object"),
        ({"max_tokens": 0}, "persona 'p1'.max_tokens: got 0", "expected a whole number of tokens >= 1"),
        ({"max_tokens": 2.5}, "persona 'p1'.max_tokens: got 2.5", ">= 1"),
        ({"weight": -1}, "persona 'p1'.weight: got -1", "expected a number >= 0"),
        ({"reasoning_effort": "max"}, "persona 'p1'.reasoning_effort: got 'max'", "none, minimal, low, medium"),
        ({"deployment": ""}, "persona 'p1'.deployment: got ''", "expected a non-empty string"),
        ({"colour": "blue"}, "persona 'p1'.colour: unknown field", "expected some of"),
        ({"name": None}, "personas[0].name: got None", "expected a non-empty string"),
    ],
)
def test_impossible_values_name_persona_field_and_expectation(
    overrides: dict[str, Any], where: str, expected: str
) -> None:
    message = _error([_persona(**overrides)])
    line = next(line for line in message.splitlines() if where in line)
    assert line.startswith("p.json: ") and expected in line


def test_zero_total_weight_and_duplicates_are_refused() -> None:
    message = _error([_persona(weight=0), _persona(name="p2", weight=0), _persona(name="p2", weight=0)])
    assert "personas[*].weight: all weights are 0" in message
    assert "persona 'p2'.name: used twice" in message


def test_all_problems_are_reported_at_once() -> None:
    message = _error([_persona(stream_share=2), "not an object", _persona(name="p2", max_tokens=-1)])
    assert len(message.splitlines()) == 4  # header + three problems
    assert "personas[1]: got str; expected an object" in message


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
