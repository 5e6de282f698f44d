"""Azure Resource Manager stand-in: the one read the app makes, a model account's deployment list, over HTTPS.

The contract (Azure/azure-rest-api-specs specification/cognitiveservices/resource-manager/
Microsoft.CognitiveServices/stable/2025-09-01/cognitiveservices.json, the deployments list of an account, as
azure-mgmt-cognitiveservices 14.1.0 operations/_deployments_operations.py calls and pages it):
- ``GET /subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.CognitiveServices/accounts/{a}/deployments
  ?api-version=2025-09-01`` -> 200 DeploymentListResult ``{"value": [Deployment], "nextLink"?}``; a Deployment
  is ``{"id", "name", "type": "Microsoft.CognitiveServices/accounts/deployments", "sku": {"name", "capacity"},
  "systemData": {"createdAt", ...}, "properties": {"model": {"format", "name", "version"}, "provisioningState",
  ...}}`` (systemData: the ProxyResource's common type, createdAt ISO 8601 UTC; sent when the deployment has one);
  the SDK follows an absolute ``nextLink`` (its query kept, api-version reset to its own), here carrying ``$skipToken``;
- errors: ErrorResponse ``{"error": {"code", "message"}}``.
ARM's answers as clients see them: a valid token whose principal holds no role with the action is 403
AuthorizationFailed "The client '..' with object id '..' does not have authorization to perform action
'Microsoft.CognitiveServices/accounts/deployments/read' over scope '..' or the scope is invalid." (quoted in
github.com/microsoft/foundry-dev-tools/issues/555 and /407 for accounts/read and deployments/write); a request
without api-version is 400 MissingApiVersionParameter (github.com/Azure-Samples/azure-search-openai-demo/issues/36);
no or a bad bearer token is 401 InvalidAuthenticationToken with a WWW-Authenticate challenge (the shared
standins/bearer.py check); an unknown api-version is 400 InvalidApiVersionParameter "The api-version '..' is
invalid. The supported versions are '..'." (github.com/Azure/azure-cli/issues/28038); an unknown account is
404 ResourceNotFound (the spec's ErrorResponse; the code is ARM's usual one for a missing resource, not
checked against a recorded answer).

Never kinder than Azure: only the api-version azure-mgmt-cognitiveservices 14.1.0 sends (2025-09-01) is served;
a token must come from the identity stand-in for ARM's audience; small pages (two by default) so clients must
follow nextLink. The deployments are the simulator's (standins/stack.config.json "deployments": model,
model_version, sku, capacity, created_at), under the account in its "arm" section.

Hooks for tests (in-process): ``add_deployment(...)`` creates a deployment as the portal would,
``granted_client_ids`` (None: every identity holds Reader) withdraws the role, ``fail_next(status)`` answers
the next list request with that status. Injected faults (standins/chaos.py, point ``arm``, kinds 500 / 503 /
429 with Retry-After; ``--chaos FILE``) answer any of the three reads (deployments, metrics, Cost Management)
through the same answers as the scripted faults: ARM's throttling is 429 with Retry-After
(learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling), Cost Management's
429 carries its QPU retry header (standins/cost_management.py).

The account's token metrics (Azure Monitor Metrics - List under the account, standins/arm_metrics.py) come
from the simulator's meters (``--simulator URL``; in-process, any MeterSource). Hooks: ``metrics_granted_client_ids``
withdraws Microsoft.Insights/metrics/read, ``fail_metrics(status, retry_after_seconds, times)`` answers the next
metrics requests with that status (429 with Retry-After as ARM throttles).

CLI: ``python -m standins.arm --config standins/stack.config.json --tls-dir .local/tls --identity-secret S
--simulator URL`` prints ``READY https://127.0.0.1:<port>``; ``--cost-price-factor`` and ``--cost-lag-seconds``
override the bill's price factor and lag (the bill demo, standins/history.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from standins._server import RunningHttpsService, serve_cli, start_https_service
from standins.arm_metrics import (
    METRICS_API_VERSION,
    METRICS_READ_ACTION,
    MeterSource,
    MetricsQueryError,
    SimulatorMeters,
    metrics_error,
    metrics_response,
    parse_query,
)
from standins.bearer import add_identity_secret_argument, bearer_auth_middleware, identity_secret
from standins.chaos import add_chaos_argument, chaos_from
from standins.cost_management import (
    API_VERSION as COST_API_VERSION,
)
from standins.cost_management import (
    QPU_RETRY_HEADER,
    BillingConfig,
    Deployed,
    QueryRefused,
    billed_rows,
    body_of,
    check_definition,
    query_result,
)
from standins.cost_management import (
    READ_ACTION as COST_READ_ACTION,
)
from standins.identity import InvalidTokenError, TokenSigner

API_VERSION = "2025-09-01"
# ARM accepts tokens for either of its two audiences (the SDK asks for https://management.azure.com/.default).
ARM_AUDIENCES = frozenset({"https://management.azure.com", "https://management.core.windows.net"})
READ_ACTION = "Microsoft.CognitiveServices/accounts/deployments/read"
_PROVIDER = "Microsoft.CognitiveServices"
_ROUTE = "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts/{account}"
_LIST_ROUTE = _ROUTE + "/deployments"
_METRICS_ROUTE = _ROUTE + "/providers/Microsoft.Insights/metrics"
# Cost Management's Query API at the account's subscription or resource group (standins/cost_management.py).
_COST_ROUTES = (
    "/subscriptions/{subscription}/providers/Microsoft.CostManagement/query",
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.CostManagement/query",
)


@dataclass(frozen=True)
class ArmDeployment:
    name: str
    model: str
    version: str
    sku: str = "GlobalStandard"
    capacity: int = 10
    created_at: str | None = None  # systemData.createdAt, ISO 8601 UTC ("2026-11-27T08:30:00Z"); None: not sent

    def resource(self, account_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "id": f"{account_id}/deployments/{self.name}",
            "name": self.name,
            "type": f"{_PROVIDER}/accounts/deployments",
            "sku": {"name": self.sku, "capacity": self.capacity},
            "properties": {
                "model": {"format": "OpenAI", "name": self.model, "version": self.version},
                "provisioningState": "Succeeded",
            },
        }
        if self.created_at is not None:
            resource["systemData"] = {"createdAt": self.created_at, "createdByType": "User"}
        return resource


@dataclass(frozen=True)
class ArmAccount:
    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        group = f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
        return f"{group}/providers/{_PROVIDER}/accounts/{self.name}"

    def is_this(self, subscription: str, group: str, account: str) -> bool:
        # ARM resource ids, resource group and account names compare case-insensitively.
        theirs = (subscription.casefold(), group.casefold(), account.casefold())
        return theirs == (self.subscription_id.casefold(), self.resource_group.casefold(), self.name.casefold())


@dataclass
class ArmConfig:
    tls_dir: Path
    identity_secret: str
    account: ArmAccount
    deployments: list[ArmDeployment]
    page_size: int = 2
    # The account's token meters (the simulator's); None: every metrics request fails as the meters are unreachable.
    meters: MeterSource | None = None
    region: str = "westeurope"
    # A minute's metrics are served this long after it ended (arm_metrics.py: platform metrics arrive late).
    metrics_latency_seconds: float = 0.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # The account's bill (Cost Management); None: every query answers 503, as a backend that is down.
    billing: BillingConfig | None = None
    chaos_file: Path | None = None  # fault injection (standins/chaos.py); None: none


def config_from_stack(
    stack_config: Mapping[str, Any], tls_dir: Path, secret: str, simulator_url: str | None = None
) -> ArmConfig:
    """The stand-in's account ("arm" section) and deployments (the simulator's) from standins/stack.config.json;
    the account's metrics from the simulator at `simulator_url`."""
    arm = stack_config["arm"]
    deployments = [
        ArmDeployment(
            name=name,
            model=str(raw.get("model") or name),
            version=str(raw.get("model_version", "")),
            sku=str(raw.get("sku", "GlobalStandard")),
            capacity=int(raw.get("capacity", 10)),
            created_at=raw.get("created_at"),
        )
        for name, raw in stack_config["deployments"].items()
    ]
    account = ArmAccount(arm["subscription_id"], arm["resource_group"], arm["account"])
    return ArmConfig(
        tls_dir, secret, account, deployments,
        page_size=int(arm.get("page_size", 2)),
        meters=SimulatorMeters(simulator_url) if simulator_url else None,
        region=str(arm.get("region", "westeurope")),
        metrics_latency_seconds=float(arm.get("metrics_latency_seconds", 0)),
        billing=BillingConfig.from_stack(stack_config["cost_management"]) if "cost_management" in stack_config
        else None,
    )  # fmt: skip


def account_of(stack_config: Mapping[str, Any]) -> ArmAccount:
    arm = stack_config["arm"]
    return ArmAccount(arm["subscription_id"], arm["resource_group"], arm["account"])


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


Fault = tuple[int, float | None]  # a status and the Retry-After it sends (None: none)


def fault_response(fault: Fault, *, cost: bool = False) -> web.Response:
    """The answer of a failing or throttling read, scripted or injected. Cost Management (`cost`) names its
    throttling wait in its own QPU header."""
    status, retry_after = fault
    if status == 429:
        if cost:
            headers = {QPU_RETRY_HEADER: f"{retry_after:g}"} if retry_after is not None else None
            return error_response(429, "429", "Too many requests. Please retry.", headers)
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return error_response(429, "TooManyRequests", "The request is being throttled.", headers)  # ARM's throttling
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    code = {500: "InternalServerError"}.get(status, "ServiceUnavailable" if status >= 500 else "BadRequest")
    return error_response(status, code, "Scripted fault.", headers)


def _auth_error(reason: str) -> dict[str, Any]:
    return {"error": {"code": "InvalidAuthenticationToken", "message": f"The access token is invalid: {reason}"}}


def _protected(path: str) -> Callable[[str], dict[str, Any]] | None:
    return _auth_error if path.startswith("/subscriptions/") else None


def _audience_ok(audience: str) -> bool:
    return audience.rstrip("/") in ARM_AUDIENCES


@dataclass
class ArmService:
    config: ArmConfig
    # Who holds Reader on the account; None: every identity of the local app (the stack assigns it).
    granted_client_ids: set[str] | None = None
    # Who holds Microsoft.Insights/metrics/read on the account; None: every identity.
    metrics_granted_client_ids: set[str] | None = None
    _faults: list[Fault] = field(default_factory=list)
    _metrics_faults: list[tuple[int, float | None]] = field(default_factory=list)
    metrics_requests: int = 0
    # Who holds Cost Management Reader on the scope; None: every identity.
    cost_granted_client_ids: set[str] | None = None
    _cost_faults: list[tuple[int, float | None]] = field(default_factory=list)
    cost_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.signer = TokenSigner(self.config.identity_secret)
        self._chaos = chaos_from(self.config.chaos_file)

    def _injected(self, request: web.Request) -> Fault | None:
        """An injected fault for this read, or None."""
        kind = self._chaos.inject("arm", f"{request.method} {request.path}") if self._chaos is not None else None
        if kind is None:
            return None
        assert self._chaos is not None
        return int(kind), (self._chaos.plan.retry_after_seconds if kind == "429" else None)

    def add_deployment(self, deployment: ArmDeployment) -> None:
        with self._lock:
            self.config.deployments = [d for d in self.config.deployments if d.name != deployment.name] + [deployment]

    def fail_next(self, status: int, retry_after_seconds: float | None = None) -> None:
        with self._lock:
            self._faults.append((status, retry_after_seconds))

    def fail_metrics(self, status: int, retry_after_seconds: float | None = None, *, times: int = 1) -> None:
        """The next `times` metrics requests answer `status` (429 and 503 with Retry-After when given)."""
        with self._lock:
            self._metrics_faults.extend([(status, retry_after_seconds)] * times)

    def fail_cost_queries(self, status: int, retry_after_seconds: float | None = None, *, times: int = 1) -> None:
        """The next `times` Cost Management queries answer `status` (429 with the QPU retry-after header)."""
        with self._lock:
            self._cost_faults.extend([(status, retry_after_seconds)] * times)

    async def query_costs(self, request: web.Request) -> web.Response:
        """Cost Management Query API at a subscription or resource group (standins/cost_management.py)."""
        version = request.query.get("api-version")
        if not version:
            return error_response(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
        if version != COST_API_VERSION:
            return error_response(
                400, "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{COST_API_VERSION}'.",
            )  # fmt: skip
        account = self.config.account
        info = request.match_info
        group = info.get("group")
        in_scope = info["subscription"].casefold() == account.subscription_id.casefold() and (
            group is None or group.casefold() == account.resource_group.casefold()
        )
        scope = request.path.rpartition("/providers/Microsoft.CostManagement")[0]
        refusal = self._refusal(request, account, self.cost_granted_client_ids, COST_READ_ACTION, scope)
        if refusal is not None:
            return refusal
        with self._lock:
            self.cost_requests += 1
            fault = self._cost_faults.pop(0) if self._cost_faults else None
        fault = fault or self._injected(request)
        if fault is not None:
            return fault_response(fault, cost=True)
        billing = self.config.billing
        if billing is None or self.config.meters is None:
            return error_response(503, "ServiceUnavailable", "Cost Management is temporarily unavailable.")
        try:
            first, end, wanted = check_definition(body_of(await request.read()), [account.resource_id])
        except QueryRefused as error:
            return error_response(400, "BadRequest", str(error))
        try:
            records = await self.config.meters.read()
        except Exception as error:  # the simulator is gone: nothing to bill from
            return error_response(503, "ServiceUnavailable", f"Cost Management is temporarily unavailable: {error}")
        visible_until = self.config.clock() - timedelta(seconds=billing.lag_seconds)
        deployed = {item.name: Deployed(item.model, item.sku) for item in self.config.deployments}
        rows = (
            billed_rows(billing, records, deployed, account.resource_id, first, end, visible_until)
            if in_scope and account.resource_id.casefold() in wanted
            else []
        )
        try:
            start = int(request.query.get("$skiptoken", "0"))
        except ValueError:
            return error_response(400, "BadRequest", "The $skiptoken is invalid.")
        page = rows[start : start + billing.page_size]
        next_link = None
        if start + billing.page_size < len(rows):
            query = urlencode({"api-version": version, "$skiptoken": str(start + billing.page_size)})
            next_link = f"{request.url.origin()}{request.path}?{query}"
        return web.json_response(query_result(scope, page, next_link))

    def _account_request_refusal(self, request: web.Request, api_version: str) -> web.Response | None:
        """ARM's answers to a request on the account that names no or another api-version (400) or another
        account (404), as every call on the account gets them before authorization; None when neither."""
        version = request.query.get("api-version")
        if not version:
            return error_response(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
        if version != api_version:
            return error_response(
                400, "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{api_version}'.",
            )  # fmt: skip
        info = request.match_info
        if not self.config.account.is_this(info["subscription"], info["group"], info["account"]):
            return error_response(
                404, "ResourceNotFound",
                f"The Resource '{_PROVIDER}/accounts/{info['account']}' under resource group "
                f"'{info['group']}' was not found.",
            )  # fmt: skip
        return None

    async def list_deployments(self, request: web.Request) -> web.Response:
        version = request.query.get("api-version")
        account = self.config.account
        refusal = self._account_request_refusal(request, API_VERSION) or self._refusal(
            request, account, self.granted_client_ids, READ_ACTION
        )
        if refusal is not None:
            return refusal
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            deployments = list(self.config.deployments)
        fault = fault or self._injected(request)
        if fault is not None:
            return fault_response(fault)
        try:
            start = int(request.query.get("$skipToken", "0"))
        except ValueError:
            return error_response(400, "InvalidSkipToken", "The $skipToken is invalid.")
        page = deployments[start : start + self.config.page_size]
        body: dict[str, Any] = {"value": [item.resource(account.resource_id) for item in page]}
        if start + self.config.page_size < len(deployments):
            query = urlencode({"api-version": version, "$skipToken": str(start + self.config.page_size)})
            body["nextLink"] = f"{request.url.origin()}{request.path}?{query}"
        return web.json_response(body)

    async def list_metrics(self, request: web.Request) -> web.Response:
        """Azure Monitor Metrics - List on the account (standins/arm_metrics.py)."""
        account = self.config.account
        refusal = self._account_request_refusal(request, METRICS_API_VERSION) or self._refusal(
            request, account, self.metrics_granted_client_ids, METRICS_READ_ACTION
        )
        if refusal is not None:
            return refusal
        with self._lock:
            self.metrics_requests += 1
            fault = self._metrics_faults.pop(0) if self._metrics_faults else None
        fault = fault or self._injected(request)
        if fault is not None:
            return fault_response(fault)
        now = self.config.clock()
        try:
            query = parse_query(request.query, now)
        except MetricsQueryError as error:
            return metrics_error(400, error.code, str(error))
        if self.config.meters is None:
            return error_response(503, "ServiceUnavailable", "The account's metrics cannot be read now.")
        try:
            records = await self.config.meters.read()
        except Exception as error:  # the simulator is gone: the metrics backend is unavailable
            return error_response(503, "ServiceUnavailable", f"The account's metrics cannot be read now: {error}")
        visible_until = now - timedelta(seconds=self.config.metrics_latency_seconds)
        body = metrics_response(
            query, records, resource_id=account.resource_id, region=self.config.region, visible_until=visible_until
        )
        return web.json_response(body)

    def _refusal(
        self,
        request: web.Request,
        account: ArmAccount,
        granted: set[str] | None,
        action: str,
        scope: str | None = None,
    ) -> web.Response | None:
        """403 AuthorizationFailed when the caller's identity is not in `granted` (None: every identity is)."""
        if granted is None:
            return None
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        try:
            client_id = self.signer.verify(token).client_id
        except InvalidTokenError:  # the middleware let it through, so it was valid a moment ago
            client_id = "(unknown)"
        if client_id in granted:
            return None
        return error_response(
            403, "AuthorizationFailed",
            f"The client '{client_id}' with object id '{client_id}' does not have authorization to perform action "
            f"'{action}' over scope '{scope or account.resource_id}' or the scope is invalid.",
        )  # fmt: skip


def build_arm_app(service: ArmService) -> web.Application:
    signer = TokenSigner(service.config.identity_secret)
    app = web.Application(
        middlewares=[bearer_auth_middleware(signer, _protected, audience_ok=_audience_ok, service_name="ARM")]
    )
    app.router.add_get(_LIST_ROUTE, service.list_deployments)
    app.router.add_get(_METRICS_ROUTE, service.list_metrics)
    for route in _COST_ROUTES:
        app.router.add_post(route, service.query_costs)
    return app


RunningArm = RunningHttpsService[ArmService]


async def start_arm(config: ArmConfig, *, host: str = "127.0.0.1", port: int = 0) -> RunningArm:
    """Ensure TLS material in ``config.tls_dir`` and serve the list call over HTTPS on host:port."""
    service = ArmService(config)
    return await start_https_service(service, build_arm_app(service), config.tls_dir, host=host, port=port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.arm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", type=Path, required=True, help="standins/stack.config.json")
    parser.add_argument("--tls-dir", type=Path, required=True, help="where the local CA and server cert live")
    parser.add_argument("--simulator", default=None, help="the model simulator's URL (its token meters)")
    parser.add_argument(
        "--cost-price-factor", type=Decimal, default=None,
        help='overrides "cost_management"."price_factor" (the bill demo: a billed price list 15%% over ours)',
    )  # fmt: skip
    parser.add_argument(
        "--cost-lag-seconds", type=float, default=None,
        help='overrides "cost_management"."lag_seconds" (the bill demo: usage billed within a minute)',
    )  # fmt: skip
    add_identity_secret_argument(parser)
    add_chaos_argument(parser)
    args = parser.parse_args(argv)
    stack_config = json.loads(args.config.read_text(encoding="utf-8"))
    config = config_from_stack(stack_config, args.tls_dir, identity_secret(parser, args), args.simulator)
    config.chaos_file = args.chaos
    if config.billing is not None:
        if args.cost_price_factor is not None:
            config.billing.price_factor = args.cost_price_factor
        if args.cost_lag_seconds is not None:
            config.billing.lag_seconds = args.cost_lag_seconds
    serve_cli(lambda: start_arm(config, host=args.host, port=args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
