"""``python -m standins.funchost``: run the app's timers like ``func start`` would.

Settings are loaded before the app module is imported, because the app may read them at import.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from standins._server import serve_until_signalled
from standins.funchost.discovery import DiscoveryError
from standins.funchost.host import start_host
from standins.funchost.schedule import ScheduleError
from standins.funchost.settings import DEFAULT_HTTP_PORT, LocalSettingsError, load_local_settings


def _utc_formatter() -> logging.Formatter:
    # Core Tools stamps its console lines in UTC: [2025-01-01T12:00:00.123Z] Executing 'Functions.x' ...
    formatter = logging.Formatter("[%(asctime)s.%(msecs)03dZ] %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    return formatter


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m standins.funchost", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (put on sys.path)")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="local.settings.json (default: <root>/local.settings.json if present)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"admin/HTTP port (default: Host.LocalHttpPort or {DEFAULT_HTTP_PORT}; 0 = any free)",
    )
    parser.add_argument("--no-schedules", action="store_true", help="only run functions via the admin API")
    return parser.parse_args(argv)


def _import_app(spec: str, root: Path) -> Any:
    module_name, _, attribute = spec.partition(":")
    sys.path.insert(0, str(root.resolve()))
    module = importlib.import_module(module_name)
    return getattr(module, attribute or "app")


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_utc_formatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])

    settings_file = args.settings
    if settings_file is None and (args.root / "local.settings.json").exists():
        settings_file = args.root / "local.settings.json"
    port = args.port
    try:
        if settings_file is not None:
            settings = load_local_settings(settings_file)
            port = port if port is not None else settings.local_http_port
        app = _import_app(args.app, args.root)
    except LocalSettingsError as error:
        sys.exit(f"funchost: {error}")

    async def start() -> Callable[[], Awaitable[None]]:
        host = await start_host(
            app,
            host=args.host,
            port=DEFAULT_HTTP_PORT if port is None else port,
            enable_schedules=not args.no_schedules,
        )
        print("Functions:", flush=True)
        for runner in host.runners.values():
            function = runner.function
            if function.disabled:
                when = "disabled"
            elif runner.next_run is None:
                when = "schedules off (admin API only)"
            else:
                when = f"next run {runner.next_run.isoformat()}"
            print(
                f"  {function.name}: timerTrigger schedule '{function.schedule.expression}'"
                f" (from '{function.raw_schedule}'), {when}",
                flush=True,
            )
        print(f"READY {host.url}", flush=True)
        return host.stop

    try:
        asyncio.run(serve_until_signalled(start))
    except (ScheduleError, DiscoveryError) as error:
        sys.exit(f"funchost: {error}")


if __name__ == "__main__":
    main()
