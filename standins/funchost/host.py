"""The local Functions host: fires the app's timers on schedule and serves the admin API.

``func start`` cannot be installed here (its binary comes from a CDN), so this host runs the same
registered functions the same way: discovered through the worker's indexing API, schedules from
app settings, one invocation per function at a time, Core Tools-style logs, and the admin API
on 127.0.0.1:7071 that scripts use to run a function now.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import azure.functions as func

from standins._server import RunningServer, start_app
from standins.funchost.admin import admin_app
from standins.funchost.discovery import discover_timer_functions
from standins.funchost.invocations import ADMIN_REASON, FunctionRunner, Invocation, utc_now
from standins.funchost.settings import DEFAULT_HTTP_PORT, load_local_settings

log = logging.getLogger("funchost")

# A scheduled run that starts this much after its occurrence (e.g. because the previous run
# overran) is reported to the function as past due.
DEFAULT_PAST_DUE_TOLERANCE_SECONDS = 0.5
# The schedule loop re-reads the wall clock at least this often, so a step of the clock (NTP, a VM
# resumed after a pause, the soak's stepped clock in bench/soak) fires what fell due within a quarter second
# instead of after the sleep computed before the step; occurrences the step skipped collapse into one past-due run.
CLOCK_RECHECK_SECONDS = 0.25
# How long stop() lets running invocations finish (the host's graceful shutdown).
DEFAULT_DRAIN_SECONDS = 30.0


class UnknownFunctionError(KeyError):
    pass


class LocalFunctionsHost:
    """Started by :func:`start_host`. ``runners`` maps function name to its runner."""

    def __init__(self, runners: dict[str, FunctionRunner], executor: ThreadPoolExecutor) -> None:
        self.runners = runners
        self._executor = executor
        self._server: RunningServer | None = None
        self._schedule_tasks: list[asyncio.Task[None]] = []
        self._invocation_tasks: set[asyncio.Task[Invocation]] = set()
        self.state = "Initialized"

    @property
    def url(self) -> str:
        assert self._server is not None, "host not started"
        return self._server.url

    @property
    def port(self) -> int:
        assert self._server is not None, "host not started"
        return self._server.port

    def find_runner(self, name: str) -> FunctionRunner | None:
        # Function names are case-insensitive in the Functions host (and its admin routes).
        return next((r for n, r in self.runners.items() if n.lower() == name.lower()), None)

    def trigger(
        self, name: str, *, reason: str = ADMIN_REASON, scheduled_at: datetime | None = None
    ) -> Invocation:
        """Queue an invocation now and return it at once (``await invocation.done.wait()``)."""
        runner = self.find_runner(name)
        if runner is None:
            raise UnknownFunctionError(f"no function named '{name}' (have: {', '.join(self.runners)})")
        invocation = runner.new_invocation(reason, scheduled_at)
        task = asyncio.create_task(runner.execute(invocation), name=f"invoke {runner.function.name}")
        self._invocation_tasks.add(task)
        task.add_done_callback(self._invocation_tasks.discard)
        return invocation

    async def run_now(self, name: str) -> Invocation:
        """Invoke like POST /admin/functions/{name} and wait for the outcome."""
        invocation = self.trigger(name)
        await invocation.done.wait()
        return invocation

    async def _start(self, host: str, port: int, enable_schedules: bool) -> None:
        self._server = await start_app(admin_app(self), host=host, port=port)
        if enable_schedules:
            for runner in self.runners.values():
                if runner.function.disabled:
                    name = runner.function.name
                    log.info(
                        "Function '%s' is disabled (AzureWebJobs.%s.Disabled): not scheduled", name, name
                    )
                    continue
                runner.next_run = runner.function.schedule.next_after(utc_now())
                self._schedule_tasks.append(
                    asyncio.create_task(self._run_schedule(runner), name=f"timer {runner.function.name}")
                )
        self.state = "Running"

    async def _run_schedule(self, runner: FunctionRunner) -> None:
        schedule = runner.function.schedule
        if runner.function.run_on_startup:
            await self.trigger(runner.function.name, reason=_fired_reason()).done.wait()
        while True:
            due = runner.next_run
            assert due is not None
            # Sleep on the wall clock, re-checking, so the run never starts before its occurrence.
            while (remaining := (due - utc_now()).total_seconds()) > 0:
                await asyncio.sleep(min(remaining, CLOCK_RECHECK_SECONDS))
            invocation = self.trigger(runner.function.name, reason=_fired_reason(), scheduled_at=due)
            # The run is its own task: cancelling this loop (stop) leaves it to finish and drain.
            await invocation.done.wait()
            # Occurrences missed while this run waited or ran collapse into one late (past-due) run.
            started = invocation.started_at or due
            runner.next_run = schedule.next_after(started)

    async def stop(self, drain_seconds: float = DEFAULT_DRAIN_SECONDS) -> None:
        self.state = "Stopping"
        for task in self._schedule_tasks:
            task.cancel()
        await asyncio.gather(*self._schedule_tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.stop()
        if self._invocation_tasks:
            log.info(
                "Waiting up to %.0fs for %d running invocation(s)", drain_seconds, len(self._invocation_tasks)
            )
            _, pending = await asyncio.wait(self._invocation_tasks, timeout=drain_seconds)
            if pending:
                log.warning("Stopping with %d invocation(s) still running", len(pending))
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.state = "Stopped"

    async def __aenter__(self) -> LocalFunctionsHost:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _fired_reason() -> str:
    return f"Timer fired at {utc_now().isoformat()}"


async def start_host(
    app: func.FunctionApp,
    *,
    settings_file: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_HTTP_PORT,
    enable_schedules: bool = True,
    environ: Mapping[str, str] | None = None,
    past_due_tolerance_seconds: float = DEFAULT_PAST_DUE_TOLERANCE_SECONDS,
) -> LocalFunctionsHost:
    """Index ``app``, start the admin API on host:port (0 = any free port) and the timers.

    ``settings_file`` (local.settings.json) is loaded into ``os.environ`` first without overriding
    what is set; an app that reads settings at import needs them earlier (the CLI does that).
    ``environ`` resolves %SETTING% schedules (default ``os.environ``).
    """
    if settings_file is not None:
        load_local_settings(settings_file)
    timers = discover_timer_functions(app, os.environ if environ is None else environ)
    executor = ThreadPoolExecutor(thread_name_prefix="funchost-worker")
    tolerance = timedelta(seconds=past_due_tolerance_seconds)
    runners = {timer.name: FunctionRunner(timer, executor, tolerance) for timer in timers}
    local_host = LocalFunctionsHost(runners, executor)
    try:
        await local_host._start(host, port, enable_schedules)
    except BaseException:
        await local_host.stop(drain_seconds=0)
        raise
    return local_host
