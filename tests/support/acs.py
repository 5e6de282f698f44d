"""The ACS email harness's plain parts (its fixtures are in tests/email/conftest.py)."""

from __future__ import annotations

from standins._server import RunningServer

SENDER = "DoNotReply@contoso.test"  # a MailFrom address of the stand-in's verified domain (contoso.test)


class Identity:
    def __init__(self, server: RunningServer, secret: str) -> None:
        self.server, self.secret = server, secret
