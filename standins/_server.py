"""Start and stop aiohttp stand-in servers on loopback, in-process or as a CLI process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from aiohttp import web

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def require_loopback(host: str) -> None:
    """Stand-ins never listen beyond this machine: refuse any other bind address."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"stand-ins bind to loopback only; got host {host!r} (use 127.0.0.1)")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now, for servers that cannot bind port 0 themselves (aiosmtpd)."""
    require_loopback(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    runner: web.AppRunner
    host: str
    port: int
    scheme: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_app(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningServer:
    """Serve ``app`` on host:port (0 picks a free port) and return where it listens."""
    require_loopback(host)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    server = site._server
    assert server is not None and isinstance(server, asyncio.base_events.Server)
    bound_port = int(server.sockets[0].getsockname()[1])
    return RunningServer(runner, host, bound_port, "https" if ssl_context else "http")


async def serve_until_signalled(start: Callable[[], Awaitable[Callable[[], Awaitable[None]]]]) -> None:
    """Run ``start`` (which returns its async stop function) until SIGINT/SIGTERM, then stop cleanly."""
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop_event.set)
    stop = await start()
    try:
        await stop_event.wait()
    finally:
        await stop()


class Serving(Protocol):
    """What a started stand-in offers its CLI: where it listens and how it stops."""

    @property
    def url(self) -> str: ...

    async def stop(self) -> None: ...


def serve_cli(start: Callable[[], Awaitable[Serving]]) -> None:
    """A stand-in CLI's life: start, print ``READY <url>`` (what the stack waits for), serve until
    SIGINT/SIGTERM, stop cleanly."""

    async def started() -> Callable[[], Awaitable[None]]:
        serving = await start()
        print(f"READY {serving.url}", flush=True)
        return serving.stop

    asyncio.run(serve_until_signalled(started))


ServiceT = TypeVar("ServiceT")


@dataclass
class RunningHttpsService(Generic[ServiceT]):
    """An HTTPS stand-in that is running: its server, the service object behind its routes (tests
    reach in through it) and the CA that signed its certificate (clients trust it)."""

    server: RunningServer
    service: ServiceT
    ca_path: Path

    @property
    def url(self) -> str:
        return self.server.url

    async def stop(self) -> None:
        await self.server.stop()


async def start_https_service(
    service: ServiceT, app: web.Application, tls_dir: Path, *, host: str, port: int
) -> RunningHttpsService[ServiceT]:
    """Ensure TLS material in `tls_dir` (the stack's CA) and serve `app` over HTTPS on host:port."""
    from standins.tls import server_ssl_context

    tls_files, ssl_context = server_ssl_context(tls_dir)
    server = await start_app(app, host=host, port=port, ssl_context=ssl_context)
    return RunningHttpsService(server, service, tls_files.ca_cert)
