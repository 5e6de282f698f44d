"""The gateway: authenticates subscription keys, runs policy.xml and proxies to the backend.

One pooled ClientSession serves every request; the policy is compiled once at start; streamed
responses are relayed chunk by chunk as they arrive and their tokens counted after the fact.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, MultiDict
from yarl import URL

from standins._server import RunningServer, start_app
from standins.chaos import Chaos
from standins.gateway.config import BypassConfig, GatewayConfig, GatewayConfigError, SubscriptionConfig
from standins.gateway.context import ExpressionError, GatewayIdentity, RequestContext
from standins.gateway.executor import run_inbound, run_outbound
from standins.gateway.metrics import Clock, MetricsExporter, utc_now
from standins.gateway.operations import API_ID, BACKEND_PATH, MatchedOperation, is_api_path, match_operation
from standins.gateway.policy import LLM_EMIT, CompiledPolicy, compile_policy
from standins.gateway.sinks import AppInsightsTrackSink, InMemorySink, MetricSink
from standins.gateway.usage import StreamRecorder, TokenUsage, UsageEstimator, usage_from_body
from standins.tokenizer import encoding_name_for_model, get_encoding

log = logging.getLogger(__name__)

SUBSCRIPTION_HEADERS = ("api-key", "Ocp-Apim-Subscription-Key")
SUBSCRIPTION_QUERY = "api-key"
# What each emit element sends. azure-openai-emit-token-metric: "Total Tokens, Prompt Tokens, and
# Completion Tokens" (https://learn.microsoft.com/azure/api-management/azure-openai-emit-token-metric-policy).
# llm-emit-token-metric: the same, and "in preview ... cached, reasoning, thinking, and other token
# categories" (.../llm-emit-token-metric-policy) without naming them; the cached one is "Prompt
# Cached Tokens" in Azure-Samples/AI-Gateway labs/ghcp-byok-foundry (its README: the gateway
# "already emits a Prompt Cached Tokens metric"). No reasoning metric name is documented anywhere,
# so none is sent (reasoning tokens are inside Completion Tokens anyway).
BASE_TOKEN_METRICS = ("Prompt Tokens", "Completion Tokens", "Total Tokens")
CACHED_TOKEN_METRIC = "Prompt Cached Tokens"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Besides hop-by-hop: host and length are recomputed; the backend is asked for identity encoding so
# usage can be read from the body. The subscription key header is NOT dropped: APIM forwards it
# to the backend unless the policy deletes it (the policy snippet Microsoft's docs use:
# `<!-- Don't expose APIM subscription key to the backend. --> <set-header
# name="Ocp-Apim-Subscription-Key" exists-action="delete" />`, Azure/api-management-policy-snippets,
# used by learn.microsoft.com/azure/api-management/api-management-howto-protect-backend-with-aad).
_DROP_REQUEST = _HOP_BY_HOP | {"host", "content-length", "expect", "accept-encoding"}
# The client session decompresses, so length and encoding of the relayed body are ours to set.
_DROP_RESPONSE = _HOP_BY_HOP | {"content-length", "content-encoding"}
_MISSING_KEY = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)
_INVALID_KEY = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)


class BypassPicker:
    """Which calls skip the gateway's metering (GatewayConfig.bypass): evenly spread and deterministic, so a
    share of 0.05 is exactly every 20th call to the deployment."""

    def __init__(self, config: BypassConfig | None) -> None:
        self._config = config
        self._calls = 0
        self.bypassed = 0

    def take(self, deployment: str) -> bool:
        config = self._config
        if config is None or deployment.casefold() != config.deployment.casefold():
            return False
        self._calls += 1
        if math.floor(self._calls * config.share + 1e-9) > math.floor((self._calls - 1) * config.share + 1e-9):
            self.bypassed += 1
            return True
        return False


@dataclass
class GatewayState:
    config: GatewayConfig
    policy: CompiledPolicy
    exporter: MetricsExporter
    subscriptions_by_key: dict[str, SubscriptionConfig]
    identity: GatewayIdentity
    bypass: BypassPicker
    session: aiohttp.ClientSession | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)


STATE = web.AppKey("gateway_state", GatewayState)


def apim_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"statusCode": status, "message": message, **extra}, status=status)


def _internal_error() -> web.Response:
    return apim_error(500, "Internal server error", activityId=str(uuid.uuid4()))


def _subscription_key(request: web.Request) -> str | None:
    for header in SUBSCRIPTION_HEADERS:
        if header in request.headers:
            return request.headers[header]
    return request.query.get(SUBSCRIPTION_QUERY)


def _unauthorized(message: str) -> web.Response:
    response = apim_error(401, message)
    response.headers["WWW-Authenticate"] = 'AzureApiManagementKey realm="local",name="api-key",type="header"'
    return response


def _outgoing_headers(request: web.Request) -> CIMultiDict[str]:
    connection_tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    headers = CIMultiDict(
        (name, value)
        for name, value in request.headers.items()
        if name.lower() not in _DROP_REQUEST and name.lower() not in connection_tokens
    )
    forwarded = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{forwarded}, {request.remote}" if forwarded else str(request.remote or "")
    return headers


def _backend_url(state: GatewayState, context: RequestContext, matched: MatchedOperation) -> str:
    backend_id = context.backend_id or state.config.default_backend_id
    if backend_id is None or backend_id not in state.config.backends:
        raise ExpressionError(f"backend {backend_id!r} is not configured")
    url = state.config.backends[backend_id].rstrip("/") + BACKEND_PATH + matched.suffix
    # The query as the inbound policy left it (set-query-parameter), subscription key and all.
    return str(URL(url).with_query(list(context.outgoing_query.items()))) if context.outgoing_query else url


def _response_headers(backend: aiohttp.ClientResponse) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in backend.headers.items() if k.lower() not in _DROP_RESPONSE)


class Gateway:
    def __init__(self, state: GatewayState) -> None:
        self.state = state

    def _emit(self, context: RequestContext, usage: TokenUsage) -> None:
        """The metrics each emit element sends, with exactly its dimensions (nothing added)."""
        base = (usage.prompt, usage.completion, usage.total)
        for emission in context.emissions:
            for name, value in zip(BASE_TOKEN_METRICS, base, strict=True):
                self.state.exporter.record(emission.namespace, name, value, emission.dimensions)
            # Only a response that reported its cached tokens has them; an estimate never does.
            if emission.policy == LLM_EMIT and usage.cached is not None:
                self.state.exporter.record(emission.namespace, CACHED_TOKEN_METRIC, usage.cached, emission.dimensions)

    @staticmethod
    def _deployment(matched: MatchedOperation, body: bytes) -> str:
        deployment = matched.parameters.get("deployment-id")
        if deployment is None:  # the v1 API names the model in the body
            try:
                request_json = json.loads(body or b"{}") if body else {}
            except ValueError:
                return ""
            deployment = str(request_json.get("model", "")) if isinstance(request_json, dict) else ""
        return deployment

    def _estimator(self, matched: MatchedOperation, body: bytes) -> UsageEstimator:
        deployment = self._deployment(matched, body)
        model = self.state.config.deployments.get(deployment, deployment)
        return UsageEstimator(matched.operation.kind, body, model)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        if not is_api_path(request.path):
            return apim_error(404, "Resource not found")
        key = _subscription_key(request)
        if not key:
            return _unauthorized(_MISSING_KEY)
        subscription = state.subscriptions_by_key.get(key)
        if subscription is None:
            return _unauthorized(_INVALID_KEY)
        matched = match_operation(request.method, request.path)
        if matched is None:
            return apim_error(404, "Resource not found")
        # Read before the inbound policy: its expressions may read the body (Body.As<JObject>).
        body = await request.read()
        context = RequestContext(
            api_id=API_ID,
            operation_id=matched.operation.operation_id,
            subscription=subscription,
            ip_address=str(request.remote or ""),
            request_headers=request.headers,
            matched_parameters=matched.parameters,
            gateway=state.identity,
            backend_id=None,
            outgoing_headers=_outgoing_headers(request),
            outgoing_query=MultiDict(request.query),
            request_body=body,
        )
        try:
            run_inbound(state.policy, context, state.config.managed_identity_token)
            url = _backend_url(state, context, matched)
        except ExpressionError as error:
            log.warning("policy evaluation failed for %s: %s", request.path, error)
            return _internal_error()
        assert state.session is not None
        # The bypass demo: this call reaches the model, but no token metric of it leaves the gateway.
        bypassed = state.bypass.take(self._deployment(matched, body))
        try:
            backend = await state.session.request(
                request.method, url, data=body, headers=context.outgoing_headers
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("backend call %s failed: %s", url, error)
            return _internal_error()
        try:
            headers = _response_headers(backend)
            run_outbound(state.policy, context, headers)
            succeeded = 200 <= backend.status < 300 and bool(context.emissions) and not bypassed
            if backend.content_type == "text/event-stream":
                return await self._relay_stream(request, backend, headers, context, matched, body, succeeded)
            payload = await backend.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("backend response from %s failed: %s", url, error)
            return _internal_error()
        finally:
            backend.release()
        if succeeded:
            self._emit(context, usage_from_body(payload, self._estimator(matched, body)))
        return web.Response(status=backend.status, reason=backend.reason, body=payload, headers=headers)

    @staticmethod
    async def _pump(
        request: web.Request,
        backend: aiohttp.ClientResponse,
        response: web.StreamResponse,
        recorder: StreamRecorder,
    ) -> str:
        """Relay each chunk the moment it arrives; "complete", "backend-cut" or "client-gone"."""
        chunks = backend.content.iter_any()
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return "complete"
            except (aiohttp.ClientError, TimeoutError) as error:
                log.warning("backend stream cut for %s: %s", request.path, error)
                return "backend-cut"
            try:
                await response.write(chunk)
            except ConnectionResetError:  # the client went away: count what it received
                return "client-gone"
            recorder.feed(chunk)

    async def _relay_stream(
        self,
        request: web.Request,
        backend: aiohttp.ClientResponse,
        headers: CIMultiDict[str],
        context: RequestContext,
        matched: MatchedOperation,
        body: bytes,
        succeeded: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=backend.status, reason=backend.reason, headers=headers)
        await response.prepare(request)
        recorder = StreamRecorder()
        outcome = await self._pump(request, backend, response, recorder)
        # Counted before the stream's last byte, so a client that has seen the whole response can
        # flush metrics and find its call there (parsing is microseconds; encodings load at start).
        if succeeded:
            self._emit(context, recorder.usage(self._estimator(matched, body)))
        if outcome == "complete":
            await response.write_eof()
        else:
            backend.close()  # an unfinished response cannot go back to the pool
            if outcome == "backend-cut" and request.transport is not None:
                # Relay the cut: a clean end would tell the client the stream was complete.
                request.transport.abort()
        return response


async def _flush_metrics(request: web.Request) -> web.Response:
    exporter = request.app[STATE].exporter
    exported = await exporter.flush_all()
    return web.json_response({"exported": exported, "pending": len(exporter.pending)})


async def _health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _warm_encodings(config: GatewayConfig) -> None:
    for model in set(config.deployments.values()) or {""}:
        get_encoding(encoding_name_for_model(model))


def load_policy(config: GatewayConfig) -> CompiledPolicy:
    """Compile the configured policy file and check the backends it names exist."""
    policy = compile_policy(
        config.policy_file.read_text(encoding="utf-8"),
        str(config.policy_file),
        placeholders=config.policy_placeholders,
    )
    needed: set[str | None] = set(policy.backend_ids) or {config.default_backend_id}
    missing = sorted(str(backend) for backend in needed if backend not in config.backends)
    if missing:
        raise GatewayConfigError(
            f"{config.policy_file}: backend(s) {', '.join(missing)} not configured "
            f"(have {sorted(config.backends)})"
        )
    return policy


def create_app(
    config: GatewayConfig, sink: MetricSink, *, clock: Clock = utc_now, chaos: Chaos | None = None
) -> web.Application:
    """The gateway application; raises PolicyError / GatewayConfigError for what it cannot run. `chaos`: injected
    metric lateness (standins/gateway/metrics.py)."""
    state = GatewayState(
        config=config,
        policy=load_policy(config),
        exporter=MetricsExporter(sink, flush_seconds=config.metrics_flush_seconds, clock=clock, chaos=chaos),
        subscriptions_by_key={sub.key: sub for sub in config.subscriptions},
        identity=GatewayIdentity(config.location, config.gateway_id),
        bypass=BypassPicker(config.bypass),
    )
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = state

    async def on_startup(_app: web.Application) -> None:
        state.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=10, sock_read=config.backend_timeout_seconds
            ),
            skip_auto_headers=("Accept-Encoding",),
            trust_env=False,  # never a proxy: traffic stays on loopback
        )
        state.exporter.start()
        # Load the BPE files now so that the first estimated stream does not pay for it.
        await asyncio.to_thread(_warm_encodings, config)

    async def on_cleanup(_app: web.Application) -> None:
        await state.exporter.stop()
        if state.session is not None:
            await state.session.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    gateway = Gateway(state)
    app.router.add_post("/_standin/metrics/flush", _flush_metrics)
    app.router.add_get("/_standin/health", _health)
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    return app


def default_sink(config: GatewayConfig) -> MetricSink:
    if config.appinsights is None:
        log.warning("no Application Insights connection string: metrics stay in memory")
        return InMemorySink()
    return AppInsightsTrackSink(
        config.appinsights.ingestion_endpoint,
        config.appinsights.instrumentation_key,
        ca_cert=config.appinsights.ca_cert,
        role=config.gateway_id,
    )


async def start_gateway(
    config: GatewayConfig,
    sink: MetricSink | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Clock = utc_now,
    chaos: Chaos | None = None,
) -> RunningServer:
    """Start the gateway in this event loop; ``await server.stop()`` flushes metrics and stops it."""
    return await start_app(
        create_app(config, sink or default_sink(config), clock=clock, chaos=chaos), host=host, port=port
    )


def exporter_of(server: RunningServer) -> MetricsExporter:
    return server.runner.app[STATE].exporter
