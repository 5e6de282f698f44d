"""Gateway settings: the "gateway", "subscriptions", "api_version" and "deployments" sections of
standins/stack.config.json, plus what the stack generates at start (keys, backend URLs, logger)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yarl import URL

from standins._server import LOOPBACK_HOSTS

# Relative paths in the config (policy_file) are relative to the project root, where policy.xml lives.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class GatewayConfigError(ValueError):
    """The gateway configuration is incomplete or unsafe."""


def require_loopback_url(url: str, what: str) -> str:
    """Stand-ins never send traffic beyond this machine: refuse non-loopback targets."""
    host = URL(url).host
    if host not in LOOPBACK_HOSTS:
        raise GatewayConfigError(f"{what} must point at 127.0.0.1; got {url!r}")
    return url


@dataclass(frozen=True)
class SubscriptionConfig:
    """An APIM subscription: ``name`` is its id (the Subscription ID dimension), ``key`` its key."""

    name: str
    key: str
    product: str
    user: str
    display_name: str = ""

    @property
    def title(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True)
class AppInsightsConfig:
    """The APIM Application Insights logger: a connection string plus the CA to trust for TLS."""

    connection_string: str
    ca_cert: Path | None = None

    def _parts(self) -> dict[str, str]:
        parts: dict[str, str] = {}
        for item in self.connection_string.split(";"):
            if "=" in item:
                key, value = item.split("=", 1)
                parts[key.strip().lower()] = value.strip()
        return parts

    @property
    def instrumentation_key(self) -> str:
        ikey = self._parts().get("instrumentationkey")
        if not ikey:
            raise GatewayConfigError("the Application Insights connection string has no InstrumentationKey")
        return ikey

    @property
    def ingestion_endpoint(self) -> str:
        endpoint = self._parts().get("ingestionendpoint")
        if not endpoint:
            raise GatewayConfigError("the Application Insights connection string has no IngestionEndpoint")
        endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        return require_loopback_url(endpoint, "IngestionEndpoint")


@dataclass(frozen=True)
class BypassConfig:
    deployment: str
    share: float  # 0..1 of the deployment's calls, spread evenly (every 20th call for 0.05)

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise GatewayConfigError(f"gateway.bypass.share must be from 0 to 1, got {self.share}")


def bypass_config(raw: Mapping[str, Any] | None, share: float | None = None) -> BypassConfig | None:
    """The "bypass" section ({"deployment", "share"}), its share overridden by `share` (make run BYPASS_SHARE=)."""
    if not raw:
        return None
    chosen = float(raw.get("share", 0)) if share is None else share
    return BypassConfig(str(raw["deployment"]), chosen) if chosen > 0 else None


@dataclass(frozen=True)
class GatewayConfig:
    policy_file: Path
    backends: Mapping[str, str]
    subscriptions: Sequence[SubscriptionConfig]
    policy_placeholders: Mapping[str, str] = field(default_factory=dict)
    # Deployment name → model name: picks the tokenizer encoding when tokens must be estimated.
    deployments: Mapping[str, str] = field(default_factory=dict)
    api_version: str = "2025-04-01-preview"
    # The API's own service URL in APIM, used when the policy has no set-backend-service.
    default_backend_id: str | None = None
    location: str = "West Europe"
    gateway_id: str = "managed"
    metrics_flush_seconds: float = 60.0
    appinsights: AppInsightsConfig | None = None
    # APIM's forward-request default timeout.
    backend_timeout_seconds: float = 300.0
    # What authentication-managed-identity yields here: a fixed, locally issued token.
    managed_identity_token: str = "local-managed-identity-token"
    # Demo of traffic that bypasses the gateway (a stand-in setting, "gateway"."bypass" in stack.config.json,
    # never an APIM feature): this share of the calls to this deployment reaches the model without the gateway
    # metering it, as a client holding the account's own endpoint would. The model's meters count them.
    bypass: BypassConfig | None = None

    def __post_init__(self) -> None:
        for backend_id, url in self.backends.items():
            require_loopback_url(url, f"backend {backend_id!r}")
        keys = [sub.key for sub in self.subscriptions]
        if len(set(keys)) != len(keys):
            raise GatewayConfigError("two subscriptions share a key")
        if self.metrics_flush_seconds <= 0:
            raise GatewayConfigError("metrics_flush_seconds must be positive")


def _subscription(entry: Mapping[str, Any], source: str) -> SubscriptionConfig:
    missing = [name for name in ("name", "key", "product", "user") if not entry.get(name)]
    if missing:
        raise GatewayConfigError(f"{source}: subscription {entry.get('name')!r} lacks {', '.join(missing)}")
    return SubscriptionConfig(
        name=str(entry["name"]),
        key=str(entry["key"]),
        product=str(entry["product"]),
        user=str(entry["user"]),
        display_name=str(entry.get("display_name", "")),
    )


def load_subscriptions_file(path: Path) -> list[dict[str, Any]]:
    """A JSON list of {name, key, product?, user?} (or {"subscriptions": [...]}), as the stack writes it."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    entries = raw.get("subscriptions") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise GatewayConfigError(f"{path}: expected a JSON list of subscriptions")
    return entries


def _merge_subscriptions(
    configured: Sequence[Mapping[str, Any]], with_keys: Sequence[Mapping[str, Any]], source: str
) -> list[SubscriptionConfig]:
    """Keys come from the stack at start and make a subscription active; products and users may come
    from the static config. A configured subscription that got no key cannot be called, so is left out."""
    by_name: dict[str, dict[str, Any]] = {str(entry["name"]): dict(entry) for entry in configured}
    for entry in with_keys:
        by_name.setdefault(str(entry["name"]), {}).update(entry)
    active = [_subscription(entry, source) for entry in by_name.values() if entry.get("key")]
    if not active:
        raise GatewayConfigError(f"{source}: no subscription has a key (pass --subscriptions)")
    return active


def load_gateway_config(
    config_path: Path,
    *,
    subscriptions_file: Path | None = None,
    subscription_keys: Mapping[str, str] | None = None,
    backends: Mapping[str, str] | None = None,
    appinsights_connection_string: str | None = None,
    ca_cert: Path | None = None,
    metrics_flush_seconds: float | None = None,
    bypass_share: float | None = None,
    base_dir: Path = PROJECT_ROOT,
) -> GatewayConfig:
    """Read stack.config.json and overlay what the stack decides at start.

    Keys come from ``subscriptions_file`` and/or ``subscription_keys`` (subscription name → key)."""
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    gateway = raw.get("gateway", {})
    policy_file = Path(gateway.get("policy_file", "policy.xml"))
    if not policy_file.is_absolute():
        policy_file = base_dir / policy_file
    keyed = load_subscriptions_file(subscriptions_file) if subscriptions_file else []
    keyed += [{"name": name, "key": key} for name, key in (subscription_keys or {}).items()]
    subscriptions = _merge_subscriptions(
        raw.get("subscriptions", []), keyed, str(subscriptions_file or config_path)
    )
    appinsights = (
        AppInsightsConfig(appinsights_connection_string, ca_cert) if appinsights_connection_string else None
    )
    return GatewayConfig(
        policy_file=policy_file,
        backends=dict(backends or {}),
        subscriptions=subscriptions,
        policy_placeholders=dict(gateway.get("policy_placeholders", {})),
        deployments={name: str(spec.get("model", name)) for name, spec in raw.get("deployments", {}).items()},
        api_version=str(raw.get("api_version", "2025-04-01-preview")),
        default_backend_id=gateway.get("backend_id"),
        location=str(gateway.get("location", "West Europe")),
        gateway_id=str(gateway.get("gateway_id", "managed")),
        metrics_flush_seconds=float(
            metrics_flush_seconds
            if metrics_flush_seconds is not None
            else gateway.get("metrics_flush_seconds", 60)
        ),
        appinsights=appinsights,
        bypass=bypass_config(gateway.get("bypass"), bypass_share),
    )
