"""The Azure OpenAI model simulator's HTTP surface: routes, auth, validation, Azure headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from standins._server import RunningServer, start_app
from standins.simulator import payloads
from standins.simulator.completion import COMPLETION_TOKENS_HEADER, CompletionPlanner, InvalidRequest
from standins.simulator.config import DeploymentConfig, SimulatorConfig
from standins.simulator.delivery import Delivery
from standins.simulator.faults import FAULT_HEADER, Fault, FaultPicker
from standins.simulator.meters import TokenMeters, read_meters_file, records_json, write_meters_file
from standins.simulator.quota import MinuteQuota

# The v1 surface has no api-version of its own; echoed in 429 messages like Azure does.
_V1_API_VERSION = "v1"
# How often the meters file is brought up to date (and once more at shutdown).
METERS_SAVE_SECONDS = 10.0


@dataclass
class _Simulator:
    config: SimulatorConfig
    planner: CompletionPlanner
    faults: FaultPicker
    quota: MinuteQuota
    delivery: Delivery
    closing: asyncio.Event
    meters: TokenMeters


_SIMULATOR = web.AppKey("simulator", _Simulator)


# Azure AI services take a key in either header (https://learn.microsoft.com/azure/ai-services/authentication).
KEY_HEADERS = ("api-key", "Ocp-Apim-Subscription-Key")


def _authorized(request: web.Request) -> bool:
    # Any non-empty key or bearer token passes: the gateway authenticates with managed identity.
    if any(request.headers.get(header, "").strip() for header in KEY_HEADERS):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _key_refused(request: web.Request, config: SimulatorConfig) -> bool:
    """With local auth disabled any key header fails the call, even beside a bearer token: a gateway
    that forwards its subscription key (APIM does unless the policy deletes it) is caught here."""
    return config.disable_local_auth and any(header in request.headers for header in KEY_HEADERS)


async def _json_body(request: web.Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _azure_headers(request: web.Request, simulator: _Simulator, deployment: str) -> dict[str, str]:
    request_id = str(uuid.uuid4())
    headers = {
        "apim-request-id": request_id,
        "x-request-id": request_id,
        "x-ms-region": simulator.config.region,
        "x-ms-deployment-name": deployment,
    }
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id:
        headers["x-ms-client-request-id"] = client_request_id
    return headers


async def _chat_completions(
    request: web.Request, deployment_name: str | None, api_version: str
) -> web.StreamResponse:
    simulator = request.app[_SIMULATOR]
    if _key_refused(request, simulator.config):
        return payloads.key_auth_disabled()
    if not _authorized(request):
        return payloads.unauthorized()
    try:
        body = await _json_body(request)
        if deployment_name is None:
            model = body.get("model")
            if not isinstance(model, str) or not model:
                raise InvalidRequest("'model' (the deployment name) is required.", "model")
            deployment_name = model
        deployment = simulator.config.deployments.get(deployment_name)
        if deployment is None:
            return payloads.deployment_not_found()
        fault = simulator.faults.pick(request.headers.get(FAULT_HEADER))
        headers = _azure_headers(request, simulator, deployment_name)
        if fault is Fault.TOO_MANY_REQUESTS:
            return payloads.too_many_requests(
                api_version, simulator.config.faults.retry_after_seconds, headers
            )
        completion = simulator.planner.plan(deployment, body, request.headers.get(COMPLETION_TOKENS_HEADER))
    except InvalidRequest as error:
        return payloads.bad_request(str(error), error.param, error.code)
    except ValueError as error:  # an unknown x-sim-fault value
        return payloads.bad_request(str(error))
    headers.update(_quota_headers(simulator, deployment, completion.prompt_tokens, body))
    if fault is Fault.SERVER_ERROR:
        await asyncio.sleep(simulator.config.latency_ms / 1000)
        return payloads.server_error(headers)
    response = await simulator.delivery.send(request, completion, fault, headers)
    # The account meters what it generated, whoever called and whether or not the client read it all.
    simulator.meters.record(
        deployment.name, completion.prompt_tokens, completion.completion_tokens, completion.cached_tokens
    )
    return response


def _quota_headers(
    simulator: _Simulator, deployment: DeploymentConfig, prompt_tokens: int, body: Mapping[str, Any]
) -> dict[str, str]:
    # Azure charges the rate limit with the prompt plus the most the reply may use.
    reserved = (
        body.get("max_completion_tokens") or body.get("max_tokens") or simulator.config.default_max_tokens
    )
    return simulator.quota.consume(deployment.name, prompt_tokens + int(reserved))


async def _deployment_route(request: web.Request) -> web.StreamResponse:
    api_version = request.query.get("api-version", "")
    if not api_version:
        # Azure answers a missing api-version with 404 "Resource not found" (not 400).
        if _key_refused(request, request.app[_SIMULATOR].config):
            return payloads.key_auth_disabled()
        return payloads.resource_not_found() if _authorized(request) else payloads.unauthorized()
    return await _chat_completions(request, request.match_info["deployment"], api_version)


async def _v1_route(request: web.Request) -> web.StreamResponse:
    return await _chat_completions(request, None, request.query.get("api-version", _V1_API_VERSION))


async def _not_found(request: web.Request) -> web.StreamResponse:
    return payloads.resource_not_found()


async def _meters(request: web.Request) -> web.Response:
    """The account's token meters (standins/simulator/meters.py), for the ARM stand-in's metrics API."""
    return web.json_response(records_json(request.app[_SIMULATOR].meters.records()))


def create_app(
    config: SimulatorConfig, meters: TokenMeters | None = None, *, meters_file: Path | None = None
) -> web.Application:
    """`meters_file`: where the account's meters persist (standins/simulator/meters.py): read at start, kept
    current every METERS_SAVE_SECONDS and at shutdown."""
    app = web.Application()
    closing = asyncio.Event()
    app[_SIMULATOR] = _Simulator(
        config=config,
        planner=CompletionPlanner(config),
        faults=FaultPicker(config.faults, config.seed),
        quota=MinuteQuota(
            tokens_per_minute=config.tokens_per_minute, requests_per_minute=config.requests_per_minute
        ),
        delivery=Delivery(config, closing),
        closing=closing,
        meters=meters or TokenMeters(),
    )

    async def on_shutdown(_: web.Application) -> None:
        closing.set()

    app.on_shutdown.append(on_shutdown)
    if meters_file is not None:
        app.cleanup_ctx.append(_persisted(app[_SIMULATOR].meters, meters_file))
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", _deployment_route)
    app.router.add_post("/openai/v1/chat/completions", _v1_route)
    app.router.add_get("/_standin/meters", _meters)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


def _persisted(meters: TokenMeters, path: Path) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context: the file's counters in, then the file kept current until cleanup."""

    async def persist(_: web.Application) -> AsyncIterator[None]:
        meters.add(read_meters_file(path))
        saved = meters.changes

        async def save_now() -> None:
            nonlocal saved
            if meters.changes != saved:
                saved = meters.changes
                await asyncio.to_thread(write_meters_file, path, meters.records())

        async def keep_saving() -> None:
            while True:
                await asyncio.sleep(METERS_SAVE_SECONDS)
                await save_now()

        task = asyncio.get_running_loop().create_task(keep_saving(), name="meters-file")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await save_now()

    return persist


async def start_simulator(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    meters: TokenMeters | None = None,
    meters_file: Path | None = None,
) -> RunningServer:
    """Serve the simulator; clients use ``.url`` as azure_endpoint (or ``.url + "/openai/v1"``). ``meters``:
    the account's token meters (tests pass their own, with a clock; see meters_of); ``meters_file``: where they
    persist."""
    return await start_app(create_app(config, meters, meters_file=meters_file), host=host, port=port)


def meters_of(server: RunningServer) -> TokenMeters:
    return server.runner.app[_SIMULATOR].meters
