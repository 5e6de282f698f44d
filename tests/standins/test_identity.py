"""The managed-identity endpoint, reached by the unmodified azure-identity credentials via env."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

from standins._server import RunningServer
from standins.identity import (
    SYSTEM_ASSIGNED_CLIENT_ID,
    InvalidTokenError,
    TokenSigner,
    identity_env,
    start_identity,
)
from tests import ROOT

SCOPE = "https://monitor.azure.com/.default"
SECRET = "s" * 32
HEADER = "local-identity-header"


@pytest.fixture
async def identity(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    server = await start_identity(SECRET, HEADER)
    for name, value in identity_env(server.url, HEADER).items():
        monkeypatch.setenv(name, value)
    # DefaultAzureCredential must reach managed identity, not an environment service principal.
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE",
                 "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    yield server
    await server.stop()


async def test_default_azure_credential_gets_a_verifiable_token(identity: RunningServer) -> None:
    credential = DefaultAzureCredential(exclude_developer_cli_credential=True, exclude_cli_credential=True)
    token = await asyncio.to_thread(credential.get_token, SCOPE)
    claims = TokenSigner(SECRET).verify(token.token)
    assert claims.audience == "https://monitor.azure.com"
    assert claims.client_id == SYSTEM_ASSIGNED_CLIENT_ID
    assert abs(token.expires_on - claims.expires_on_epoch_s) <= 1 and token.expires_on > time.time() + 3600


async def test_user_assigned_identity_and_async_credential(identity: RunningServer) -> None:
    async with AsyncManagedIdentityCredential(client_id="11111111-2222-3333-4444-555555555555") as credential:
        token = await credential.get_token("https://api.loganalytics.io/.default")
    claims = TokenSigner(SECRET).verify(token.token)
    assert (claims.audience, claims.client_id) == (
        "https://api.loganalytics.io",
        "11111111-2222-3333-4444-555555555555",
    )


async def test_wrong_identity_header_is_refused(
    identity: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    with pytest.raises((CredentialUnavailableError, ClientAuthenticationError)):
        await asyncio.to_thread(ManagedIdentityCredential().get_token, SCOPE)


def test_verify_refuses_tampered_foreign_and_expired_tokens() -> None:
    signer = TokenSigner(SECRET)
    token, claims = signer.issue("https://monitor.azure.com")
    assert signer.verify(token) == claims
    prefix, payload, signature = token.split(".")
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (f"{prefix}.{forged_payload}.{signature}", TokenSigner("t" * 32).issue("x")[0], "opaque", ""):
        with pytest.raises(InvalidTokenError):
            signer.verify(bad)
    expired, _ = signer.issue("https://monitor.azure.com", lifetime_s=60, now_epoch_s=int(time.time()) - 120)
    with pytest.raises(InvalidTokenError, match="expired"):
        signer.verify(expired)


def test_cli_prints_ready_serves_tokens_and_stops_on_sigint() -> None:
    env = {
        **os.environ,
        "STANDINS_IDENTITY_SECRET": secrets.token_hex(32),
        "STANDINS_IDENTITY_HEADER": HEADER,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "standins.identity", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:"), line
        url = line.removeprefix("READY ")
        query = urllib.parse.urlencode({"api-version": "2019-08-01", "resource": "https://monitor.azure.com"})
        request = urllib.request.Request(f"{url}/msi/token?{query}", headers={"X-IDENTITY-HEADER": HEADER})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert (
            TokenSigner(env["STANDINS_IDENTITY_SECRET"]).verify(body["access_token"]).audience
            == body["resource"]
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
