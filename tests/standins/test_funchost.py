"""Local Functions host: discovery, NCRONTAB, settings, the admin API and timer firing, for real."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from standins.funchost import (
    DiscoveryError,
    Invocation,
    ScheduleError,
    discover_timer_functions,
    load_local_settings,
    parse_schedule,
    start_host,
    timer_schedule,
)
from tests import ROOT

EVERY_SECOND = "* * * * * *"
# A schedule that never fires during a test (1 January, midnight).
NEVER_IN_TESTS = "0 0 0 1 1 *"


class Calls:
    """What handlers saw, recorded from worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.timers: list[func.TimerRequest] = []
        self.threads: list[str] = []
        self.active = 0
        self.max_active = 0

    def record(self, timer: func.TimerRequest, hold_seconds: float = 0.0) -> None:
        with self.lock:
            self.timers.append(timer)
            self.threads.append(threading.current_thread().name)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(hold_seconds)
        with self.lock:
            self.active -= 1


def timer_app(
    schedule: str, calls: Calls, *, hold_seconds: float = 0.0, name: str = "tick"
) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name(name)
    @app.timer_trigger(schedule=schedule, arg_name="timer", run_on_startup=False, use_monitor=False)
    def handler(timer: func.TimerRequest) -> None:
        calls.record(timer, hold_seconds)

    return app


async def wait_for(predicate: Callable[[], bool], timeout_seconds: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --- discovery and schedules ---------------------------------------------------------------------


def test_discovers_timers_with_schedules_from_settings() -> None:
    app = func.FunctionApp()

    @app.timer_trigger(schedule="%TRAFFIC_SCHEDULE%", arg_name="timer", run_on_startup=False)
    def traffic(timer: func.TimerRequest) -> None: ...

    @app.timer_trigger(schedule="0 0 * * * *", arg_name="t", run_on_startup=True, use_monitor=True)
    def costs(t: func.TimerRequest) -> None: ...

    @app.route(route="hello")
    def hello(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("hi")

    environ = {"TRAFFIC_SCHEDULE": "0 */5 * * * *", "AzureWebJobs.costs.Disabled": "true"}
    found = {timer.name: timer for timer in discover_timer_functions(app, environ)}
    assert sorted(found) == ["costs", "traffic"], "the HTTP function is not a timer"
    assert found["traffic"].raw_schedule == "%TRAFFIC_SCHEDULE%"
    assert found["traffic"].schedule.expression == "0 */5 * * * *"
    assert found["traffic"].arg_name == "timer"
    assert found["traffic"].handler is traffic._function.get_user_function()
    assert not found["traffic"].run_on_startup and not found["traffic"].disabled
    assert found["costs"].run_on_startup and found["costs"].use_monitor and found["costs"].disabled
    assert found["costs"].arg_name == "t"
    assert found["traffic"].bindings[0]["type"] == "timerTrigger"

    # app.get_functions() raises when called twice on one app; discovery indexes each app once.
    assert [t.name for t in discover_timer_functions(app, environ)] == ["traffic", "costs"]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * * *", "2025-01-01T00:00:07", ["2025-01-01T00:00:10", "2025-01-01T00:00:15"]),
        ("0 */10 * * * *", "2025-01-01T00:03:00", ["2025-01-01T00:10:00", "2025-01-01T00:20:00"]),
        ("0 0 * * * *", "2025-01-01T00:00:00", ["2025-01-01T01:00:00", "2025-01-01T02:00:00"]),
        ("30 15 9 * * MON-FRI", "2025-01-03T10:00:00", ["2025-01-06T09:15:30", "2025-01-07T09:15:30"]),
        # NCrontab matches day AND day-of-week (croniter's default would be OR): Friday the 13th.
        ("0 0 0 13 * FRI", "2025-01-01T00:00:00", ["2025-06-13T00:00:00", "2026-02-13T00:00:00"]),
        # Five fields: no seconds column, as the WebJobs timer extension also accepts.
        ("*/15 * * * *", "2025-01-01T00:01:00", ["2025-01-01T00:15:00", "2025-01-01T00:30:00"]),
        # TimeSpan: every interval from the given moment.
        ("00:05:00", "2025-01-01T00:01:00", ["2025-01-01T00:06:00", "2025-01-01T00:11:00"]),
    ],
)
def test_next_occurrences(expression: str, after: str, expected: list[str]) -> None:
    schedule = parse_schedule(expression)
    moment = datetime.fromisoformat(after).replace(tzinfo=UTC)
    occurrences = []
    for _ in expected:
        moment = schedule.next_after(moment)
        occurrences.append(moment)
    assert occurrences == [datetime.fromisoformat(e).replace(tzinfo=UTC) for e in expected]


def test_unknown_setting_names_function_and_setting() -> None:
    with pytest.raises(ScheduleError, match=r"function 'traffic'.*app setting 'TRAFFIC_SCHEDULE'.*not set"):
        timer_schedule("%TRAFFIC_SCHEDULE%", {}, function_name="traffic")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("every 5 minutes", "six fields"),
        ("0 0 * * * * 2025", "six fields"),  # croniter would read a year column
        ("61 * * * * *", "out of range"),
        ("0 0 0 L * *", "day field"),  # croniter extension, not NCRONTAB
        ("0 0 12 ? * MON", "day field"),
        ("0 0 0 * * MON#1", "day-of-week field"),
        ("0 0 0 * * FOO", "day-of-week field"),
        ("25:00:00", "TimeSpan hours"),
    ],
)
def test_invalid_schedule_names_function_setting_and_value(value: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        timer_schedule("%COST_SCHEDULE%", {"COST_SCHEDULE": value}, function_name="costs")
    message = str(caught.value)
    assert "function 'costs'" in message
    assert "'COST_SCHEDULE'" in message
    assert repr(value) in message
    assert reason in message


def test_discovery_reports_bad_schedule() -> None:
    app = timer_app("%TICK%", Calls())
    with pytest.raises(ScheduleError, match="function 'tick'"):
        discover_timer_functions(app, {"TICK": "nonsense"})


def test_unsupported_bindings_are_an_error() -> None:
    app = func.FunctionApp()

    @app.timer_trigger(schedule=NEVER_IN_TESTS, arg_name="timer")
    @app.queue_output(arg_name="out", queue_name="q", connection="AzureWebJobsStorage")
    def enqueue(timer: func.TimerRequest, out: func.Out[str]) -> None: ...

    with pytest.raises(DiscoveryError, match=r"function 'enqueue'.*queue"):
        discover_timer_functions(app, {})


# --- local.settings.json ---------------------------------------------------------------------------


def test_local_settings_do_not_override_environment(tmp_path: Path) -> None:
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {
                    "FROM_FILE": "file",
                    "ALREADY_SET": "file",
                    "NUMBER": 5,
                    "FLAG": True,
                    "NIL": None,
                },
                "Host": {"LocalHttpPort": 7072},
            }
        )
    )
    environ = {"ALREADY_SET": "environment"}
    loaded = load_local_settings(settings_file, environ)
    assert environ == {"ALREADY_SET": "environment", "FROM_FILE": "file", "NUMBER": "5", "FLAG": "True"}
    assert loaded.skipped == ["ALREADY_SET"]
    assert loaded.local_http_port == 7072


def test_local_settings_errors(tmp_path: Path) -> None:
    bad = tmp_path / "local.settings.json"
    bad.write_text(json.dumps({"Values": {"NESTED": {"a": 1}}}))
    with pytest.raises(ValueError, match=r"Values\.NESTED must be a string"):
        load_local_settings(bad, {})
    with pytest.raises(ValueError, match="not found"):
        load_local_settings(tmp_path / "missing.json", {})


async def test_start_host_loads_settings_file_before_resolving_schedules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICK_SCHEDULE", "0 0 0 1 1 *")
    monkeypatch.delenv("TICK_OTHER", raising=False)
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"Values": {"TICK_SCHEDULE": "*/5 * * * * *", "TICK_OTHER": "x"}}))
    host = await start_host(timer_app("%TICK_SCHEDULE%", Calls()), settings_file=settings_file, port=0)
    try:
        assert host.runners["tick"].function.schedule.expression == "0 0 0 1 1 *", "environment wins"
        assert os.environ["TICK_OTHER"] == "x"
    finally:
        await host.stop()
        monkeypatch.delenv("TICK_OTHER")


# --- admin API -------------------------------------------------------------------------------------


async def test_admin_endpoint_runs_function_with_timer_request() -> None:
    calls = Calls()
    host = await start_host(timer_app(NEVER_IN_TESTS, calls), port=0)
    try:
        async with aiohttp.ClientSession(host.url) as http:
            async with http.get("/admin/host/status") as response:
                assert response.status == 200
                assert (await response.json())["state"] == "Running"
            async with http.get("/admin/functions") as response:
                [listed] = await response.json()
                assert listed["name"] == "tick"
                assert listed["schedule"] == NEVER_IN_TESTS
                assert listed["config"]["bindings"][0]["type"] == "timerTrigger"
                assert listed["next_run"].startswith(f"{datetime.now(UTC).year + 1}-01-01T00:00:00")
            async with http.post("/admin/functions/tick", json={"input": ""}) as response:
                assert response.status == 202
                invocation_id = response.headers["X-Invocation-Id"]

            async def last() -> dict[str, Any]:
                async with http.get("/admin/functions/tick/status") as status_response:
                    body = await status_response.json()
                    assert isinstance(body, dict)
                    return body

            deadline = time.monotonic() + 5
            while (status := await last())["last_invocation"]["status"] not in ("Succeeded", "Failed"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        invocation = status["last_invocation"]
        assert invocation["id"] == invocation_id
        assert invocation["status"] == "Succeeded"
        assert invocation["past_due"] is False
        assert invocation["reason"] == "This function was programmatically called via the host APIs."
        [timer] = calls.timers
        assert isinstance(timer, TimerRequest), "the concrete azure.functions.timer.TimerRequest"
        assert timer.past_due is False
        assert "Next" in timer.schedule_status
        assert calls.threads[0].startswith("funchost-worker"), "sync handlers run on the worker thread pool"
    finally:
        await host.stop()


async def test_unknown_function_is_404() -> None:
    host = await start_host(timer_app(NEVER_IN_TESTS, Calls()), port=0)
    try:
        async with aiohttp.ClientSession(host.url) as http:
            for method, path in [
                ("POST", "/admin/functions/nope"),
                ("GET", "/admin/functions/nope"),
                ("GET", "/admin/functions/nope/status"),
            ]:
                async with http.request(method, path, json={"input": ""}) as response:
                    assert response.status == 404, path
            # Function names are case-insensitive, as in the Functions host.
            async with http.post("/admin/functions/TICK", json={"input": ""}) as response:
                assert response.status == 202
    finally:
        await host.stop()


async def test_run_now_returns_finished_invocation() -> None:
    calls = Calls()
    host = await start_host(timer_app(NEVER_IN_TESTS, calls), port=0, enable_schedules=False)
    try:
        invocation = await host.run_now("tick")
        assert isinstance(invocation, Invocation)
        assert invocation.status == "Succeeded"
        assert invocation.duration_ms is not None
        assert len(calls.timers) == 1
        assert host.runners["tick"].next_run is None, "schedules disabled"
    finally:
        await host.stop()


# --- timers ----------------------------------------------------------------------------------------


async def test_every_second_schedule_fires_repeatedly() -> None:
    calls = Calls()
    host = await start_host(timer_app(EVERY_SECOND, calls), port=0)
    try:
        await asyncio.sleep(2.5)
        fired = list(host.runners["tick"].history)
    finally:
        await host.stop()
    assert len(calls.timers) >= 2
    assert all(not timer.past_due for timer in calls.timers)
    assert all(inv.reason.startswith("Timer fired at ") for inv in fired)
    for invocation in fired:
        assert invocation.scheduled_at is not None and invocation.started_at is not None
        assert invocation.scheduled_at.microsecond == 0, "fires on whole seconds"
        assert invocation.started_at >= invocation.scheduled_at, "never early"


async def test_overlapping_runs_are_serialised_and_late_runs_past_due() -> None:
    calls = Calls()
    app = timer_app(EVERY_SECOND, calls, hold_seconds=0.7)
    host = await start_host(app, port=0, past_due_tolerance_seconds=0.1)
    try:
        runner = host.runners["tick"]
        await wait_for(lambda: runner.busy)  # first scheduled run under way
        manual = host.trigger("tick")  # queued behind it
        # The next whole-second occurrence comes while the manual run holds the function.
        await wait_for(lambda: len([i for i in runner.history if i.scheduled_at]) >= 2, timeout_seconds=4)
        await wait_for(lambda: all(i.done.is_set() for i in runner.history), timeout_seconds=4)
        history = list(runner.history)
    finally:
        await host.stop()
    assert calls.max_active == 1, "one invocation of a function at a time"
    spans = sorted((i.started_at, i.ended_at) for i in history if i.started_at and i.ended_at)
    assert len(spans) == len(history)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    first, second = [i for i in history if i.scheduled_at][:2]
    assert first.past_due is False
    assert second.past_due is True, "waited behind the manual run, so it started late"
    assert manual.past_due is False
    assert [t.past_due for t in calls.timers[:3]] == [False, False, True]


async def test_failing_function_is_logged_and_host_continues(caplog: pytest.LogCaptureFixture) -> None:
    app = func.FunctionApp()
    calls = Calls()

    @app.timer_trigger(schedule=EVERY_SECOND, arg_name="timer")
    def boom(timer: func.TimerRequest) -> None:
        calls.record(timer)
        raise RuntimeError("pricing table missing")

    @app.timer_trigger(schedule=NEVER_IN_TESTS, arg_name="timer")
    def fine(timer: func.TimerRequest) -> None: ...

    caplog.set_level(logging.INFO, logger="funchost")
    host = await start_host(app, port=0)
    try:
        await wait_for(lambda: len(calls.timers) >= 2, timeout_seconds=4)  # it keeps firing after failing
        assert (await host.run_now("fine")).status == "Succeeded"
        failed = host.runners["boom"].history[0]
        await failed.done.wait()
    finally:
        await host.stop()
    assert failed.status == "Failed"
    assert failed.error == "RuntimeError: pricing table missing"
    messages = [record.getMessage() for record in caplog.records]
    assert f"Executing 'Functions.boom' (Reason='{failed.reason}', Id={failed.id})" in messages
    executed_boom = f"Executed 'Functions.boom' (Failed, Id={failed.id}, Duration="
    assert any(m.startswith(executed_boom) for m in messages)
    exception = next(
        r.exc_info[1] for r in caplog.records if r.exc_info and "Functions.boom" in r.getMessage()
    )
    assert str(exception) == "pricing table missing"
    assert any(m.startswith("Executed 'Functions.fine' (Succeeded, Id=") for m in messages)


async def test_async_handler_runs_on_the_loop() -> None:
    app = func.FunctionApp()
    seen: list[bool] = []

    @app.timer_trigger(schedule=NEVER_IN_TESTS, arg_name="timer")
    async def ticker(timer: func.TimerRequest) -> None:
        await asyncio.sleep(0)
        seen.append(timer.past_due)

    host = await start_host(app, port=0)
    try:
        assert (await host.run_now("ticker")).status == "Succeeded"
    finally:
        await host.stop()
    assert seen == [False]


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_imports_app_after_loading_settings(tmp_path: Path) -> None:
    # The app reads a setting at import, like function_app.py does: settings must be loaded first.
    marker = tmp_path / "ran.txt"
    (tmp_path / "cli_app.py").write_text(
        "import os\n"
        "import azure.functions as func\n"
        "OUTPUT = os.environ['MARKER_FILE']\n"
        "app = func.FunctionApp()\n"
        "@app.timer_trigger(schedule='%JOB_SCHEDULE%', arg_name='timer')\n"
        "def job(timer: func.TimerRequest) -> None:\n"
        "    open(OUTPUT, 'a').write(f'past_due={timer.past_due}\\n')\n"
    )
    settings = {"Values": {"JOB_SCHEDULE": NEVER_IN_TESTS, "MARKER_FILE": str(marker)}}
    (tmp_path / "local.settings.json").write_text(json.dumps(settings))
    cmd = [sys.executable, "-m", "standins.funchost", "--app", "cli_app:app", "--root", str(tmp_path)]
    cmd += ["--settings", str(tmp_path / "local.settings.json"), "--port", "0"]
    env = {k: v for k, v in os.environ.items() if k not in ("JOB_SCHEDULE", "MARKER_FILE")}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        assert lines[0] == "Functions:"
        assert lines[1].startswith(f"  job: timerTrigger schedule '{NEVER_IN_TESTS}' (from '%JOB_SCHEDULE%')")
        assert "next run" in lines[1]
        assert lines[2].startswith("READY http://127.0.0.1:")
        url = lines[2].split(" ", 1)[1]

        async def invoke() -> None:
            async with aiohttp.ClientSession(url) as http:
                async with http.post("/admin/functions/job", json={"input": ""}) as response:
                    assert response.status == 202
                deadline = time.monotonic() + 5
                while True:
                    async with http.get("/admin/functions/job/status") as response:
                        last = (await response.json())["last_invocation"]
                    if last["status"] == "Succeeded":
                        return
                    assert time.monotonic() < deadline, last
                    await asyncio.sleep(0.05)

        asyncio.run(invoke())
        assert marker.read_text() == "past_due=False\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_bad_schedule_exits_with_message(tmp_path: Path) -> None:
    (tmp_path / "bad_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.timer_trigger(schedule='%NOPE%', arg_name='timer')\n"
        "def job(timer: func.TimerRequest) -> None: ...\n"
    )
    cmd = [sys.executable, "-m", "standins.funchost", "--app", "bad_app:app", "--root", str(tmp_path)]
    cmd += ["--port", "0"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "function 'job'" in result.stderr and "'NOPE'" in result.stderr
