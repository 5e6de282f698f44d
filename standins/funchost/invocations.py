"""Running one timer function: a TimerRequest, one invocation at a time, Core Tools-style logs.

Sync handlers run on a worker thread pool (as the Python worker does), so the event loop keeps
serving the admin API while a function runs; ``async def`` handlers run on the loop, also as in
Azure. The timer trigger is a singleton: a second invocation of the same function waits until
the first has finished, and if that makes a scheduled run late it sees ``past_due``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
import time
import traceback
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions.timer import TimerRequest

from standins.funchost.discovery import TimerFunction

log = logging.getLogger("funchost")

# The reason Core Tools logs for invocations through POST /admin/functions/{name}.
ADMIN_REASON = "This function was programmatically called via the host APIs."
HISTORY_LENGTH = 20


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass
class Invocation:
    id: str
    function_name: str
    reason: str
    queued_at: datetime
    scheduled_at: datetime | None  # the occurrence a timer run is for; None for admin runs
    status: str = "Queued"  # Queued -> Running -> Succeeded | Failed
    past_due: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds() * 1000)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "function": self.function_name,
            "reason": self.reason,
            "status": self.status,
            "past_due": self.past_due,
            "queued_at": _iso(self.queued_at),
            "scheduled_at": _iso(self.scheduled_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_ms": self.duration_ms,
            "error": self.error,
        }


class FunctionRunner:
    """Invokes one function, never twice at once, and remembers its recent invocations."""

    def __init__(self, function: TimerFunction, executor: Executor, past_due_tolerance: timedelta) -> None:
        self.function = function
        self.next_run: datetime | None = None  # set by the scheduler, shown by the admin API
        self.last_run: datetime | None = None
        self.history: collections.deque[Invocation] = collections.deque(maxlen=HISTORY_LENGTH)
        self._executor = executor
        self._past_due_tolerance = past_due_tolerance
        self._singleton = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self._singleton.locked()

    def new_invocation(self, reason: str, scheduled_at: datetime | None = None) -> Invocation:
        invocation = Invocation(str(uuid.uuid4()), self.function.name, reason, utc_now(), scheduled_at)
        self.history.append(invocation)
        return invocation

    def find(self, invocation_id: str) -> Invocation | None:
        return next((inv for inv in self.history if inv.id == invocation_id), None)

    async def execute(self, invocation: Invocation) -> Invocation:
        """Wait for the function to be free, run it, record and log the outcome. Never raises."""
        async with self._singleton:
            invocation.started_at = utc_now()
            invocation.past_due = (
                invocation.scheduled_at is not None
                and invocation.started_at - invocation.scheduled_at > self._past_due_tolerance
            )
            invocation.status = "Running"
            log.info(
                "Executing 'Functions.%s' (Reason='%s', Id=%s)",
                self.function.name,
                invocation.reason,
                invocation.id,
            )
            started = time.perf_counter()
            failure: Exception | None = None
            try:
                await self._call(self._timer_request(invocation))
            except Exception as error:  # a failing function must not stop the host
                failure = error
            invocation.ended_at = utc_now()
            invocation.status = "Failed" if failure else "Succeeded"
            invocation.error = "".join(traceback.format_exception_only(failure)).strip() if failure else None
            log.log(
                logging.ERROR if failure else logging.INFO,
                "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
                self.function.name,
                invocation.status,
                invocation.id,
                (time.perf_counter() - started) * 1000,
            )
            if failure:
                log.error(
                    "Exception while executing function: Functions.%s", self.function.name, exc_info=failure
                )
            self.last_run = invocation.started_at
            invocation.done.set()
        return invocation

    def _timer_request(self, invocation: Invocation) -> TimerRequest:
        # What the host passes as TimerInfo: schedule status as the schedule monitor keeps it.
        schedule = self.function.schedule
        now = invocation.started_at or utc_now()
        return TimerRequest(
            past_due=invocation.past_due,
            schedule_status={
                "Last": _iso(self.last_run) or "0001-01-01T00:00:00",
                "Next": _iso(schedule.next_after(invocation.scheduled_at or now)),
                "LastUpdated": _iso(now),
            },
            schedule={"AdjustForDST": True},
        )

    async def _call(self, timer: TimerRequest) -> None:
        handler = self.function.handler
        kwargs = {self.function.arg_name: timer}
        if inspect.iscoroutinefunction(handler):
            await handler(**kwargs)
        else:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, functools.partial(handler, **kwargs)
            )
