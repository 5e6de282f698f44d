"""Azure Functions entry point: two timers, each calling its one entry in shared/timers.py.

Only wiring lives here: the settings are parsed once at start (shared/config.py, the one reader of
the environment) and handed to the timers. pandas, openai and the Azure Monitor SDKs load when
a handler first runs, not at import, so cold starts on Flex Consumption stay short.
"""

from __future__ import annotations

import logging
import os

import azure.functions as func

from shared.config import load_settings

app = func.FunctionApp()

# Parsed at start so a missing or bad setting stops the app with a clear message before any timer.
settings = load_settings(os.environ)

log = logging.getLogger("function_app")

# The SDKs log every HTTP request and credential probe at INFO; in Application Insights that is
# noise billed per GB. Their warnings and errors still come through.
for _noisy in ("azure", "httpx", "httpx2"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


@app.timer_trigger(schedule="%TRAFFIC_SCHEDULE%", arg_name="timer", run_on_startup=False)
def traffic(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("traffic timer is past due; running now")
    from shared.timers import traffic_timer

    traffic_timer(settings)


@app.timer_trigger(schedule="%COST_SCHEDULE%", arg_name="timer", run_on_startup=False)
def costs(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("costs timer is past due; running now")
    from shared.timers import costs_timer

    costs_timer(settings)
