"""Send planned calls at their scheduled times, at most `concurrency` at once, inside a deadline.

Open loop: a call's send time comes from the plan, not from when the previous call finished, so a
slow gateway shows up as latency, not as fewer calls. When every slot is busy the next call waits
and its lateness is recorded; a call that could not start before the deadline is returned as
not sent (reported, never silently dropped). The clock is injected so tests check the schedule
without depending on wall-clock precision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from shared.traffic.plan import PlannedCall
from shared.traffic.results import CallOutcome


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> datetime:
        """The current UTC time, for the records."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


# Sends one call; gets the call, when it was due (clock seconds) and the run's deadline.
SendCall = Callable[[PlannedCall, float, float], Awaitable[CallOutcome]]


@dataclass(frozen=True)
class DispatchResult:
    outcomes: tuple[CallOutcome, ...]
    not_sent: tuple[PlannedCall, ...]


async def dispatch(
    calls: Sequence[PlannedCall],
    send: SendCall,
    *,
    clock: Clock,
    start: float,
    deadline: float,
    concurrency: int,
) -> DispatchResult:
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    slots = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[CallOutcome]] = []
    not_sent: list[PlannedCall] = []

    async def run_one(call: PlannedCall, due: float) -> CallOutcome:
        try:
            return await send(call, due, deadline)
        finally:
            slots.release()

    for position, call in enumerate(calls):
        due = start + call.send_offset_seconds
        wait_seconds = due - clock.now()
        if wait_seconds > 0:
            await clock.sleep(min(wait_seconds, deadline - clock.now()))
        if clock.now() >= deadline:
            not_sent.extend(calls[position:])
            break
        await slots.acquire()
        # A slot may free up only after the deadline; then nothing more can be sent.
        if clock.now() >= deadline:
            slots.release()
            not_sent.extend(calls[position:])
            break
        tasks.append(asyncio.create_task(run_one(call, due), name=f"traffic call {call.index}"))
    outcomes = await asyncio.gather(*tasks)
    return DispatchResult(tuple(outcomes), tuple(not_sent))
