"""The per-request ``context`` that policy expressions read and policy statements write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from multidict import CIMultiDict, CIMultiDictProxy

from standins.gateway.config import SubscriptionConfig


@dataclass(frozen=True)
class GatewayIdentity:
    """What APIM knows about itself: the Location and Gateway ID dimensions."""

    location: str
    gateway_id: str


@dataclass(frozen=True)
class MetricEmission:
    """One emit-token-metric policy, its dimensions already evaluated for this request."""

    namespace: str
    dimensions: Mapping[str, str]


@dataclass
class RequestContext:
    api_id: str
    operation_id: str
    subscription: SubscriptionConfig
    ip_address: str
    # The client's headers as received: expressions read these (APIM's context.Request.Headers).
    request_headers: CIMultiDictProxy[str]
    matched_parameters: Mapping[str, str]
    gateway: GatewayIdentity
    backend_id: str | None
    # What goes to the backend: starts as the client's headers minus what APIM strips.
    outgoing_headers: CIMultiDict[str]
    variables: dict[str, object] = field(default_factory=dict)
    emissions: list[MetricEmission] = field(default_factory=list)

    @property
    def product_id(self) -> str:
        return self.subscription.product

    @property
    def user_id(self) -> str:
        return self.subscription.user


class ExpressionError(RuntimeError):
    """A policy expression failed at request time (APIM answers 500)."""
