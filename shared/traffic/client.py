"""One synthetic call through the gateway with the official openai SDK, retried within bounds.

The SDK's own retries are off (max_retries=0): we retry here so that a wait never runs past the
run's deadline, every attempt is counted, and Retry-After is honoured however long it is (the
SDK ignores values above a minute). A stream is read to its end; the usage chunk, when asked
for, is the only source of its token counts (never summed over chunks).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from shared.azure_retry import retry_after_seconds
from shared.traffic.plan import PlannedCall
from shared.traffic.prompts import build_messages
from shared.traffic.results import OK, CallOutcome, Usage

if TYPE_CHECKING:
    from openai import AsyncAzureOpenAI, AsyncStream
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from shared.traffic.pacing import Clock

USER_ID_HEADER = "x-user-id"
_REQUEST_ID_HEADERS = ("apim-request-id", "x-request-id", "x-ms-client-request-id")
_RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    request_timeout_seconds: float
    # Used when the service sends no Retry-After: 0.5 s, 1 s, 2 s ... capped, with jitter.
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0

    def backoff_seconds(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2.0 ** (attempt - 1))
        # Half fixed, half jitter: retries of calls that failed together spread out again.
        return ceiling * (0.5 + 0.5 * rng.random())


def status_reason(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    if status == 408:
        return "timeout"
    return "bad_request"


class _BrokenStream(Exception):
    """The stream ended or broke before its finish (or before the usage it was asked for)."""

    def __init__(self, request_id: str | None) -> None:
        super().__init__(f"stream of request {request_id} broke off")
        self.request_id = request_id


@dataclass(frozen=True)
class _Answer:
    usage: Usage | None
    latency_ms: float
    ttft_ms: float | None
    request_id: str | None
    http_status: int


@dataclass(frozen=True)
class _Failure:
    reason: str
    retryable: bool
    http_status: int | None = None
    request_id: str | None = None
    retry_after_seconds: float | None = None


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return Usage(
        prompt_tokens=int(raw.prompt_tokens),
        completion_tokens=int(raw.completion_tokens),
        total_tokens=int(raw.total_tokens),
        cached_tokens=int(cached or 0),
    )


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


class CallSender:
    """Sends PlannedCalls; one AsyncAzureOpenAI client per subscription key setting."""

    def __init__(
        self,
        clients: Mapping[str, AsyncAzureOpenAI],
        *,
        clock: Clock,
        policy: RetryPolicy,
        longest_prompt_tokens: Mapping[str, int],
    ) -> None:
        self._clients = clients
        self._clock = clock
        self._policy = policy
        self._longest_prompt_tokens = longest_prompt_tokens

    async def send(self, call: PlannedCall, due: float, deadline: float) -> CallOutcome:
        started_at = self._clock.wall()
        lateness_seconds = self._clock.now() - due
        persona = call.persona
        messages = build_messages(
            persona_name=persona.name,
            prompt_tokens=call.prompt_tokens,
            prefix_share=persona.prefix_share,
            longest_prompt_tokens=self._longest_prompt_tokens[persona.name],
            call_seed=call.call_seed,
        )
        client = self._clients[persona.subscription_key_setting]
        backoff_rng = random.Random(call.call_seed)
        attempt = 0
        while True:
            attempt += 1
            result = await self._attempt(client, call, messages, deadline)
            if isinstance(result, _Answer):
                return CallOutcome(
                    call=call,
                    status=OK,
                    started_at=started_at,
                    attempts=attempt,
                    lateness_seconds=lateness_seconds,
                    usage=result.usage,
                    latency_ms=result.latency_ms,
                    ttft_ms=result.ttft_ms,
                    http_status=result.http_status,
                    request_id=result.request_id,
                )
            wait_seconds = (
                result.retry_after_seconds
                if result.retry_after_seconds is not None
                else self._policy.backoff_seconds(attempt, backoff_rng)
            )
            # Give up when out of retries, or when the wait would leave no time for the retry.
            if (
                not result.retryable
                or attempt > self._policy.max_retries
                or self._clock.now() + wait_seconds >= deadline
            ):
                return CallOutcome(
                    call=call,
                    status=result.reason,
                    started_at=started_at,
                    attempts=attempt,
                    lateness_seconds=lateness_seconds,
                    http_status=result.http_status,
                    request_id=result.request_id,
                )
            await self._clock.sleep(wait_seconds)

    async def _attempt(
        self, client: AsyncAzureOpenAI, call: PlannedCall, messages: list[dict[str, str]], deadline: float
    ) -> _Answer | _Failure:
        import openai

        remaining_seconds = deadline - self._clock.now()
        timeout_seconds = min(self._policy.request_timeout_seconds, remaining_seconds)
        # A timeout that the run's budget shortened is the budget's doing, not the service's.
        shortened = timeout_seconds < self._policy.request_timeout_seconds
        timeout_reason = "run_budget" if shortened else "timeout"
        if timeout_seconds <= 0:
            return _Failure("run_budget", retryable=False)
        try:
            # The SDK's timeout bounds each read; this one bounds the whole call, slow streams too.
            async with asyncio.timeout(timeout_seconds):
                return await self._request(client, call, messages, timeout_seconds)
        except openai.APIStatusError as error:
            status = error.status_code
            return _Failure(
                status_reason(status),
                retryable=status in _RETRYABLE_STATUS or status >= 500,
                http_status=status,
                request_id=_request_id(error.response.headers),
                retry_after_seconds=retry_after_seconds(error.response.headers),
            )
        except (openai.APITimeoutError, TimeoutError):
            return _Failure(timeout_reason, retryable=True)
        except openai.APIConnectionError:
            return _Failure("connection", retryable=True)
        except _BrokenStream as error:
            # Not retried: the model already generated (and the gateway may have counted) tokens.
            return _Failure("broken_stream", retryable=False, http_status=200, request_id=error.request_id)
        except (openai.APIError, ValueError):
            # A 200 whose body the SDK could not read (invalid JSON, unexpected shape): one odd
            # answer must not end the run, and sending it again would not make it readable.
            return _Failure("bad_response", retryable=False)

    async def _request(
        self,
        client: AsyncAzureOpenAI,
        call: PlannedCall,
        messages: list[dict[str, str]],
        timeout_seconds: float,
    ) -> _Answer:
        import openai

        persona = call.persona
        began = self._clock.now()
        raw = await client.chat.completions.with_raw_response.create(
            model=persona.deployment,
            messages=messages,  # type: ignore[arg-type]
            # Reasoning models (the GPT-5 and o series) refuse max_tokens; every current chat
            # model takes max_completion_tokens (azure-ai-docs articles/foundry/openai/how-to/reasoning.md).
            max_completion_tokens=persona.max_tokens,
            reasoning_effort=persona.reasoning_effort or openai.omit,  # type: ignore[arg-type]
            stream=call.stream,
            stream_options={"include_usage": True} if call.include_usage else openai.omit,
            extra_headers={USER_ID_HEADER: persona.user_id},
            timeout=timeout_seconds,
        )
        request_id = _request_id(raw.headers)
        if not call.stream:
            completion = cast("ChatCompletion", raw.parse())
            return _Answer(
                _usage(completion.usage), (self._clock.now() - began) * 1000, None, request_id, raw.status_code
            )
        usage = None
        first_token_at: float | None = None
        finished = False
        try:
            async for chunk in cast("AsyncStream[ChatCompletionChunk]", raw.parse()):
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if first_token_at is None and choice.delta.content:
                        first_token_at = self._clock.now()
                    if choice.finish_reason:
                        finished = True
        except openai.APITimeoutError:
            raise
        except openai.APIError as error:
            # The connection broke mid-stream, or the service sent an error event in the stream.
            raise _BrokenStream(request_id) from error
        if not finished or (call.include_usage and usage is None):
            raise _BrokenStream(request_id)
        ended = self._clock.now()
        ttft_ms = (first_token_at - began) * 1000 if first_token_at is not None else None
        return _Answer(_usage(usage), (ended - began) * 1000, ttft_ms, request_id, raw.status_code)
