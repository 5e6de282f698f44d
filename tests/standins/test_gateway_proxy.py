"""The gateway stand-in as clients see it: APIM keys and errors, forwarding, streaming, over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from openai import AsyncAzureOpenAI, AzureOpenAI
from openai.types.chat import ChatCompletionMessageParam

from standins._server import start_app
from standins.gateway import start_gateway
from standins.gateway.pair import GatewayPair, start_gateway_pair
from tests import ROOT

FAST_SIMULATOR = {"latency_ms": 0.0, "time_to_first_token_ms": 0.0, "tokens_per_second": 50_000.0}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello to the gateway."}]
MISSING_KEY = {
    "statusCode": 401,
    "message": "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API.",
}
INVALID_KEY = {
    "statusCode": 401,
    "message": "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription.",
}
NOT_FOUND = {"statusCode": 404, "message": "Resource not found"}


@pytest.fixture
async def pair() -> AsyncIterator[GatewayPair]:
    running = await start_gateway_pair(simulator_settings=FAST_SIMULATOR)
    yield running
    await running.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _chat_url(pair: GatewayPair, deployment: str = "gpt-5.6-luna") -> str:
    return f"{pair.inference_url}/openai/deployments/{deployment}/chat/completions"


def _key(pair: GatewayPair) -> str:
    return pair.keys["team-research"]


def _sdk(pair: GatewayPair, key: str | None = None) -> AsyncAzureOpenAI:
    """The openai SDK pointed at the gateway, without its own retries (the tests see every answer)."""
    return AsyncAzureOpenAI(
        azure_endpoint=pair.inference_url,
        api_key=key or _key(pair),
        api_version=pair.config.api_version,
        max_retries=0,
    )


async def test_missing_key_is_refused_with_the_apim_body(
    pair: GatewayPair, http: aiohttp.ClientSession
) -> None:
    params = {"api-version": pair.config.api_version}
    async with http.post(_chat_url(pair), params=params, json={"messages": MESSAGES}) as response:
        assert response.status == 401
        assert await response.json() == MISSING_KEY


async def test_unknown_key_is_refused_with_the_apim_body(
    pair: GatewayPair, http: aiohttp.ClientSession
) -> None:
    params = {"api-version": pair.config.api_version}
    headers = {"api-key": "not-a-key"}
    async with http.post(
        _chat_url(pair), params=params, headers=headers, json={"messages": MESSAGES}
    ) as response:
        assert response.status == 401
        assert await response.json() == INVALID_KEY


@pytest.mark.parametrize("where", ["api-key header", "Ocp-Apim-Subscription-Key header", "api-key query"])
async def test_every_key_location_is_accepted(
    where: str, pair: GatewayPair, http: aiohttp.ClientSession
) -> None:
    params = {"api-version": pair.config.api_version}
    headers = {}
    name = where.split()[0]
    if where.endswith("query"):
        params[name] = _key(pair)
    else:
        headers[name] = _key(pair)
    async with http.post(
        _chat_url(pair), params=params, headers=headers, json={"messages": MESSAGES}
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["object"] == "chat.completion"
    assert body["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/other-api/deployments/gpt-5.6-sol/chat/completions"),
        ("GET", "/inference/openai/deployments/gpt-5.6-sol/chat/completions"),
        ("POST", "/inference/openai/deployments/gpt-5.6-sol/images/generations"),
    ],
)
async def test_unknown_paths_are_apim_404s(
    method: str, path: str, pair: GatewayPair, http: aiohttp.ClientSession
) -> None:
    async with http.request(method, pair.gateway.url + path, headers={"api-key": _key(pair)}) as response:
        assert response.status == 404
        assert await response.json() == NOT_FOUND


async def test_openai_sdk_through_the_gateway(pair: GatewayPair) -> None:
    """The lab's client code, unchanged: AzureOpenAI pointed at {gateway}/inference."""

    def call() -> Any:
        client = AzureOpenAI(
            azure_endpoint=pair.inference_url,
            api_key=_key(pair),
            api_version=pair.config.api_version,
            max_retries=0,
        )
        with client:
            return client.chat.completions.create(model="gpt-5.6-sol", messages=MESSAGES)

    completion = await asyncio.to_thread(call)
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_raw_http_like_the_lab_notebook(pair: GatewayPair, http: aiohttp.ClientSession) -> None:
    url = f"{_chat_url(pair, 'gpt-5.6-terra')}?api-version={pair.config.api_version}"
    headers = {"api-key": _key(pair), "x-user-id": "alice", "x-sim-completion-tokens": "7"}
    body = {"messages": MESSAGES, "max_completion_tokens": 50}  # a reasoning model: max_tokens is refused
    async with http.post(url, headers=headers, json=body) as response:
        assert response.status == 200
        body = await response.json()
    # The simulator honoured x-sim-completion-tokens, so test headers reach the backend (7 visible
    # tokens; a reasoning model adds its hidden reasoning).
    reasoning = body["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert body["usage"]["completion_tokens"] == 7 + reasoning


async def test_backend_errors_pass_through(pair: GatewayPair, http: aiohttp.ClientSession) -> None:
    headers = {"api-key": _key(pair), "x-sim-fault": "429"}
    params = {"api-version": pair.config.api_version}
    async with http.post(
        _chat_url(pair), params=params, headers=headers, json={"messages": MESSAGES}
    ) as response:
        assert response.status == 429
        assert "Retry-After" in response.headers or "retry-after-ms" in response.headers
        assert "error" in await response.json()


async def test_the_sdk_sees_backend_errors_as_the_backend_sent_them(pair: GatewayPair) -> None:
    client = _sdk(pair)
    async with client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(
                model="gpt-5.6-sol",
                messages=MESSAGES,
                extra_headers={"x-sim-fault": "500"},
            )


async def test_v1_route_is_not_an_operation_of_the_api(pair: GatewayPair, http: aiohttp.ClientSession) -> None:
    """policy.xml's Deployment dimension reads MatchedParameters["deployment-id"], which the v1 path has
    not, so the API offers only the deployments paths; an unmatched operation is APIM's 404."""
    url = f"{pair.inference_url}/openai/v1/chat/completions"
    body = {"model": "gpt-5.6-sol", "messages": MESSAGES}
    async with http.post(url, headers={"api-key": _key(pair)}, json=body) as response:
        assert response.status == 404
        payload = await response.json()
    assert payload == {"statusCode": 404, "message": "Resource not found"}


async def test_stream_chunks_reach_the_client_before_the_backend_finishes() -> None:
    # 400 tokens at 200 tokens/s: the backend needs about two seconds for the whole stream.
    slow = {"latency_ms": 0.0, "time_to_first_token_ms": 0.0, "tokens_per_second": 200.0}
    running = await start_gateway_pair(simulator_settings=slow)
    try:
        client = _sdk(running, running.keys["team-support"])
        async with client:
            started = time.monotonic()
            stream = await client.chat.completions.create(
                model="gpt-5.6-sol",
                messages=MESSAGES,
                stream=True,
                max_completion_tokens=400,
                reasoning_effort="none",  # no hidden reasoning ahead of the first token
                extra_headers={"x-sim-completion-tokens": "400"},
            )
            first_content_at = None
            async for chunk in stream:
                if first_content_at is None and chunk.choices and chunk.choices[0].delta.content:
                    first_content_at = time.monotonic() - started
            finished_at = time.monotonic() - started
    finally:
        await running.stop()
    assert first_content_at is not None
    assert finished_at > 1.5, f"the backend was expected to take ~2 s, took {finished_at:.2f}s"
    assert first_content_at < 0.5, (
        f"first chunk after {first_content_at:.2f}s of {finished_at:.2f}s: buffered"
    )


async def test_a_stream_cut_by_the_backend_is_cut_for_the_client(pair: GatewayPair) -> None:
    client = _sdk(pair)
    async with client:
        stream = await client.chat.completions.create(
            model="gpt-5.6-sol",
            messages=MESSAGES,
            stream=True,
            extra_headers={"x-sim-fault": "truncate", "x-sim-completion-tokens": "50"},
        )
        with pytest.raises(openai.APIError):
            async for _chunk in stream:
                pass


# --- What exactly reaches the backend: an echo backend shows the forwarded request. ---


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "path": request.path,
            "query": dict(request.query),
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "body": json.loads(await request.read()),
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
        headers={"x-backend": "echo"},
    )


async def _echoed(pair: GatewayPair, http: aiohttp.ClientSession, **settings: Any) -> dict[str, Any]:
    """What the backend receives for one call with the key in header and query (an echo backend)."""
    echo_app = web.Application()
    echo_app.router.add_route("*", "/{tail:.*}", _echo)
    echo = await start_app(echo_app)
    backend_id = next(iter(pair.config.backends))
    config = dataclasses.replace(pair.config, backends={backend_id: echo.url}, **settings)
    gateway = await start_gateway(config)
    try:
        url = f"{gateway.url}/inference/openai/deployments/gpt-5.6-sol/chat/completions"
        params = {"api-version": "2024-10-21", "api-key": _key(pair), "extra": "1"}
        headers = {"x-user-id": "bob", "x-sim-fault": "none", "Ocp-Apim-Subscription-Key": _key(pair)}
        async with http.post(url, params=params, headers=headers, json={"messages": MESSAGES}) as response:
            assert response.status == 200
            assert response.headers["x-backend"] == "echo"
            seen: dict[str, Any] = await response.json()
            return seen
    finally:
        await gateway.stop()
        await echo.stop()


async def test_without_the_policy_deletes_the_subscription_key_reaches_the_backend(
    pair: GatewayPair, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # APIM forwards the key (header and query) unless the policy deletes it: the stand-in too.
    text = (ROOT / "policy.xml").read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if 'exists-action="delete"' not in line]
    assert len(kept) == len(text.splitlines()) - 3
    policy = tmp_path / "policy-keeps-key.xml"
    policy.write_text("\n".join(kept), encoding="utf-8")
    seen = await _echoed(pair, http, policy_file=policy)
    assert seen["query"]["api-key"] == _key(pair)
    assert seen["headers"]["ocp-apim-subscription-key"] == _key(pair)


async def test_forwarded_request_is_what_apim_sends(pair: GatewayPair, http: aiohttp.ClientSession) -> None:
    seen = await _echoed(pair, http)
    config = pair.config
    assert seen["path"] == "/openai/deployments/gpt-5.6-sol/chat/completions"
    assert seen["query"] == {"api-version": "2024-10-21", "extra": "1"}
    forwarded = seen["headers"]
    assert forwarded["authorization"] == f"Bearer {config.managed_identity_token}"
    assert forwarded["x-user-id"] == "bob"
    assert forwarded["x-sim-fault"] == "none"
    assert forwarded["x-forwarded-for"] == "127.0.0.1"
    assert "api-key" not in forwarded and "ocp-apim-subscription-key" not in forwarded
    assert seen["body"] == {"messages": MESSAGES}
