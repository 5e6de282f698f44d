"""Calling an Azure read within a time budget: retried when throttled or failing, else left pending.

The bypass check (shared/meters/read.py: the accounts' token metrics) and the bill check (shared/billing/
query.py: Cost Management) both read a service that throttles with 429 and a wait to honour, inside the
costs timer, whose functionTimeout counts every second (tests/test_host_json.py). Both share this one loop:
each call is tried up to `attempts` times while the check's budget lasts, waiting what the answer asks
(Retry-After, its millisecond variants, or a service's own header such as Cost Management's
``x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after``) or the retry delay; past that the read raises
ServicePending with the reason, which the check reports as a pending comparison, never as a false alarm
nor a silent skip. The SDK clients these reads use have their own retries off (shared/azure_clients.py):
a Retry-After of minutes would otherwise hold the timer.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from shared.errors import AzureServiceError, describe_azure_error

# What is worth trying again: throttled, timed out, the service busy or failing (ARM's request-limits-and-
# throttling page; Cost Management answers 429 and 503: manage-automation.md, "Data latency and rate limits").
RETRIED_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# A request's longest wait for an answer (azure-core's default read timeout is 300 s).
REQUEST_TIMEOUT_SECONDS = 30.0

T = TypeVar("T")


class ServicePending(AzureServiceError):
    """A read could not be completed within its check's budget; `reason` says why (for the log line). The check
    catches it: the comparison stays pending and the next run tries again."""

    def __init__(self, reason: str, retries: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retries = retries


@dataclass
class Budget:
    """A whole check's allowance: one deadline for every read, `attempts` per read."""

    seconds: float
    attempts: int
    retry_delay_seconds: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = self.clock() + self.seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self._deadline - self.clock())


@dataclass(frozen=True)
class Attempted:
    """What a read within the budget cost: requests made and how many of them were retries."""

    requests: int
    retries: int


def call_within_budget(
    call: Callable[[float], T],
    budget: Budget,
    *,
    who: str,
    role: str,
    retry_headers: Iterable[str] = (),
) -> tuple[T, Attempted]:
    """`call(timeout_seconds)` until it answers, within the budget. `who` names what is read in the pending
    reason ("ai-local", "Cost Management at /subscriptions/..."), `role` what a refused (401/403) read needs;
    `retry_headers` are a service's own wait headers, read before the standard ones. Raises ServicePending."""
    attempt = 0
    while True:
        attempt += 1
        remaining = budget.remaining
        if remaining <= 0:
            raise ServicePending(f"{who}: the check's {budget.seconds:g} s budget is spent", attempt - 1)
        try:
            answer = call(min(REQUEST_TIMEOUT_SECONDS, remaining))
        except Exception as error:  # azure.core errors and socket errors; anything else is a bug: re-raised
            wait = _retry_wait(error, budget, tuple(retry_headers))
            if wait is None or attempt >= budget.attempts or wait > budget.remaining:
                raise ServicePending(_reason(who, role, error, attempt, wait, budget), attempt - 1) from error
            budget.sleep(wait)
            continue
        return answer, Attempted(attempt, attempt - 1)


def _retry_wait(error: Exception, budget: Budget, retry_headers: tuple[str, ...]) -> float | None:
    """Seconds to wait before trying again, or None when trying again cannot help (or `error` is not Azure's)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(error, (ServiceRequestError, ServiceResponseError)):  # connection failed, timed out
        return budget.retry_delay_seconds
    if isinstance(error, HttpResponseError):
        if error.status_code not in RETRIED_STATUS:
            return None
        asked = retry_after_seconds(getattr(error.response, "headers", None) or {}, names=retry_headers)
        return asked if asked is not None else budget.retry_delay_seconds
    raise error


def retry_after_seconds(
    headers: Mapping[str, str], now: datetime | None = None, *, names: Iterable[str] = ()
) -> float | None:
    """The wait an answer asks for, in seconds: the longest of `names` (a service's own headers, seconds), else
    Retry-After (RFC 9110: delay-seconds or an HTTP-date) or the millisecond variants Azure sends."""
    lowered = {name.lower(): value for name, value in headers.items()}
    own = [_seconds(lowered[name.lower()]) for name in names if name.lower() in lowered]
    if any(value is not None for value in own):
        return max(value for value in own if value is not None)
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in lowered:
            try:
                return max(0.0, float(lowered[name]) / 1000)
            except ValueError:
                pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _reason(who: str, role: str, error: Exception, attempt: int, wait: float | None, budget: Budget) -> str:
    described = describe_azure_error(error)  # type: ignore[arg-type]
    status = getattr(error, "status_code", None)
    if status in (401, 403):
        return f"{who}: {described}; the app's identity needs {role}"
    if wait is None:
        return f"{who}: {described}"
    if attempt >= budget.attempts:
        return f"{who}: {described} after {attempt} attempts"
    return f"{who}: {described}; asked to wait {wait:g} s, past the {budget.remaining:.0f} s of budget left"
