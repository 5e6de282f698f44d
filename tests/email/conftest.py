"""Fixtures of the email tests: the ACS stand-in behind the identity stand-in."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from standins.acs_email import AcsEmailConfig, RunningAcsEmail, start_acs_email
from standins.identity import identity_env, start_identity
from tests.support.acs import Identity
from tests.support.loop import LoopThread


@pytest.fixture(scope="module")
def identity(loop_thread: LoopThread) -> Iterator[Identity]:
    secret, header = secrets.token_hex(32), secrets.token_urlsafe(16)
    server = loop_thread.run(start_identity(secret, header))
    with pytest.MonkeyPatch.context() as patch:
        # What the Functions platform sets for the app's managed identity.
        for name, value in identity_env(server.url, header).items():
            patch.setenv(name, value)
        patch.delenv("IDENTITY_SERVER_THUMBPRINT", raising=False)
        yield Identity(server, secret)
    loop_thread.run(server.stop())


@pytest.fixture
def make_acs(loop_thread: LoopThread, identity: Identity, tmp_path: Path) -> Iterator[Callable[..., RunningAcsEmail]]:
    started: list[RunningAcsEmail] = []

    def make(**overrides: Any) -> RunningAcsEmail:
        config = AcsEmailConfig(
            outbox_dir=tmp_path / f"outbox-{len(started)}",
            tls_dir=tmp_path / "tls",
            identity_secret=identity.secret,
            sender_domains=("contoso.test",),
            **overrides,
        )
        running = loop_thread.run(start_acs_email(config))
        started.append(running)
        return running

    yield make
    for running in started:
        loop_thread.run(running.stop())


