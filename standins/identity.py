"""A managed-identity token endpoint, as App Service / Azure Functions expose it to their apps.

The unmodified ``azure.identity`` ManagedIdentityCredential (and DefaultAzureCredential, which
contains it) finds this endpoint through the same two settings the platform sets:
``IDENTITY_ENDPOINT=<url>/msi/token`` and ``IDENTITY_HEADER=<secret>``. It sends
``GET ?api-version=2019-08-01&resource=<audience>`` with header ``X-IDENTITY-HEADER`` and reads
``access_token``, ``expires_on`` (epoch seconds, as a string), ``resource`` and ``token_type``.

Tokens are opaque to clients, as real ones should be treated, but HMAC-signed with a secret the
stand-ins share, so a service stand-in can refuse bearer tokens this endpoint never issued
(see :class:`TokenSigner.verify`). Plain http on loopback, like the platform's local endpoint.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass

from aiohttp import web

from standins._server import RunningServer, serve_cli, start_app

TOKEN_PATH = "/msi/token"
API_VERSION = "2019-08-01"
# App Service hands out tokens valid for about a day; credentials refresh ahead of expiry.
DEFAULT_TOKEN_LIFETIME_SECONDS = 24 * 3600
SYSTEM_ASSIGNED_CLIENT_ID = "00000000-0000-0000-0000-00000000c1d0"
_TOKEN_PREFIX = "sit1"
# The client id of a user-assigned identity is chosen by the caller; everything else is
# treated as the one system-assigned identity of the local app.
_IDENTITY_PARAMS = ("client_id", "object_id", "principal_id", "mi_res_id", "msi_res_id")

IDENTITY_SECRET_ENV = "STANDINS_IDENTITY_SECRET"
IDENTITY_HEADER_ENV = "STANDINS_IDENTITY_HEADER"


class InvalidTokenError(Exception):
    """The bearer token was not issued by this endpoint's signer, or is no longer valid."""


@dataclass(frozen=True)
class TokenClaims:
    audience: str
    client_id: str
    issued_at_epoch_s: int
    expires_on_epoch_s: int
    token_id: str


class TokenSigner:
    """Issues and verifies the endpoint's opaque bearer tokens (HMAC-SHA256 over the claims)."""

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("identity secret must be at least 16 bytes")
        self._key = key

    def issue(
        self,
        audience: str,
        *,
        client_id: str = SYSTEM_ASSIGNED_CLIENT_ID,
        lifetime_s: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
        now_epoch_s: int | None = None,
    ) -> tuple[str, TokenClaims]:
        issued = int(time.time()) if now_epoch_s is None else now_epoch_s
        claims = TokenClaims(audience, client_id, issued, issued + lifetime_s, uuid.uuid4().hex)
        payload = json.dumps(
            {
                "aud": claims.audience,
                "cid": claims.client_id,
                "iat": claims.issued_at_epoch_s,
                "exp": claims.expires_on_epoch_s,
                "jti": claims.token_id,
            },
            separators=(",", ":"),
        ).encode()
        body = f"{_TOKEN_PREFIX}.{_b64(payload)}"
        return f"{body}.{_b64(self._mac(body))}", claims

    def verify(self, token: str, *, now_epoch_s: int | None = None) -> TokenClaims:
        """Return the token's claims, or raise InvalidTokenError (bad signature, expired, malformed)."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _TOKEN_PREFIX:
            raise InvalidTokenError("token is not one this identity endpoint issues")
        body = f"{parts[0]}.{parts[1]}"
        try:
            signature = _unb64(parts[2])
            raw = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error) as exc:
            raise InvalidTokenError("token is malformed") from exc
        if not hmac.compare_digest(signature, self._mac(body)):
            raise InvalidTokenError("token signature is invalid")
        claims = TokenClaims(
            str(raw["aud"]), str(raw["cid"]), int(raw["iat"]), int(raw["exp"]), str(raw["jti"])
        )
        now = int(time.time()) if now_epoch_s is None else now_epoch_s
        if claims.expires_on_epoch_s <= now:
            raise InvalidTokenError("token has expired")
        return claims

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def identity_env(url: str, identity_header: str) -> dict[str, str]:
    """The app settings App Service sets for its managed identity, pointing at this endpoint."""
    return {"IDENTITY_ENDPOINT": f"{url}{TOKEN_PATH}", "IDENTITY_HEADER": identity_header}


def _error(status: int, message: str) -> web.Response:
    # The platform answers failures with statusCode/message; msal reports both to the caller.
    return web.json_response({"statusCode": status, "message": message}, status=status)


def build_identity_app(signer: TokenSigner, identity_header: str) -> web.Application:
    async def token(request: web.Request) -> web.Response:
        presented = request.headers.get("X-IDENTITY-HEADER", "")
        if not hmac.compare_digest(presented.encode(), identity_header.encode()):
            return _error(401, "X-IDENTITY-HEADER is missing or does not match IDENTITY_HEADER")
        if request.query.get("api-version") != API_VERSION:
            return _error(400, f"api-version must be {API_VERSION}")
        resource = request.query.get("resource", "").strip()
        if not resource:
            return _error(400, "resource is required")
        client_id = next(
            (request.query[name] for name in _IDENTITY_PARAMS if request.query.get(name)),
            SYSTEM_ASSIGNED_CLIENT_ID,
        )
        access_token, claims = signer.issue(resource, client_id=client_id)
        return web.json_response(
            {
                "access_token": access_token,
                "expires_on": str(claims.expires_on_epoch_s),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": claims.client_id,
            }
        )

    app = web.Application()
    app.router.add_get(TOKEN_PATH, token)
    return app


async def start_identity(
    secret: str | bytes, identity_header: str, *, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    """Serve the token endpoint; the result's ``url`` plus TOKEN_PATH is IDENTITY_ENDPOINT."""
    return await start_app(build_identity_app(TokenSigner(secret), identity_header), host=host, port=port)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m standins.identity", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--secret",
        default=os.environ.get(IDENTITY_SECRET_ENV),
        help=f"token signing secret shared with the service stand-ins (default: ${IDENTITY_SECRET_ENV})",
    )
    parser.add_argument(
        "--identity-header",
        default=os.environ.get(IDENTITY_HEADER_ENV),
        help=f"the IDENTITY_HEADER value clients must present (default: ${IDENTITY_HEADER_ENV})",
    )
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error(f"--secret or ${IDENTITY_SECRET_ENV} is required")
    if not args.identity_header:
        parser.error(f"--identity-header or ${IDENTITY_HEADER_ENV} is required")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)

    serve_cli(lambda: start_identity(args.secret, args.identity_header, host=args.host, port=args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
