"""Bearer-token checks for the Azure Monitor stand-in's Entra-protected APIs.

The query and Logs Ingestion APIs require a token from the local managed-identity endpoint
(standins.identity), for an Azure Monitor audience, as Azure requires an Entra token for
those resources. The App Insights track API is keyed by instrumentation key instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from standins._server import LOOPBACK_HOSTS
from standins.identity import InvalidTokenError, TokenSigner

# What LogsIngestionClient asks for (fixed scope), what LogsQueryClient asks for by default,
# and the public-cloud Log Analytics alias. LogsQueryClient pointed at the stand-in asks for
# the stand-in's own origin, accepted below when it is a loopback address.
AZURE_MONITOR_AUDIENCES = frozenset(
    {"https://monitor.azure.com", "https://api.loganalytics.io", "https://api.loganalytics.azure.com"}
)
_WWW_AUTHENTICATE = (
    'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'
)

ErrorBody = Callable[[str], dict[str, Any]]


def audience_accepted(audience: str) -> bool:
    normalized = audience.rstrip("/")
    if normalized in AZURE_MONITOR_AUDIENCES:
        return True
    parsed = urlparse(normalized)
    return parsed.scheme == "https" and parsed.hostname in LOOPBACK_HOSTS and parsed.path == ""


def bearer_auth_middleware(
    signer: TokenSigner, protected: Callable[[str], ErrorBody | None]
) -> Middleware:
    """Middleware refusing requests to protected paths without a valid token (401 like Azure).

    ``protected(path)`` returns the error-body factory of the API the path belongs to, or None
    for paths that need no bearer token.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        error_body = protected(request.path)
        if error_body is None:
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        reason: str | None = None
        if scheme.lower() != "bearer" or not token.strip():
            reason = "the request has no bearer token"
        else:
            try:
                claims = signer.verify(token.strip())
            except InvalidTokenError as exc:
                reason = str(exc)
            else:
                if not audience_accepted(claims.audience):
                    reason = f"the token audience '{claims.audience}' is not Azure Monitor"
        if reason is not None:
            return web.json_response(
                error_body(reason), status=401, headers={"WWW-Authenticate": _WWW_AUTHENTICATE}
            )
        return await handler(request)

    return middleware
