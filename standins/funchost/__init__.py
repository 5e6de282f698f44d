"""Local Azure Functions host for the app's timer functions (a stand-in for ``func start``).

In-process: ``host = await start_host(function_app.app, port=0)``; ``await host.run_now("costs")``;
``await host.stop()``. CLI: ``python -m standins.funchost --app function_app:app
--settings local.settings.json --port 7071``.
"""

from __future__ import annotations

from standins.funchost.discovery import DiscoveryError, TimerFunction, discover_timer_functions
from standins.funchost.host import LocalFunctionsHost, UnknownFunctionError, start_host
from standins.funchost.invocations import Invocation
from standins.funchost.schedule import ScheduleError, parse_schedule, timer_schedule
from standins.funchost.settings import LocalSettingsError, load_local_settings

__all__ = [
    "DiscoveryError",
    "Invocation",
    "LocalFunctionsHost",
    "LocalSettingsError",
    "ScheduleError",
    "TimerFunction",
    "UnknownFunctionError",
    "discover_timer_functions",
    "load_local_settings",
    "parse_schedule",
    "start_host",
    "timer_schedule",
]
