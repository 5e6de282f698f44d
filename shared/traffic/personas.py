"""Personas of the synthetic traffic: who calls, with which key and model, and how.

The persona file is JSON, `{"personas": [ {...}, ... ]}` (shared/traffic/personas.sample.json is the
shipped example). A persona names the app setting holding its subscription key instead of the key
itself, so in Azure the key can be a Key Vault reference; shared/config.py reads those settings
(`key_settings` tells it which) and hands them over as `subscription_keys`. The file is read and
checked with shared/json_input.py: every problem is reported with the file, line, field
(personas[2].weight) and what is expected, all at once, as one InputFileError, so one edit round fixes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import InputFileError
from shared.json_input import Check, Fields, Problems, choice, number, read_json_file, share, show, text, whole
from shared.traffic.prompts import MIN_PROMPT_TOKENS

PROMPT_DISTRIBUTIONS = ("uniform", "log_uniform")
# The GPT-5 series' reasoning_effort options (azure-ai-docs articles/foundry/openai/how-to/reasoning.md).
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_FIELDS = frozenset(
    {
        "name",
        "subscription",
        "subscription_key_setting",
        "user_id",
        "deployment",
        "prompt_tokens",
        "max_tokens",
        "stream_share",
        "include_usage_share",
        "prefix_share",
        "reasoning_effort",
        "weight",
        "_comment",
    }
)
_PROMPT_FIELDS = frozenset({"min", "max", "distribution"})
# user_id goes out as the x-user-id header: an HTTP field value the SDK's transport sends as ASCII (a
# non-ASCII one fails in the client before sending, a CR/LF one is refused by the HTTP layer), so every
# call of such a persona would fail. Visible ASCII, spaces inside only.
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_header_value: Check[str] = Check(
    "a non-empty string of visible ASCII characters (it is sent as the x-user-id HTTP header)",
    lambda value: value.strip() if isinstance(value, str) and _HEADER_VALUE.fullmatch(value.strip()) else None,
)
# Relative weights; bounded so that their float sum stays finite (a weight past a float's range was inf,
# and the plan could not draw from it).
_WEIGHT = number(minimum=0, maximum=1_000_000)


@dataclass(frozen=True)
class PromptSize:
    min_tokens: int
    max_tokens: int
    distribution: str = "uniform"


@dataclass(frozen=True)
class Persona:
    name: str
    subscription: str  # the APIM subscription id, as the "Subscription ID" metric dimension shows it
    subscription_key_setting: str
    user_id: str  # sent as x-user-id; the policy turns it into the "User ID" dimension
    deployment: str
    prompt_tokens: PromptSize
    max_tokens: int
    stream_share: float  # share of calls sent with stream=true
    include_usage_share: float  # share of streamed calls asking for stream_options.include_usage
    prefix_share: float  # share of each prompt that is the persona's fixed text (prompt caching)
    weight: float
    subscription_key: str = field(repr=False, default="")  # resolved from the setting; never logged
    # Sent as reasoning_effort (reasoning models only); None: not sent, the model's default applies.
    reasoning_effort: str | None = None


_PERSONA = "persona file"


def _prompt_size(persona: Fields) -> PromptSize:
    fallback = PromptSize(MIN_PROMPT_TOKENS, MIN_PROMPT_TOKENS)
    raw = persona.object(
        "prompt_tokens", expected='an object like {"min": 200, "max": 2000, "distribution": "log_uniform"}'
    )
    if raw is None:
        return fallback
    raw.unknown(_PROMPT_FIELDS)
    expected = f"a whole number of tokens >= {MIN_PROMPT_TOKENS} (the chat framing alone is part of it)"
    low = raw.get("min", whole(minimum=MIN_PROMPT_TOKENS), expected=expected, fallback=MIN_PROMPT_TOKENS)
    high = raw.get("max", whole(minimum=MIN_PROMPT_TOKENS), expected=expected, fallback=MIN_PROMPT_TOKENS)
    if high < low:
        raw.bad("max", f"at least min ({low})")
    distribution = raw.get("distribution", choice(PROMPT_DISTRIBUTIONS), "uniform", fallback="uniform")
    return PromptSize(low, max(low, high), distribution)


def _subscription_key(persona: Fields, key_setting: str, subscription_keys: Mapping[str, str]) -> str:
    if not key_setting:
        return ""
    if key_setting not in subscription_keys:
        persona.problem(
            "subscription_key_setting", f"app setting {key_setting} is not set; expected it to hold a subscription key"
        )
        return ""
    if not subscription_keys[key_setting].strip():
        persona.problem(
            "subscription_key_setting", f"app setting {key_setting} is empty; expected the APIM subscription key"
        )
        return ""
    return subscription_keys[key_setting].strip()


def _persona(persona: Fields, subscription_keys: Mapping[str, str]) -> Persona:
    persona.unknown(_FIELDS)
    key_setting = persona.get("subscription_key_setting", text, fallback="")
    effort = persona.get("reasoning_effort", choice(REASONING_EFFORTS), None)
    return Persona(
        name=persona.get("name", text, fallback=""),
        subscription=persona.get("subscription", text, fallback=""),
        subscription_key_setting=key_setting,
        user_id=persona.get("user_id", _header_value, fallback=""),
        deployment=persona.get("deployment", text, fallback=""),
        prompt_tokens=_prompt_size(persona),
        max_tokens=persona.get("max_tokens", whole(minimum=1), expected="a whole number of tokens >= 1", fallback=1),
        stream_share=float(persona.get("stream_share", share, 0, fallback=0)),
        include_usage_share=float(persona.get("include_usage_share", share, 1, fallback=0)),
        prefix_share=float(persona.get("prefix_share", share, 0, fallback=0)),
        weight=float(persona.get("weight", _WEIGHT, 1, fallback=0)),
        subscription_key=_subscription_key(persona, key_setting, subscription_keys),
        # null: not sent, as when absent
        reasoning_effort=None if persona.raw.get("reasoning_effort") is None else effort,
    )


def parse_personas(document: Any, subscription_keys: Mapping[str, str], source: str) -> tuple[Persona, ...]:
    """Validate a parsed persona document (from read_json_file, or a plain dict: then no line numbers)."""
    problems = Problems(source, _PERSONA)
    top = problems.fields(document, "")
    if not isinstance(document, Mapping):
        problems.fail(top.line, "personas", f'expected an object {{"personas": [...]}}, got {show(document)}')
    items = top.items("personas", expected="a non-empty array of persona objects")
    problems.raise_if_any()
    loaded: list[tuple[str, Persona]] = []
    for path, line, raw in items:
        if not isinstance(raw, Mapping):
            problems.add(line, path, f"expected an object, got {show(raw)}")
            continue
        loaded.append((path, _persona(problems.fields(raw, path, line), subscription_keys)))
    first_with_name: dict[str, str] = {}
    for path, persona in loaded:
        if persona.name in first_with_name:
            problems.add(
                top.line_of("personas"),
                f"{path}.name",
                f"{show(persona.name)} used twice (first by {first_with_name[persona.name]}); "
                "expected unique persona names",
            )
        elif persona.name:
            first_with_name[persona.name] = path
    if loaded and sum(persona.weight for _, persona in loaded) <= 0:
        problems.add(
            top.line_of("personas"),
            "personas[*].weight",
            "all weights are 0; expected at least one persona with weight > 0",
        )
    problems.raise_if_any()
    return tuple(persona for _, persona in loaded)


def load_personas(path: str | Path, subscription_keys: Mapping[str, str]) -> tuple[Persona, ...]:
    """Read and validate the persona file; each persona's key is looked up in `subscription_keys`
    (app setting name -> value, as shared/config.py collected them)."""
    document = read_json_file(
        Path(path),
        _PERSONA,
        not_found="persona file not found; expected a JSON file (see shared/traffic/personas.sample.json)",
    )
    return parse_personas(document.root, subscription_keys, document.source)


def key_settings(path: str | Path) -> tuple[str, ...]:
    """The app settings a persona file names for subscription keys, sorted, each once.

    Lenient on purpose: config calls it at start to know which settings to read; a file it cannot
    use gives () here and fails the traffic run with every problem named (load_personas)."""
    try:
        # Read as load_personas reads it (a BOM, duplicate keys...), so the two never disagree on a file.
        document = read_json_file(Path(path), _PERSONA).root
    except InputFileError:
        return ()
    raw_personas = document.get("personas") if isinstance(document, Mapping) else None
    names = {
        persona.get("subscription_key_setting")
        for persona in (raw_personas if isinstance(raw_personas, list) else [])
        if isinstance(persona, Mapping)
    }
    return tuple(sorted(name.strip() for name in names if isinstance(name, str) and name.strip()))
