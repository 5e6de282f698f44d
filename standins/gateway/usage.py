"""Token usage of one call as APIM's token metrics count it.

- Not streamed: the response's ``usage`` (estimated from the text only if a 2xx answer lacks it).
- Streamed: always estimated. Both emit policies say "When `stream` is set to `true` in the API
  request to enable streaming, token metrics are estimated"
  (https://learn.microsoft.com/azure/api-management/azure-openai-emit-token-metric-policy and
  .../llm-emit-token-metric-policy), and neither mentions ``stream_options.include_usage``: a
  ``usage`` chunk in the stream is not promised to be read, so the stand-in never reads it. The
  prompt is counted with the chat framing rules, the completion from the streamed text; an
  estimate knows nothing of the prompt cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from standins.tokenizer import count_chat_prompt_tokens, count_text_tokens, encoding_name_for_model


@dataclass(frozen=True)
class TokenUsage:
    prompt: int
    completion: int
    total: int
    # usage.prompt_tokens_details.cached_tokens when a non-streamed response reported it.
    cached: int | None


def usage_from_payload(usage: Any) -> TokenUsage | None:
    if not isinstance(usage, Mapping) or "prompt_tokens" not in usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details")
    cached = None
    if isinstance(details, Mapping) and details.get("cached_tokens") is not None:
        cached = int(details["cached_tokens"])
    total = int(usage.get("total_tokens") or prompt + completion)
    return TokenUsage(prompt, completion, total, cached)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _choice_texts(payload: Mapping[str, Any]) -> Iterable[str]:
    """Generated text in a response or stream chunk: chat content, tool arguments, completion text."""
    for choice in payload.get("choices") or ():
        if not isinstance(choice, Mapping):
            continue
        if isinstance(choice.get("text"), str):
            yield choice["text"]
        for part in (choice.get("delta"), choice.get("message")):
            if not isinstance(part, Mapping):
                continue
            if isinstance(part.get("content"), str):
                yield part["content"]
            for call in part.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                    yield function["arguments"]


def _as_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


@dataclass(frozen=True)
class UsageEstimator:
    """Counts tokens the way the deployment's model does, for calls whose response lacks usage."""

    operation_kind: str  # "chat" | "completions" | "embeddings"
    request_body: bytes
    model: str

    def estimate(self, completion_text: str) -> TokenUsage:
        encoding = encoding_name_for_model(self.model)
        request = _json_object(self.request_body) or {}
        if self.operation_kind == "chat":
            messages = [m for m in request.get("messages") or () if isinstance(m, Mapping)]
            prompt = count_chat_prompt_tokens(messages, encoding)
        else:
            field = "prompt" if self.operation_kind == "completions" else "input"
            prompt = sum(count_text_tokens(text, encoding) for text in _as_texts(request.get(field)))
        completion = count_text_tokens(completion_text, encoding) if completion_text else 0
        return TokenUsage(prompt, completion, prompt + completion, None)


def usage_from_body(body: bytes, estimator: UsageEstimator) -> TokenUsage:
    """A non-streamed response: its usage, or an estimate from its text."""
    payload = _json_object(body)
    if payload is None:
        return estimator.estimate("")
    return usage_from_payload(payload.get("usage")) or estimator.estimate("".join(_choice_texts(payload)))


class StreamRecorder:
    """Keeps the bytes that reached the client; parses the SSE events only once the stream is over,
    so relaying a chunk costs an append and nothing else."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk

    def _events(self) -> Iterable[dict[str, Any]]:
        for line in bytes(self._buffer).splitlines():
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                continue
            event = _json_object(data)
            if event is not None:
                yield event

    def usage(self, estimator: UsageEstimator) -> TokenUsage:
        """An estimate from the streamed text; a ``usage`` chunk (include_usage) is ignored."""
        texts: list[str] = []
        for event in self._events():
            texts.extend(_choice_texts(event))
        return estimator.estimate("".join(texts))
