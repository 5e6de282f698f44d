"""Bearer-token check shared by the Entra-protected stand-ins (Azure Monitor, Communication Services).

A request to a protected path needs a token issued by the local managed-identity endpoint
(standins.identity), unexpired, for an audience the service accepts; otherwise 401 with a
WWW-Authenticate challenge, as Azure answers. Each service says which paths are protected and
shapes its own error body.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from standins.identity import IDENTITY_SECRET_ENV, InvalidTokenError, TokenSigner

_WWW_AUTHENTICATE = (
    'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'
)

ErrorBody = Callable[[str], dict[str, Any]]


def bearer_auth_middleware(
    signer: TokenSigner,
    protected: Callable[[str], ErrorBody | None],
    *,
    audience_ok: Callable[[str], bool],
    service_name: str,
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
                if not audience_ok(claims.audience):
                    reason = f"the token audience '{claims.audience}' is not {service_name}"
        if reason is not None:
            return web.json_response(
                error_body(reason), status=401, headers={"WWW-Authenticate": _WWW_AUTHENTICATE}
            )
        return await handler(request)

    return middleware


def add_identity_secret_argument(parser: argparse.ArgumentParser) -> None:
    """``--identity-secret`` (or $STANDINS_IDENTITY_SECRET): the key the protected stand-in checks
    tokens with, shared with the identity endpoint that signs them."""
    parser.add_argument(
        "--identity-secret",
        default=os.environ.get(IDENTITY_SECRET_ENV),
        help=f"secret shared with the identity endpoint (default: ${IDENTITY_SECRET_ENV})",
    )


def identity_secret(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The parsed secret; a usage error when neither the option nor the variable gives one."""
    if not args.identity_secret:
        parser.error(f"--identity-secret or ${IDENTITY_SECRET_ENV} is required")
    return str(args.identity_secret)
