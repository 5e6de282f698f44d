"""Find the timer functions on an ``azure.functions.FunctionApp`` through its indexing API.

This is the same API the Python worker uses to index a v2-model app (``app.get_functions()``),
so names, schedules and handlers are exactly what Azure would see.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.decorators.constants import TIMER_TRIGGER
from azure.functions.decorators.timer import TimerTrigger

from standins.funchost.schedule import Schedule, timer_schedule

log = logging.getLogger("funchost")

# get_functions() validates name uniqueness against state it keeps on the app, so a second call
# on the same app raises "does not have a unique function name". Index each app once.
_indexed: weakref.WeakKeyDictionary[Any, list[func.Function]] = weakref.WeakKeyDictionary()


class DiscoveryError(ValueError):
    """The app registers something the local host cannot run the way Azure would."""


@dataclass(frozen=True)
class TimerFunction:
    name: str
    raw_schedule: str  # as declared, e.g. "%TRAFFIC_SCHEDULE%"
    schedule: Schedule  # resolved and parsed
    run_on_startup: bool
    use_monitor: bool | None
    arg_name: str
    handler: Callable[..., Any]
    bindings: list[dict[str, Any]]  # function.json form, as GET /admin/functions shows it
    disabled: bool  # AzureWebJobs.<name>.Disabled, the app setting that disables a function


def indexed_functions(app: func.FunctionApp) -> list[func.Function]:
    """``app.get_functions()``, called once per app object."""
    functions = _indexed.get(app)
    if functions is None:
        functions = app.get_functions()
        _indexed[app] = functions
    return functions


def _is_disabled(name: str, environ: Mapping[str, str]) -> bool:
    return environ.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in ("true", "1")


def _timer_function(
    function: func.Function, trigger: TimerTrigger, environ: Mapping[str, str]
) -> TimerFunction:
    name = function.get_function_name() or function.get_user_function().__name__
    bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
    extra = [b for b in bindings if b.get("type") != TIMER_TRIGGER]
    if extra:
        kinds = ", ".join(sorted({str(b.get("type")) for b in extra}))
        raise DiscoveryError(
            f"function '{name}': bindings other than the timer trigger ({kinds}) are not supported"
        )
    return TimerFunction(
        name=name,
        raw_schedule=trigger.schedule,
        schedule=timer_schedule(trigger.schedule, environ, function_name=name),
        run_on_startup=bool(trigger.run_on_startup),
        use_monitor=trigger.use_monitor,
        arg_name=trigger.name,
        handler=function.get_user_function(),
        bindings=bindings,
        disabled=_is_disabled(name, environ),
    )


def discover_timer_functions(app: func.FunctionApp, environ: Mapping[str, str]) -> list[TimerFunction]:
    """The app's timer functions with schedules resolved from ``environ`` (the app settings)."""
    timers: list[TimerFunction] = []
    for function in indexed_functions(app):
        trigger = function.get_trigger()
        if isinstance(trigger, TimerTrigger):
            timers.append(_timer_function(function, trigger, environ))
        else:
            kind = trigger.get_binding_name() if trigger else "no trigger"
            log.warning(
                "Function '%s' (%s) is not a timer; the local host does not run it",
                function.get_function_name(),
                kind,
            )
    return timers
