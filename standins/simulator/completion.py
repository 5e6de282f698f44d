"""Turn a chat-completions request into the reply the simulator will send (tokens, text, usage)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from standins.simulator.config import DeploymentConfig, SimulatorConfig
from standins.simulator.prompt_cache import MIN_CACHEABLE_TOKENS, PromptPrefixCache
from standins.simulator.text import text_generator
from standins.tokenizer import chat_prompt_text, count_chat_prompt_tokens, get_encoding

COMPLETION_TOKENS_HEADER = "x-sim-completion-tokens"
# Separates message parts in the cache key so ("ab", "c") and ("a", "bc") never share a prefix.
_PART_SEPARATOR = -1


class InvalidRequest(ValueError):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class Completion:
    deployment: DeploymentConfig
    completion_id: str
    created: int
    pieces: Sequence[str]
    prompt_tokens: int
    cached_tokens: int
    finish_reason: str
    stream: bool
    include_usage: bool
    # Hidden reasoning: billed inside completion_tokens, never part of the text or the stream
    # ("hidden tokens that aren't returned as part of the message response content",
    # azure-ai-docs articles/foundry/openai/how-to/reasoning.md).
    reasoning_tokens: int = 0

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces) + self.reasoning_tokens

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _positive_int(value: Any, param: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"Invalid '{param}': expected an integer >= {minimum}, got {value!r}.", param)
    return value


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", "messages")
    if not all(isinstance(m, Mapping) and isinstance(m.get("role"), str) for m in messages):
        raise InvalidRequest("each message must be an object with a string 'role'.", "messages")
    return messages


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    # Newer clients send max_completion_tokens; it wins over the legacy max_tokens, as on Azure.
    for param in ("max_completion_tokens", "max_tokens"):
        if body.get(param) is not None:
            return _positive_int(body[param], param, 1)
    return None


# Hidden reasoning tokens per visible token, by reasoning_effort (the GPT-5 series' options, same
# page: none, minimal, low, medium, high, xhigh). Microsoft publishes no ratio: these magnitudes
# only make the hidden share real in the simulation; a call varies from half to 1.5 times its level.
REASONING_PER_VISIBLE_TOKEN = {"none": 0.0, "minimal": 0.1, "low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 4.0}


def _reasoning_effort(deployment: DeploymentConfig, body: Mapping[str, Any], default: str) -> str:
    effort = body.get("reasoning_effort")
    if effort is None:
        return default if deployment.reasoning else "none"
    if not deployment.reasoning:
        # What OpenAI-style services answer a model without reasoning (unverified wording).
        raise InvalidRequest(
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            "reasoning_effort",
            "unsupported_parameter",
        )
    if effort not in REASONING_PER_VISIBLE_TOKEN:
        raise InvalidRequest(
            f"Invalid value for 'reasoning_effort': expected one of {sorted(REASONING_PER_VISIBLE_TOKEN)}.",
            "reasoning_effort",
        )
    return str(effort)


def _prompt_digest(deployment: str, messages: Sequence[Mapping[str, Any]], seed: int) -> int:
    canonical = json.dumps([deployment, seed, messages], sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "big")


def _prompt_token_ids(messages: Sequence[Mapping[str, Any]], encoding_name: str) -> list[int]:
    encoding = get_encoding(encoding_name)
    token_ids: list[int] = []
    for part in chat_prompt_text(messages):
        token_ids.extend(encoding.encode_ordinary(part))
        token_ids.append(_PART_SEPARATOR)
    return token_ids


class CompletionPlanner:
    """Decides a reply deterministically from the prompt; owns the prompt cache."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._prompt_cache = PromptPrefixCache(
            max_entries=config.prompt_cache_max_entries, ttl_seconds=config.prompt_cache_ttl_seconds
        )
        # Load encodings and word lists at start-up, not on the first (timed) request.
        for deployment in config.deployments.values():
            text_generator(deployment.encoding_name)

    def _natural_length(self, digest: int) -> int:
        longest = self._config.default_max_tokens
        shortest = max(1, longest // 4)
        return shortest + digest % (longest - shortest + 1)

    def _cached_tokens(
        self, deployment: DeploymentConfig, messages: Sequence[Mapping[str, Any]], prompt_tokens: int
    ) -> int:
        if not deployment.prompt_caching or prompt_tokens < MIN_CACHEABLE_TOKENS:
            return 0
        token_ids = _prompt_token_ids(messages, deployment.encoding_name)
        return min(prompt_tokens, self._prompt_cache.lookup_and_remember(deployment.name, token_ids))

    def plan(
        self, deployment: DeploymentConfig, body: Mapping[str, Any], forced_completion_tokens: str | None
    ) -> Completion:
        """The reply for ``body``; raises InvalidRequest for what Azure would reject with 400."""
        messages = _messages(body)
        if deployment.reasoning and body.get("max_tokens") is not None:
            # What the service answers a reasoning model asked with max_tokens (the docs: these
            # models "will only work with the max_completion_tokens parameter").
            raise InvalidRequest(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        max_tokens = _max_tokens(body)
        stream = bool(body.get("stream"))
        stream_options = body.get("stream_options") or {}
        if not isinstance(stream_options, Mapping):
            raise InvalidRequest("'stream_options' must be an object.", "stream_options")
        digest = _prompt_digest(deployment.name, messages, self._config.seed)
        if forced_completion_tokens is not None:
            try:
                wanted = _positive_int(int(forced_completion_tokens), COMPLETION_TOKENS_HEADER, 0)
            except ValueError:
                raise InvalidRequest(f"{COMPLETION_TOKENS_HEADER} must be an integer >= 0.") from None
        else:
            wanted = self._natural_length(digest)
        effort = _reasoning_effort(deployment, body, self._config.default_reasoning_effort)
        variation = 0.5 + (digest >> 16) % 1001 / 1000
        reasoning = round(wanted * REASONING_PER_VISIBLE_TOKEN[effort] * variation)
        # max_completion_tokens bounds "visible output tokens and reasoning tokens" together
        # (Azure/azure-rest-api-specs .../inference/stable/2024-10-21/inference.json); reasoning
        # comes first, so a tight limit can leave no visible text.
        if max_tokens is not None:
            reasoning = min(reasoning, max_tokens)
        length = wanted if max_tokens is None else min(wanted, max_tokens - reasoning)
        prompt_tokens = count_chat_prompt_tokens(messages, deployment.encoding_name)
        return Completion(
            deployment=deployment,
            completion_id=f"chatcmpl-{uuid.uuid4().hex[:29]}",
            created=int(time.time()),
            pieces=text_generator(deployment.encoding_name).pieces(length, digest),
            prompt_tokens=prompt_tokens,
            cached_tokens=self._cached_tokens(deployment, messages, prompt_tokens),
            finish_reason="length" if length < wanted else "stop",
            stream=stream,
            include_usage=stream and bool(stream_options.get("include_usage")),
            reasoning_tokens=reasoning,
        )
