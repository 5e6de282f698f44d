"""Personas of the synthetic traffic: who calls, with which key and model, and how.

The persona file is JSON, `{"personas": [ {...}, ... ]}` (shared/traffic/personas.sample.json is the
shipped example). A persona names the app setting holding its subscription key instead of the key
itself, so in Azure the key can be a Key Vault reference; shared/config.py reads those settings
(`key_settings` tells it which) and hands them over as `subscription_keys`. Every problem is reported with the
file, the persona, the field and what is expected, all at once, so one edit round fixes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class PersonaError(ValueError):
    """The persona file cannot be used; the message lists every problem found."""


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


class _Problems:
    """Collects problems with their location so the error lists them all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.source}: {where}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise PersonaError("invalid persona file\n" + "\n".join(self.items))


def _text(raw: Mapping[str, Any], name: str, where: str, problems: _Problems) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{where}.{name}", f"got {value!r}; expected a non-empty string")
        return ""
    return value.strip()


def _number(
    raw: Mapping[str, Any],
    name: str,
    where: str,
    problems: _Problems,
    *,
    integer: bool,
    low: float,
    high: float = math.inf,
    default: float | None = None,
    expected: str,
) -> float:
    value = raw.get(name, default)
    number: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, float) and not integer:
        number = value
    if number is None or not math.isfinite(number) or not low <= number <= high:
        problems.add(f"{where}.{name}", f"got {value!r}; expected {expected}")
        return low
    return number


def _share(raw: Mapping[str, Any], name: str, where: str, problems: _Problems, default: float | None) -> float:
    return _number(
        raw, name, where, problems, integer=False, low=0.0, high=1.0, default=default, expected="a number from 0 to 1"
    )


def _prompt_size(raw: Any, where: str, problems: _Problems) -> PromptSize:
    where = f"{where}.prompt_tokens"
    if not isinstance(raw, Mapping):
        problems.add(
            where, f'got {raw!r}; expected an object like {{"min": 200, "max": 2000, "distribution": "log_uniform"}}'
        )
        return PromptSize(MIN_PROMPT_TOKENS, MIN_PROMPT_TOKENS)
    for unknown in sorted(set(raw) - _PROMPT_FIELDS):
        problems.add(f"{where}.{unknown}", f"unknown field; expected some of {sorted(_PROMPT_FIELDS)}")
    expected = f"a whole number of tokens >= {MIN_PROMPT_TOKENS} (the chat framing alone is part of it)"
    low = int(_number(raw, "min", where, problems, integer=True, low=MIN_PROMPT_TOKENS, expected=expected))
    high = int(_number(raw, "max", where, problems, integer=True, low=MIN_PROMPT_TOKENS, expected=expected))
    if high < low:
        problems.add(f"{where}.max", f"got {high}; expected at least min ({low})")
    distribution = raw.get("distribution", "uniform")
    if distribution not in PROMPT_DISTRIBUTIONS:
        problems.add(f"{where}.distribution", f"got {distribution!r}; expected one of {list(PROMPT_DISTRIBUTIONS)}")
        distribution = "uniform"
    return PromptSize(low, max(low, high), distribution)


def _persona(raw: Any, index: int, keys: Mapping[str, str], problems: _Problems) -> Persona | None:
    if not isinstance(raw, Mapping):
        problems.add(f"personas[{index}]", f"got {type(raw).__name__}; expected an object")
        return None
    name = raw.get("name")
    where = f"persona {name!r}" if isinstance(name, str) and name.strip() else f"personas[{index}]"
    for unknown in sorted(set(raw) - _FIELDS):
        problems.add(f"{where}.{unknown}", f"unknown field; expected some of {sorted(_FIELDS - {'_comment'})}")
    key_setting = _text(raw, "subscription_key_setting", where, problems)
    key = ""
    if key_setting:
        if key_setting not in keys:
            problems.add(
                f"{where}.subscription_key_setting",
                f"app setting {key_setting} is not set; expected it to hold a subscription key",
            )
        elif not keys[key_setting].strip():
            problems.add(
                f"{where}.subscription_key_setting",
                f"app setting {key_setting} is empty; expected the APIM subscription key",
            )
        else:
            key = keys[key_setting].strip()
    return Persona(
        name=_text(raw, "name", where, problems),
        subscription=_text(raw, "subscription", where, problems),
        subscription_key_setting=key_setting,
        user_id=_text(raw, "user_id", where, problems),
        deployment=_text(raw, "deployment", where, problems),
        prompt_tokens=_prompt_size(raw.get("prompt_tokens"), where, problems),
        max_tokens=int(
            _number(raw, "max_tokens", where, problems, integer=True, low=1, expected="a whole number of tokens >= 1")
        ),
        stream_share=_share(raw, "stream_share", where, problems, default=0.0),
        include_usage_share=_share(raw, "include_usage_share", where, problems, default=1.0),
        prefix_share=_share(raw, "prefix_share", where, problems, default=0.0),
        weight=_number(raw, "weight", where, problems, integer=False, low=0.0, default=1.0, expected="a number >= 0"),
        subscription_key=key,
        reasoning_effort=_reasoning_effort(raw, where, problems),
    )


def _reasoning_effort(raw: Mapping[str, Any], where: str, problems: _Problems) -> str | None:
    value = raw.get("reasoning_effort")
    if value is None or value in REASONING_EFFORTS:
        return value
    problems.add(f"{where}.reasoning_effort", f"got {value!r}; expected one of {', '.join(REASONING_EFFORTS)}")
    return None


def parse_personas(document: Any, subscription_keys: Mapping[str, str], source: str) -> tuple[Persona, ...]:
    """Validate a parsed persona document; `source` names it in errors; keys by app setting name."""
    problems = _Problems(source)
    raw_personas = document.get("personas") if isinstance(document, Mapping) else None
    if not isinstance(raw_personas, list) or not raw_personas:
        problems.add("personas", "expected a non-empty array of persona objects")
        problems.raise_if_any()
    personas = [_persona(raw, index, subscription_keys, problems) for index, raw in enumerate(raw_personas or [])]
    loaded = tuple(persona for persona in personas if persona is not None)
    names = [persona.name for persona in loaded if persona.name]
    for duplicate in sorted({name for name in names if names.count(name) > 1}):
        problems.add(f"persona {duplicate!r}.name", "used twice; expected unique persona names")
    if loaded and sum(persona.weight for persona in loaded) <= 0:
        problems.add("personas[*].weight", "all weights are 0; expected at least one persona with weight > 0")
    problems.raise_if_any()
    return loaded


def load_personas(path: str | Path, subscription_keys: Mapping[str, str]) -> tuple[Persona, ...]:
    """Read and validate the persona file; each persona's key is looked up in `subscription_keys`
    (app setting name -> value, as shared/config.py collected them)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PersonaError(
            f"{path}: persona file not found; expected a JSON file (see shared/traffic/personas.sample.json)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PersonaError(f"{path}: cannot read the persona file: {error}") from None
    except json.JSONDecodeError as error:
        raise PersonaError(f"{path}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    return parse_personas(document, subscription_keys, str(path))


def key_settings(path: str | Path) -> tuple[str, ...]:
    """The app settings a persona file names for subscription keys, sorted, each once.

    Lenient on purpose: config calls it at start to know which settings to read; a file it cannot
    use gives () here and fails the traffic run with every problem named (load_personas)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return ()
    raw_personas = document.get("personas") if isinstance(document, Mapping) else None
    names = {
        persona.get("subscription_key_setting")
        for persona in (raw_personas if isinstance(raw_personas, list) else [])
        if isinstance(persona, Mapping)
    }
    return tuple(sorted(name.strip() for name in names if isinstance(name, str) and name.strip()))
