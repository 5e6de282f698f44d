"""The Azure Monitor stand-in: one HTTPS server for the query, Logs Ingestion and track APIs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from standins._server import RunningServer, start_app
from standins.chaos import Chaos
from standins.identity import TokenSigner
from standins.monitor import errors
from standins.monitor.auth import bearer_auth_middleware
from standins.monitor.chaos_faults import chaos_middleware
from standins.monitor.config import MonitorConfig
from standins.monitor.ingestion_api import INGESTION_PATH_PREFIX, IngestionApi
from standins.monitor.query_api import QUERY_PATH_PREFIX, QueryApi
from standins.monitor.schema import load_schema
from standins.monitor.store import MonitorStore
from standins.monitor.track_api import TrackApi
from standins.tls import server_ssl_context

# Track bodies can batch many envelopes; the ingestion API enforces its own 1 MiB per call.
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def _ingestion_auth_error(reason: str) -> dict[str, Any]:
    return errors.ingestion_error("InvalidToken", f"The authentication token is invalid: {reason}")


def _protected(path: str) -> Callable[[str], dict[str, Any]] | None:
    if path.startswith(QUERY_PATH_PREFIX):
        return errors.authentication_required
    if path.startswith(INGESTION_PATH_PREFIX):
        return _ingestion_auth_error
    return None


def build_monitor_app(config: MonitorConfig, store: MonitorStore) -> web.Application:
    middlewares = [bearer_auth_middleware(TokenSigner(config.identity_secret), _protected)]
    if config.chaos_file is not None:  # inside the bearer check: faults meet only requests Azure would serve
        middlewares.append(chaos_middleware(Chaos(config.chaos_file)))
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=middlewares)
    QueryApi(config, store).add_routes(app)
    IngestionApi(config, store).add_routes(app)
    TrackApi(config, store).add_routes(app)
    return app


@dataclass
class RunningMonitor:
    """The listening server plus the store it writes, for in-process tests and benchmarks."""

    server: RunningServer
    store: MonitorStore
    ca_path: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        self.store.close()


async def start_monitor(config: MonitorConfig, host: str = "127.0.0.1", port: int = 0) -> RunningMonitor:
    """Open the store, ensure TLS material in ``config.tls_dir`` and serve HTTPS on host:port."""
    tls_files, ssl_context = server_ssl_context(config.tls_dir)
    store = MonitorStore(config.db_path, load_schema(config.schema_path))
    try:
        server = await start_app(
            build_monitor_app(config, store), host=host, port=port, ssl_context=ssl_context
        )
    except BaseException:
        store.close()
        raise
    return RunningMonitor(server, store, tls_files.ca_cert)
