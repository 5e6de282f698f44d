"""The per-request ``context`` that policy expressions read and policy statements write."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from standins.gateway.config import SubscriptionConfig


@dataclass(frozen=True)
class GatewayIdentity:
    """What APIM knows about itself: the Location and Gateway ID dimensions."""

    location: str
    gateway_id: str


@dataclass(frozen=True)
class MetricEmission:
    """One emit-token-metric policy, its dimensions already evaluated for this request."""

    policy: str  # the element: azure-openai-emit-token-metric or llm-emit-token-metric
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
    # The query string that goes to the backend: the client's, subscription key included (APIM
    # forwards it unless the policy deletes it, as with the key header).
    outgoing_query: MultiDict[str] = field(default_factory=MultiDict)
    # The request body as received (APIM's context.Request.Body); forwarded unchanged.
    request_body: bytes = b""
    variables: dict[str, object] = field(default_factory=dict)
    emissions: list[MetricEmission] = field(default_factory=list)
    _body_json: Any = field(default=None, repr=False)
    _body_parsed: bool = field(default=False, repr=False)

    def body_as_jobject(self) -> dict[str, Any]:
        """``context.Request.Body.As<JObject>(preserveContent: true)``: the body as a JSON object.

        Newtonsoft's JObject.Parse throws on a body that is empty, not JSON or not an object, and
        a policy expression that throws fails the request with 500
        (https://learn.microsoft.com/azure/api-management/api-management-policy-expressions).
        Parsed once per request however many expressions read it.
        """
        if not self._body_parsed:
            try:
                self._body_json = json.loads(self.request_body)
            except (ValueError, UnicodeDecodeError):
                self._body_json = None
            self._body_parsed = True
        if not isinstance(self._body_json, dict):
            raise ExpressionError("context.Request.Body.As<JObject>(): the request body is not a JSON object")
        return self._body_json

    @property
    def product_id(self) -> str:
        return self.subscription.product

    @property
    def user_id(self) -> str:
        return self.subscription.user


class ExpressionError(RuntimeError):
    """A policy expression failed at request time (APIM answers 500)."""
