"""Local SMTP relay stand-in: accepts mail like a real submission relay and drops it into an outbox.

aiosmtpd speaks SMTP with STARTTLS and AUTH PLAIN/LOGIN. As on real relays (Office 365, SendGrid,
Postfix submission), credentials are only accepted over TLS and, when configured, sending
requires authentication. Each accepted message becomes one ``.eml`` file: the exact bytes the
client sent, preceded by ``Return-Path`` and ``X-Envelope-To`` (the envelope is not in the
message itself, and Bcc recipients exist only there). Files are written to a temp name and
renamed, so a reader that lists ``*.eml`` never sees half a message.

Injected faults (standins/chaos.py, point ``smtp``, one draw per message at MAIL; ``--chaos FILE``), as RFC 5321
lets a relay answer (section 4.2.2 reply codes; 4yz are transient, section 4.2.1: the client tries again later):
"refuse" answers MAIL with 451 (Requested action aborted: local error in processing), so nothing is stored;
"drop_after_data" stores the message, then closes the connection without the final 250 reply to DATA (the
client cannot know it was accepted: section 6.1's duplicate case, the known one of issue 14).

In-process: ``with start_mail(MailConfig(...)) as mail: ...`` (runs on its own thread and loop,
so blocking clients such as smtplib work from any thread, including an event loop's).
CLI: ``python -m standins.mail --outbox .local/outbox --port 2525 --user u --password p
--tls-dir .local/tls`` prints ``READY smtp://127.0.0.1:2525``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import itertools
import logging
import os
import re
import ssl
import sys
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from standins._server import free_port, require_loopback, serve_until_signalled
from standins.chaos import Chaos, add_chaos_argument, chaos_from

log = logging.getLogger("standins.mail")

# The name the server announces in its banner/EHLO; avoids socket.getfqdn(), which can stall on
# machines without DNS.
SERVER_NAME = "mail.standin.local"
# A port picked by free_port() can be taken before the Controller binds it; retry a few times.
BIND_ATTEMPTS = 5
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
MESSAGE_ID_IN_NAME_MAX_CHARS = 60
# Marks an envelope whose connection drops after DATA (an injected fault); and how long to wait for the drop.
_DROP_AFTER_DATA = "chaos_drop_after_data"
_DROP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class MailConfig:
    outbox_dir: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    username: str | None = None  # None = no AUTH offered or required (open relay on loopback)
    password: str | None = None
    tls_cert: Path | None = None  # PEM; enables STARTTLS together with tls_key
    tls_key: Path | None = None
    require_starttls: bool = False  # True: refuse every command but EHLO/STARTTLS/QUIT before TLS
    chaos_file: Path | None = None  # fault injection (standins/chaos.py); None: none


def server_tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # what Azure-side relays accept
    context.load_cert_chain(cert_file, key_file)
    return context


class OutboxHandler:
    """aiosmtpd handler: authenticates against one configured account and stores messages."""

    def __init__(
        self, outbox_dir: Path, username: str | None, password: str | None, chaos: Chaos | None = None
    ) -> None:
        self.outbox_dir = outbox_dir
        self._chaos = chaos
        self._username = (username or "").encode()
        self._password = (password or "").encode()
        # Several messages can arrive in the same microsecond; the counter keeps names unique
        # and in arrival order.
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # Constant-time comparison: the stand-in should not teach bad habits.
        ok = hmac.compare_digest(auth_data.login, self._username) and hmac.compare_digest(
            auth_data.password, self._password
        )
        if not ok:
            log.warning("rejected AUTH %s for user %r", mechanism, auth_data.login.decode(errors="replace"))
        return AuthResult(success=ok, handled=False)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> object:
        """The message's one fault draw; without a fault, aiosmtpd's own MAIL handling (MISSING)."""
        kind = self._chaos.draw("smtp") if self._chaos is not None else None
        if kind == "refuse":
            assert self._chaos is not None
            self._chaos.record("smtp", kind, f"MAIL FROM:<{address}> answered 451")
            return "451 4.3.0 Requested action aborted: local error in processing; try again later"
        if kind == "drop_after_data":
            setattr(envelope, _DROP_AFTER_DATA, True)
        return MISSING

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        if content is None:
            return "554 Transaction failed: no message data"
        path = self.store(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        log.info("stored message from %s to %s as %s", envelope.mail_from, envelope.rcpt_tos, path.name)
        transport = server.transport
        if getattr(envelope, _DROP_AFTER_DATA, False) and self._chaos is not None and isinstance(
            transport, asyncio.Transport
        ):
            self._chaos.record("smtp", "drop_after_data", f"{path.name} stored, connection closed before 250")
            transport.abort()
            # The connection's loss cancels this session's task (aiosmtpd's connection_lost), 250 unsent.
            await asyncio.sleep(_DROP_GRACE_SECONDS)
        return "250 Message accepted for delivery"

    def store(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        envelope_headers = f"Return-Path: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n".encode()
        with self._lock:
            sequence = next(self._sequence)
        name = eml_file_name(datetime.now(UTC), sequence, _message_id(content))
        return write_atomically(self.outbox_dir / name, envelope_headers + content)


def _message_id(content: bytes) -> str:
    headers = BytesHeaderParser().parsebytes(content)
    return str(headers.get("Message-ID", "")).strip().strip("<>") or uuid.uuid4().hex


def eml_file_name(received_at: datetime, sequence: int, message_id: str) -> str:
    """``20250101T120000.123456Z-000001-<message id>.eml``: sorts by arrival, names the message."""
    stamp = received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    safe_id = _UNSAFE_NAME_CHARS.sub("_", message_id)[:MESSAGE_ID_IN_NAME_MAX_CHARS]
    return f"{stamp}-{sequence:06d}-{safe_id}.eml"


def write_atomically(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden temp name without the .eml suffix, in the same directory so the rename is atomic.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


class RunningMail:
    """A started mail stand-in. Stop with ``.stop()`` or use as a (sync or async) context manager."""

    def __init__(self, controller: Controller, host: str, port: int, outbox_dir: Path) -> None:
        self._controller = controller
        self.host = host
        self.port = port
        self.outbox_dir = outbox_dir

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[Path]:
        """Stored messages, oldest first."""
        return sorted(self.outbox_dir.glob("*.eml"))

    def __enter__(self) -> RunningMail:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> RunningMail:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def start_mail(config: MailConfig) -> RunningMail:
    """Start the SMTP server on its own thread and return once it accepts connections."""
    require_loopback(config.host)
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ValueError("mail stand-in: give both tls_cert and tls_key, or neither")
    tls_context = (
        server_tls_context(config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
    )
    auth_required = config.username is not None
    if auth_required and tls_context is None:
        # auth_require_tls=True (as on real relays) would make AUTH impossible without STARTTLS.
        raise ValueError("mail stand-in: a username needs tls_cert/tls_key (AUTH is only allowed over TLS)")
    if config.require_starttls and tls_context is None:
        raise ValueError("mail stand-in: require_starttls needs tls_cert/tls_key")
    config.outbox_dir.mkdir(parents=True, exist_ok=True)
    handler = OutboxHandler(config.outbox_dir, config.username, config.password, chaos_from(config.chaos_file))

    last_error: OSError | None = None
    for _ in range(BIND_ATTEMPTS if config.port == 0 else 1):
        port = config.port or free_port(config.host)
        controller = Controller(
            handler,
            hostname=config.host,
            port=port,
            server_hostname=SERVER_NAME,
            tls_context=tls_context,
            require_starttls=config.require_starttls,
            authenticator=handler.authenticate if auth_required else None,
            auth_required=auth_required,
            auth_require_tls=True,
        )
        try:
            controller.start()
        except OSError as error:  # port taken between free_port() and bind
            last_error = error
            continue
        return RunningMail(controller, config.host, port, config.outbox_dir)
    raise RuntimeError(f"mail stand-in could not bind {config.host}: {last_error}")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m standins.mail", description=__doc__.splitlines()[0])
    parser.add_argument("--outbox", type=Path, default=Path(".local/outbox"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed in READY)")
    parser.add_argument("--user", default=None, help="AUTH username; omit for no AUTH")
    parser.add_argument("--password", default=None)
    parser.add_argument("--tls-dir", type=Path, default=None, help="where the local CA/server cert live")
    parser.add_argument("--tls-cert", type=Path, default=None, help="server cert PEM (instead of --tls-dir)")
    parser.add_argument("--tls-key", type=Path, default=None, help="server key PEM (instead of --tls-dir)")
    parser.add_argument("--require-starttls", action="store_true")
    add_chaos_argument(parser)
    return parser.parse_args(argv)


def _tls_files(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    if args.tls_dir is None:
        return args.tls_cert, args.tls_key
    from standins import tls  # imported lazily: only the CLI with --tls-dir needs it

    material = tls.ensure_tls(args.tls_dir)
    return Path(material.server_cert), Path(material.server_key)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every connection and command at INFO; stored messages are what matter here.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    cert, key = _tls_files(args)
    config = MailConfig(
        outbox_dir=args.outbox,
        host=args.host,
        port=args.port,
        username=args.user,
        password=args.password,
        tls_cert=cert,
        tls_key=key,
        require_starttls=args.require_starttls,
        chaos_file=args.chaos,
    )

    async def start() -> Callable[[], Awaitable[None]]:
        running = await asyncio.to_thread(start_mail, config)
        print(f"READY {running.url}", flush=True)

        async def stop() -> None:
            await asyncio.to_thread(running.stop)

        return stop

    asyncio.run(serve_until_signalled(start))
    sys.exit(0)


if __name__ == "__main__":
    main()
