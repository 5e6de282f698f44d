"""Simulator settings: the "simulator" and "deployments" sections of standins/stack.config.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from standins.tokenizer import encoding_name_for_model

# Azure prompt caching exists only for the gpt-4o generation and later, which are exactly the
# models on o200k_base; older deployments (gpt-35-turbo, gpt-4) always report 0 cached tokens.
_CACHING_ENCODINGS = frozenset({"o200k_base"})
# Reasoning models (the o-series and the GPT-5 series) "will only work with the
# max_completion_tokens parameter" and do not support max_tokens
# (MicrosoftDocs/azure-ai-docs articles/foundry/openai/how-to/reasoning.md, "API & feature support").
_REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4", "codex")


@dataclass(frozen=True)
class DeploymentConfig:
    name: str
    model: str
    model_version: str
    encoding_name: str
    prompt_caching: bool
    reasoning: bool = False

    @property
    def response_model(self) -> str:
        """The ``model`` field Azure returns: dated versions are appended, numbered ones are not."""
        if "-" in self.model_version:
            return f"{self.model}-{self.model_version}"
        return self.model


@dataclass(frozen=True)
class FaultConfig:
    """Per-request fault probabilities (drawn from one seeded generator) and their parameters."""

    rate_429: float = 0.0
    retry_after_seconds: int = 1
    rate_500: float = 0.0
    rate_stall: float = 0.0
    rate_truncate: float = 0.0
    # A stalled response is abandoned after this long so the server can still stop cleanly.
    stall_seconds: float = 30.0


@dataclass(frozen=True)
class SimulatorConfig:
    deployments: Mapping[str, DeploymentConfig]
    latency_ms: float = 20.0
    time_to_first_token_ms: float = 30.0
    tokens_per_second: float = 400.0
    default_max_tokens: int = 200
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    region: str = "West Europe"
    # Streams batch tokens so that chunks are at least this far apart; keeps 100+ req/s cheap.
    min_chunk_interval_ms: float = 20.0
    prompt_cache_max_entries: int = 20_000
    prompt_cache_ttl_seconds: float = 600.0
    # Only reported in x-ratelimit-remaining-* headers, not enforced (faults cover 429s).
    tokens_per_minute: int = 1_000_000
    requests_per_minute: int = 6_000
    # Reasoning deployments asked without reasoning_effort reason at this level. OpenAI's reasoning
    # models default to medium; gpt-5.1 defaults to none (azure-ai-docs articles/foundry/openai/
    # how-to/reasoning.md, footnote 4); the gpt-5.6 default is not documented, so medium: more
    # hidden tokens, never fewer than Azure might bill.
    default_reasoning_effort: str = "medium"
    # The account's disableLocalAuth (infra/app/ai.bicep sets it): key headers are refused, only
    # Entra ID bearer tokens get in (https://learn.microsoft.com/azure/ai-services/disable-local-auth).
    disable_local_auth: bool = False


def _deployment(name: str, raw: Mapping[str, Any]) -> DeploymentConfig:
    model = str(raw.get("model") or name)
    encoding_name = str(raw.get("encoding") or encoding_name_for_model(model))
    caching = raw.get("prompt_caching")
    reasoning = raw.get("reasoning")
    return DeploymentConfig(
        name=name,
        model=model,
        model_version=str(raw.get("model_version", "")),
        encoding_name=encoding_name,
        prompt_caching=encoding_name in _CACHING_ENCODINGS if caching is None else bool(caching),
        reasoning=model.lower().startswith(_REASONING_PREFIXES) if reasoning is None else bool(reasoning),
    )


def _checked_keys(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    # A typo in a rate would silently disable a fault; refuse unknown settings instead.
    unknown = sorted(set(section) - allowed - {"_comment"})
    if unknown:
        raise ValueError(f"unknown {where} settings {unknown}; expected some of {sorted(allowed)}")


def _faults(raw: Mapping[str, Any]) -> FaultConfig:
    _checked_keys(raw, {f.name for f in fields(FaultConfig)}, "simulator.faults")
    faults = FaultConfig(**raw)
    rates = (faults.rate_429, faults.rate_500, faults.rate_stall, faults.rate_truncate)
    if any(rate < 0 for rate in rates) or sum(rates) > 1:
        raise ValueError(f"fault rates must be >= 0 and sum to <= 1; got {rates}")
    return faults


def simulator_config_from_mapping(stack_config: Mapping[str, Any]) -> SimulatorConfig:
    """Build the config from a parsed stack config (its "simulator" and "deployments" sections)."""
    raw_deployments = stack_config.get("deployments") or {}
    if not raw_deployments:
        raise ValueError("the stack config declares no deployments")
    deployments = {name: _deployment(name, raw) for name, raw in raw_deployments.items()}
    section = dict(stack_config.get("simulator") or {})
    _checked_keys(section, {f.name for f in fields(SimulatorConfig)} - {"deployments"}, "simulator")
    faults = _faults(section.pop("faults", {}))
    config = SimulatorConfig(deployments=deployments, faults=faults, **section)
    if config.tokens_per_second <= 0 or config.default_max_tokens < 1:
        raise ValueError("tokens_per_second must be > 0 and default_max_tokens >= 1")
    return config


def load_simulator_config(path: str | Path) -> SimulatorConfig:
    return simulator_config_from_mapping(json.loads(Path(path).read_text(encoding="utf-8")))
