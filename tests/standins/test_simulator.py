"""The model simulator over real HTTP, via the official openai SDK (raw HTTP where the SDK hides shape)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from standins._server import RunningServer
from standins.simulator import (
    COMPLETION_TOKENS_HEADER,
    FAULT_HEADER,
    SimulatorConfig,
    load_simulator_config,
    simulator_config_from_mapping,
    start_simulator,
)
from standins.simulator.meters import read_meters_file
from standins.simulator.prompt_cache import PromptPrefixCache
from standins.simulator.server import meters_of
from standins.tokenizer import count_chat_prompt_tokens, count_text_tokens
from tests import ROOT

STACK_CONFIG = ROOT / "standins" / "stack.config.json"
API_VERSION = "2024-10-21"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Summarise the token costs of last week, please.", "name": "analyst"},
]


# The shipped deployments are all gpt-5.6 models (o200k_base, prompt caching); this retired
# gpt-35-turbo keeps the simulator's cl100k_base, no-caching path under test.
LEGACY_DEPLOYMENT = {"gpt-35-turbo": {"model": "gpt-35-turbo", "model_version": "0125"}}


def fast_config(**simulator: Any) -> SimulatorConfig:
    """The shipped config plus LEGACY_DEPLOYMENT, minus waiting: tests exercise behaviour, not pacing."""
    raw = json.loads(STACK_CONFIG.read_text(encoding="utf-8"))
    config = simulator_config_from_mapping({**raw, "deployments": {**raw["deployments"], **LEGACY_DEPLOYMENT}})
    faults = dataclasses.replace(config.faults, stall_seconds=5.0)
    fast = {
        "latency_ms": 0,
        "time_to_first_token_ms": 0,
        "tokens_per_second": 20_000,
        "min_chunk_interval_ms": 0.5,  # 10 tokens a chunk: still several chunks per reply
        "faults": faults,
        # Local auth on, as on an account without disableLocalAuth: these tests call with a key.
        "disable_local_auth": False,
    }
    return dataclasses.replace(config, **{**fast, **simulator})


@pytest.fixture
async def simulator() -> AsyncIterator[RunningServer]:
    server = await start_simulator(fast_config())
    yield server
    await server.stop()


@pytest.fixture
async def azure(simulator: RunningServer) -> AsyncIterator[openai.AsyncAzureOpenAI]:
    async with azure_client(simulator) as client:
        yield client


@pytest.fixture
async def v1(simulator: RunningServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with v1_client(simulator) as client:
        yield client


def azure_client(server: RunningServer, **options: Any) -> openai.AsyncAzureOpenAI:
    return openai.AsyncAzureOpenAI(
        azure_endpoint=server.url, api_key="x", api_version=API_VERSION, max_retries=0, **options
    )


def v1_client(server: RunningServer, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/openai/v1", api_key="x", max_retries=0, **options)


def long_messages(topic: str, words: int = 1500) -> list[ChatCompletionMessageParam]:
    document = " ".join(f"{topic} line {i} of the shared context." for i in range(words // 6))
    return [{"role": "system", "content": document}, {"role": "user", "content": "What changed?"}]


@pytest.mark.parametrize(
    ("deployment", "encoding", "model"),
    [
        ("gpt-5.6-sol", "o200k_base", "gpt-5.6-sol-2026-07-09"),
        ("gpt-35-turbo", "cl100k_base", "gpt-35-turbo"),
    ],
)
async def test_azure_client_usage_matches_real_token_counts(
    azure: openai.AsyncAzureOpenAI, deployment: str, encoding: str, model: str
) -> None:
    raw = await azure.chat.completions.with_raw_response.create(model=deployment, messages=MESSAGES)
    completion = raw.parse()
    content = completion.choices[0].message.content
    assert content
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_chat_prompt_tokens(MESSAGES, encoding)
    details = completion.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens is not None
    # Reasoning models bill hidden reasoning inside completion_tokens (default effort: medium).
    assert (details.reasoning_tokens > 0) == (deployment == "gpt-5.6-sol")
    assert completion.usage.completion_tokens == count_text_tokens(content, encoding) + details.reasoning_tokens
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == model
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    assert raw.headers["x-ms-region"] == "West Europe"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) >= 0
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) >= 0


async def test_v1_client_takes_deployment_from_model_and_replies_deterministically(
    v1: openai.AsyncOpenAI,
) -> None:
    client = v1
    first = await client.chat.completions.create(model="gpt-5.6-luna", messages=MESSAGES)
    again = await client.chat.completions.create(model="gpt-5.6-luna", messages=MESSAGES)
    other = await client.chat.completions.create(
        model="gpt-5.6-luna", messages=[{"role": "user", "content": "Something else entirely"}]
    )
    assert first.model == "gpt-5.6-luna-2026-07-09"
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.usage is not None and first.usage.completion_tokens_details is not None
    assert first.usage.completion_tokens == count_text_tokens(
        first.choices[0].message.content or "", "o200k_base"
    ) + (first.usage.completion_tokens_details.reasoning_tokens or 0)


async def test_stream_with_include_usage_ends_with_one_usage_chunk(azure: openai.AsyncAzureOpenAI) -> None:
    stream = await azure.chat.completions.create(
        model="gpt-5.6-sol",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={COMPLETION_TOKENS_HEADER: "120"},
    )
    chunks = [chunk async for chunk in stream]
    *content_chunks, usage_chunk = chunks
    assert content_chunks[0].choices[0].delta.role == "assistant"
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in content_chunks)
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    text = "".join(chunk.choices[0].delta.content or "" for chunk in content_chunks)
    details = usage_chunk.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens
    # The stream carries the visible text only; the usage chunk bills the hidden reasoning too.
    assert count_text_tokens(text, "o200k_base") == 120
    assert usage_chunk.usage.completion_tokens == 120 + details.reasoning_tokens
    assert usage_chunk.usage.prompt_tokens == count_chat_prompt_tokens(MESSAGES, "o200k_base")
    # Several content chunks: the reply really is streamed, not sent as one delta.
    assert len(content_chunks) > 3
    assert len({chunk.id for chunk in chunks}) == 1


async def test_stream_without_include_usage_has_no_usage_anywhere(simulator: RunningServer) -> None:
    url = f"{simulator.url}/openai/deployments/gpt-5.6-luna/chat/completions?api-version={API_VERSION}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"messages": MESSAGES, "stream": True}, headers={"api-key": "x"}) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        body = (await response.read()).decode()
    events = [block.removeprefix("data: ") for block in body.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all("usage" not in chunk for chunk in chunks)
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("limit_param", "deployment"),
    [
        ("max_tokens", "gpt-35-turbo"),
        ("max_completion_tokens", "gpt-35-turbo"),
        ("max_completion_tokens", "gpt-5.6-sol"),
    ],
)
async def test_token_limit_caps_reply_with_finish_reason_length(
    azure: openai.AsyncAzureOpenAI, limit_param: str, deployment: str
) -> None:
    # No reasoning here: the limit's effect on the visible reply alone (reasoning within the limit
    # has its own test).
    reasoning = {"reasoning_effort": "none"} if deployment.startswith("gpt-5") else {}
    completion = await azure.chat.completions.create(
        model=deployment,
        messages=MESSAGES,
        extra_headers={COMPLETION_TOKENS_HEADER: "50"},
        extra_body={limit_param: 7, **reasoning},
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    assert count_text_tokens(completion.choices[0].message.content or "", "o200k_base") == 7


async def test_repeated_long_prefix_reports_cached_tokens_like_azure(azure: openai.AsyncAzureOpenAI) -> None:
    prompt = long_messages("budget")

    async def cached_tokens(deployment: str, messages: list[ChatCompletionMessageParam]) -> tuple[int, int]:
        completion = await azure.chat.completions.create(model=deployment, messages=messages, max_completion_tokens=5)
        assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
        return completion.usage.prompt_tokens_details.cached_tokens or 0, completion.usage.prompt_tokens

    first, prompt_tokens = await cached_tokens("gpt-5.6-sol", prompt)
    assert prompt_tokens >= 1200
    second, _ = await cached_tokens("gpt-5.6-sol", prompt)
    follow_up: list[ChatCompletionMessageParam] = [
        *prompt,
        {"role": "assistant", "content": "Nothing."},
        {"role": "user", "content": "Sure?"},
    ]
    extended, extended_prompt_tokens = await cached_tokens("gpt-5.6-sol", follow_up)
    unrelated, _ = await cached_tokens("gpt-5.6-sol", long_messages("invoice"))
    other_deployment, _ = await cached_tokens("gpt-5.6-luna", prompt)
    no_caching_model = [await cached_tokens("gpt-35-turbo", prompt) for _ in range(2)]

    assert first == 0
    assert second % 128 == 0 and 1024 <= second <= prompt_tokens
    assert second > prompt_tokens - 128 - 8  # nearly all of an identical prompt is served from cache
    assert second <= extended <= extended_prompt_tokens
    assert unrelated == 0
    assert other_deployment == 0
    assert [cached for cached, _ in no_caching_model] == [0, 0]


async def test_forced_429_carries_retry_after_and_azure_body(azure: openai.AsyncAzureOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await azure.chat.completions.create(
            model="gpt-5.6-sol", messages=MESSAGES, extra_headers={FAULT_HEADER: "429"}
        )
    assert caught.value.status_code == 429
    assert int(caught.value.response.headers["retry-after"]) == 1
    assert caught.value.response.json()["error"]["code"] == "429"


async def test_forced_500_is_a_server_error(v1: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await v1.chat.completions.create(
            model="gpt-5.6-sol", messages=MESSAGES, extra_headers={FAULT_HEADER: "500"}
        )
    assert caught.value.status_code == 500


async def test_truncated_stream_breaks_without_done_or_usage(azure: openai.AsyncAzureOpenAI) -> None:
    stream = await azure.chat.completions.create(
        model="gpt-5.6-sol",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={FAULT_HEADER: "truncate", COMPLETION_TOKENS_HEADER: "100"},
    )
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    assert received, "the stream should start before it is cut"
    assert all(chunk.usage is None for chunk in received)
    assert all(choice.finish_reason is None for chunk in received for choice in chunk.choices)


async def test_truncated_json_reply_is_a_connection_error(azure: openai.AsyncAzureOpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        await azure.chat.completions.create(
            model="gpt-5.6-sol", messages=MESSAGES, extra_headers={FAULT_HEADER: "truncate"}
        )


async def test_stalled_stream_times_out_on_the_client(simulator: RunningServer) -> None:
    received: list[Any] = []
    async with azure_client(simulator, timeout=openai.Timeout(5.0, read=0.5)) as client:
        stream = await client.chat.completions.create(
            model="gpt-5.6-sol",
            messages=MESSAGES,
            stream=True,
            extra_headers={FAULT_HEADER: "stall", COMPLETION_TOKENS_HEADER: "100"},
        )
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            async for chunk in stream:
                received.append(chunk)
        waited_seconds = time.monotonic() - started
    assert received, "a stall happens after the stream has started"
    assert 0.4 <= waited_seconds < 4.0


async def test_server_stops_promptly_while_a_response_is_stalled() -> None:
    server = await start_simulator(fast_config())
    async with azure_client(server, timeout=60.0) as client:
        call = asyncio.create_task(
            client.chat.completions.create(
                model="gpt-5.6-sol", messages=MESSAGES, extra_headers={FAULT_HEADER: "stall"}
            )
        )
        await asyncio.sleep(0.3)
        assert not call.done()
        started = time.monotonic()
        await server.stop()
        assert time.monotonic() - started < 2.0
        with pytest.raises(openai.APIConnectionError):
            await call


async def test_configured_fault_rates_are_seeded_and_can_be_shielded() -> None:
    async def outcomes(seed: int, shield: bool = False) -> list[int]:
        faults = dataclasses.replace(fast_config().faults, rate_500=0.5)
        server = await start_simulator(fast_config(faults=faults, seed=seed))
        headers = {"api-key": "x", FAULT_HEADER: "none"} if shield else {"api-key": "x"}
        url = f"{server.url}/openai/v1/chat/completions"
        statuses = []
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(16):
                    body = {"model": "gpt-5.6-sol", "messages": MESSAGES, "max_completion_tokens": 2}
                    async with session.post(url, json=body, headers=headers) as response:
                        statuses.append(response.status)
        finally:
            await server.stop()
        return statuses

    first = await outcomes(seed=7)
    assert first == await outcomes(seed=7)
    assert set(first) == {200, 500}
    assert first != await outcomes(seed=8)
    assert set(await outcomes(seed=7, shield=True)) == {200}


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        (
            f"/openai/deployments/nope/chat/completions?api-version={API_VERSION}",
            {"api-key": "x"},
            404,
            "DeploymentNotFound",
        ),
        (f"/openai/deployments/gpt-5.6-sol/chat/completions?api-version={API_VERSION}", {}, 401, "401"),
        (
            f"/openai/deployments/gpt-5.6-sol/chat/completions?api-version={API_VERSION}",
            {"Authorization": "Bearer "},
            401,
            "401",
        ),
        # Azure answers a missing api-version with 404 "Resource not found", not 400.
        ("/openai/deployments/gpt-5.6-sol/chat/completions", {"api-key": "x"}, 404, "404"),
        ("/openai/v1/chat/completions", {"api-key": "x"}, 400, None),  # no model in the body
        (
            f"/openai/deployments/gpt-5.6-sol/chat/completions?api-version={API_VERSION}",
            {"api-key": "x", FAULT_HEADER: "boom"},
            400,
            None,
        ),
    ],
)
async def test_errors_have_azure_status_and_body(
    simulator: RunningServer, path: str, headers: dict[str, str], status: int, code: str | None
) -> None:
    body = {"messages": MESSAGES}
    async with (
        aiohttp.ClientSession() as session,
        session.post(simulator.url + path, json=body, headers=headers) as response,
    ):
        assert response.status == status
        error = (await response.json())["error"]
    assert error["code"] == code
    assert error["message"]


async def test_unknown_deployment_via_sdk_is_not_found(azure: openai.AsyncAzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await azure.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert caught.value.response.json()["error"]["code"] == "DeploymentNotFound"


async def test_bearer_token_is_accepted(simulator: RunningServer) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=simulator.url, azure_ad_token="managed-identity-token", api_version=API_VERSION
    ) as client:
        completion = await client.chat.completions.create(
            model="gpt-5.6-sol", messages=MESSAGES, max_completion_tokens=3
        )
    assert completion.usage is not None and completion.usage.completion_tokens == 3


async def test_streams_are_paced_by_time_to_first_token_and_tokens_per_second() -> None:
    server = await start_simulator(fast_config(time_to_first_token_ms=200, tokens_per_second=1000))
    try:
        async with azure_client(server) as client:
            stream = await client.chat.completions.create(
                model="gpt-5.6-sol",
                messages=MESSAGES,
                stream=True,
                reasoning_effort="none",  # no hidden reasoning ahead of the first token
                extra_headers={COMPLETION_TOKENS_HEADER: "300"},
            )
            started = time.monotonic()
            arrivals = [
                time.monotonic() - started
                async for chunk in stream
                if chunk.choices and chunk.choices[0].delta.content
            ]
    finally:
        await server.stop()
    assert 0.15 <= arrivals[0] < 0.35
    # 300 tokens at 1000/s: about 0.3 s between first and last content chunk.
    assert 0.2 <= arrivals[-1] - arrivals[0] < 0.6


def test_prompt_cache_is_bounded_and_forgets_after_ttl() -> None:
    now = [0.0]
    cache = PromptPrefixCache(max_entries=8, ttl_seconds=60, clock=lambda: now[0])
    prompt = list(range(1024 + 3 * 128 + 5))
    assert cache.lookup_and_remember("d", prompt) == 0
    assert cache.lookup_and_remember("d", prompt) == 1024 + 3 * 128
    assert cache.lookup_and_remember("d", prompt[:1100]) == 1024
    for other in range(3):
        cache.lookup_and_remember("d", [other + 10**6, *prompt])
    assert len(cache) == 8
    assert cache.lookup_and_remember("d", prompt) == 0  # evicted by the newer prompts
    now[0] = 61.0
    assert cache.lookup_and_remember("d", prompt) == 0  # seen just now, but expired by time


@pytest.mark.parametrize("key_header", ["api-key", "Ocp-Apim-Subscription-Key"])
async def test_with_local_auth_disabled_a_key_header_is_refused_even_beside_a_bearer_token(key_header: str) -> None:
    server = await start_simulator(fast_config(disable_local_auth=True))
    url = f"{server.url}/openai/deployments/gpt-5.6-sol/chat/completions?api-version={API_VERSION}"
    try:
        async with aiohttp.ClientSession() as session:
            bearer = {"Authorization": "Bearer entra-token"}
            async with session.post(url, json={"messages": MESSAGES}, headers=bearer) as response:
                assert response.status == 200
            async with session.post(url, json={"messages": MESSAGES}, headers={**bearer, key_header: "k"}) as response:
                assert response.status == 403
                assert (await response.json())["error"]["code"] == "AuthenticationTypeDisabled"
    finally:
        await server.stop()


async def test_reasoning_tokens_are_billed_hidden_and_bounded_by_max_completion_tokens(
    azure: openai.AsyncAzureOpenAI,
) -> None:
    async def usage(**options: Any) -> tuple[str, int, int, str]:
        completion = await azure.chat.completions.create(
            model="gpt-5.6-sol", messages=MESSAGES, extra_headers={COMPLETION_TOKENS_HEADER: "40"}, **options
        )
        assert completion.usage is not None and completion.usage.completion_tokens_details is not None
        reasoning = completion.usage.completion_tokens_details.reasoning_tokens or 0
        text = completion.choices[0].message.content or ""
        return text, completion.usage.completion_tokens, reasoning, completion.choices[0].finish_reason

    text, total, reasoning, _ = await usage()  # the default effort, medium
    assert count_text_tokens(text, "o200k_base") == 40 and reasoning >= 20 and total == 40 + reasoning
    assert (await usage(reasoning_effort="none"))[1:3] == (40, 0)
    assert (await usage(reasoning_effort="high"))[2] > reasoning
    # max_completion_tokens bounds reasoning and visible text together: reasoning can use it all.
    text, total, reasoning, finish = await usage(reasoning_effort="high", max_completion_tokens=10)
    assert (text, total, reasoning, finish) == ("", 10, 10, "length")
    with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
        await usage(reasoning_effort="extreme")
    with pytest.raises(openai.BadRequestError, match="not supported with this model"):
        await azure.chat.completions.create(model="gpt-35-turbo", messages=MESSAGES, reasoning_effort="low")


async def test_reasoning_models_refuse_max_tokens_and_take_max_completion_tokens(
    azure: openai.AsyncAzureOpenAI,
) -> None:
    # azure-ai-docs articles/foundry/openai/how-to/reasoning.md: reasoning models "will only work
    # with the max_completion_tokens parameter"; max_tokens is "currently unsupported".
    with pytest.raises(openai.BadRequestError, match="max_completion_tokens") as refused:
        await azure.chat.completions.create(model="gpt-5.6-luna", messages=MESSAGES, max_tokens=4)
    assert refused.value.param == "max_tokens"  # type: ignore[attr-defined]
    assert refused.value.code == "unsupported_parameter"
    completion = await azure.chat.completions.create(model="gpt-5.6-luna", messages=MESSAGES, max_completion_tokens=4)
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    # Older chat models still take max_tokens.
    legacy = await azure.chat.completions.create(model="gpt-35-turbo", messages=MESSAGES, max_tokens=4)
    assert legacy.usage is not None and legacy.usage.completion_tokens == 4


async def test_the_account_keeps_its_meters_across_a_restart_in_its_meters_file(tmp_path: Path) -> None:
    meters_file = tmp_path / "meters.json"
    served = 0
    for _ in range(2):  # two starts of the same data directory
        server = await start_simulator(fast_config(), meters_file=meters_file)
        try:
            async with azure_client(server) as client:
                completion = await client.chat.completions.create(
                    model="gpt-5.6-luna", messages=MESSAGES, max_completion_tokens=4
                )
            assert completion.usage is not None
            served += completion.usage.prompt_tokens + completion.usage.completion_tokens
            meters = meters_of(server).records()
        finally:
            await server.stop()
    assert sum(record.prompt_tokens + record.generated_tokens for record in meters) == served
    assert sum(record.requests for record in meters) == 2
    assert read_meters_file(meters_file) == meters  # written at the stop


def test_config_loads_shipped_stack_config_and_rejects_typos() -> None:
    config = load_simulator_config(STACK_CONFIG)
    assert config.disable_local_auth  # as infra/app/ai.bicep's disableLocalAuth
    assert set(config.deployments) == {"gpt-5.6-luna", "gpt-5.6-sol", "gpt-5.6-terra"}
    for deployment in config.deployments.values():  # the gpt-5 family: o200k_base, prompt caching
        assert (deployment.encoding_name, deployment.prompt_caching) == ("o200k_base", True), deployment.name
        assert deployment.response_model == f"{deployment.name}-2026-07-09"
    legacy = fast_config().deployments["gpt-35-turbo"]
    assert (legacy.encoding_name, legacy.prompt_caching) == ("cl100k_base", False)
    assert legacy.response_model == "gpt-35-turbo"  # numbered versions are not appended
    raw = json.loads(STACK_CONFIG.read_text())
    with pytest.raises(ValueError, match="latncy_ms"):
        simulator_config_from_mapping({**raw, "simulator": {**raw["simulator"], "latncy_ms": 5}})
    with pytest.raises(ValueError, match="fault rates"):
        simulator_config_from_mapping({**raw, "simulator": {"faults": {"rate_429": 0.8, "rate_500": 0.5}}})


@pytest.fixture
def simulator_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "standins.simulator", "--config", str(STACK_CONFIG), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:"), line
        yield process, line.removeprefix("READY ")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_serves_sync_sdk_and_stops_on_sigterm(
    simulator_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = simulator_process
    # The shipped config disables local auth (as infra does): a bearer token, not a key.
    with openai.AzureOpenAI(
        azure_endpoint=url, azure_ad_token="entra-token", api_version=API_VERSION, max_retries=0
    ) as client:
        completion = client.chat.completions.create(model="gpt-5.6-luna", messages=MESSAGES, max_completion_tokens=4)
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
