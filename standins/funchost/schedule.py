"""Timer schedules as the Functions host reads them: %SETTING% placeholders, NCRONTAB, TimeSpan.

NCRONTAB has six fields with seconds first (``{second} {minute} {hour} {day} {month} {day-of-week}``);
like the WebJobs timer extension, five fields mean "no seconds". croniter reads that only with
``second_at_beginning=True``, and NCrontab matches day AND day-of-week when both are restricted
(croniter defaults to cron's OR). croniter also knows extensions Azure rejects (L, #, H, ?, a year
column), so those are refused here: a schedule that runs locally must also run in Azure.
A TimeSpan (``hh:mm:ss`` or ``d.hh:mm:ss``) repeats at that interval from host start.
All times are UTC, the Functions default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from croniter import CroniterError, croniter

_PLACEHOLDER = re.compile(r"%([^%\s]+)%")
_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2}):(?P<seconds>\d{1,2})$")
_MONTH_NAMES = frozenset(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
_DAY_NAMES = frozenset(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])
_FIELD_NAMES = ("second", "minute", "hour", "day", "month", "day-of-week")
_NUMERIC_FIELD = re.compile(r"^[0-9*,/\-]+$")
_NAMED_FIELD = re.compile(r"^[0-9A-Za-z*,/\-]+$")
_WORD = re.compile(r"[A-Za-z]+")


class ScheduleError(ValueError):
    """A timer schedule that cannot be resolved or parsed; the message names function and setting."""


class Schedule(Protocol):
    @property
    def expression(self) -> str:
        """The schedule as written after placeholder resolution."""
        ...

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (timezone-aware, UTC)."""
        ...


@dataclass(frozen=True)
class CronSchedule:
    expression: str

    def next_after(self, moment: datetime) -> datetime:
        fields = self.expression.split()
        cron = " ".join(fields) if len(fields) == 6 else "0 " + " ".join(fields)
        iterator = croniter(cron, moment, second_at_beginning=True, day_or=False)
        result = iterator.get_next(datetime)
        assert isinstance(result, datetime)
        return result


@dataclass(frozen=True)
class IntervalSchedule:
    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def resolve_placeholders(text: str, environ: Mapping[str, str], *, function_name: str) -> str:
    """Replace every ``%NAME%`` with app setting NAME (an environment variable), as the host does."""

    def substitute(match: re.Match[str]) -> str:
        setting = match.group(1)
        if setting not in environ:
            raise ScheduleError(
                f"function '{function_name}': schedule {text!r} refers to app setting '{setting}', "
                "which is not set (add it to local.settings.json Values or the environment)"
            )
        return environ[setting]

    return _PLACEHOLDER.sub(substitute, text)


def parse_schedule(expression: str) -> Schedule:
    """Parse an NCRONTAB or TimeSpan expression; raises ValueError with the reason."""
    text = expression.strip()
    if ":" in text:
        return _parse_timespan(text)
    _check_ncrontab_grammar(text)
    schedule = CronSchedule(" ".join(text.split()))
    try:
        # Parsing is lazy in croniter for some errors; computing one occurrence surfaces them all.
        schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))
    except (CroniterError, ValueError, KeyError) as error:
        raise ValueError(str(error)) from error
    return schedule


def _parse_timespan(text: str) -> IntervalSchedule:
    match = _TIMESPAN.match(text)
    if match is None:
        raise ValueError("a TimeSpan schedule looks like hh:mm:ss or d.hh:mm:ss")
    parts = {name: int(value or 0) for name, value in match.groupdict().items()}
    if parts["hours"] > 23 or parts["minutes"] > 59 or parts["seconds"] > 59:
        raise ValueError("TimeSpan hours must be 0-23, minutes and seconds 0-59")
    interval = timedelta(**parts)
    if interval <= timedelta(0):
        raise ValueError("a TimeSpan schedule must be positive")
    return IntervalSchedule(text, interval)


def _check_ncrontab_grammar(text: str) -> None:
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"NCRONTAB needs six fields ({' '.join(_FIELD_NAMES)}) or five without seconds; got {len(fields)}"
        )
    names = _FIELD_NAMES if len(fields) == 6 else _FIELD_NAMES[1:]
    for field_name, field in zip(names, fields, strict=True):
        allowed_words = {"month": _MONTH_NAMES, "day-of-week": _DAY_NAMES}.get(field_name)
        pattern = _NAMED_FIELD if allowed_words else _NUMERIC_FIELD
        words = {word.upper() for word in _WORD.findall(field)}
        if not pattern.match(field) or not words <= (allowed_words or set()):
            raise ValueError(f"{field_name} field {field!r} is not valid NCRONTAB (no L, W, #, H or ?)")


def timer_schedule(raw: str, environ: Mapping[str, str], *, function_name: str) -> Schedule:
    """Resolve placeholders in a timer trigger's schedule and parse it, with errors that say where."""
    resolved = resolve_placeholders(raw, environ, function_name=function_name)
    try:
        return parse_schedule(resolved)
    except ValueError as error:
        settings = _PLACEHOLDER.findall(raw)
        origin = f" (from app setting {', '.join(repr(s) for s in settings)})" if settings else ""
        raise ScheduleError(
            f"function '{function_name}': schedule {resolved!r}{origin} is invalid: {error}"
        ) from error
