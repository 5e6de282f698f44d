"""The query API's ``timespan``: an ISO 8601 duration or interval, resolved to a UTC window.

LogsQueryClient sends ``PT{seconds}S`` (fractional seconds, e.g. ``PT3600.0S``) for a timedelta,
``<start>/<end>`` or ``<start>/PT{seconds}S`` for tuples; the portal and other clients also send
``P1D``, ``PT1H``, ``P1DT12H``, ``<duration>/<end>``. A bare duration ends at the request's now.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class TimespanError(ValueError):
    """The timespan is not an ISO 8601 duration or interval this API accepts."""


@dataclass(frozen=True)
class TimeWindow:
    """Inclusive at both ends, as Kusto's ``between`` (how the service applies a timespan)."""

    start: dt.datetime
    end: dt.datetime


def parse_duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text.strip())
    if not match or text.strip() in {"P", "PT"} or text.strip().endswith("T"):
        raise TimespanError(f"'{text}' is not an ISO 8601 duration (years and months are not accepted)")
    parts = {name: float(value) for name, value in match.groupdict().items() if value and name != "sign"}
    duration = dt.timedelta(
        weeks=parts.get("weeks", 0.0),
        days=parts.get("days", 0.0),
        hours=parts.get("hours", 0.0),
        minutes=parts.get("minutes", 0.0),
        seconds=parts.get("seconds", 0.0),
    )
    return -duration if match.group("sign") else duration


def parse_instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as exc:
        raise TimespanError(f"'{text}' is not an ISO 8601 date-time") from exc
    # Kusto reads a date-time without an offset as UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _is_duration(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith(("P", "-P"))


def parse_timespan(text: str | None, now: dt.datetime) -> TimeWindow | None:
    """The window a request's timespan selects, or None when it sets none."""
    if text is None or not text.strip():
        return None
    if "/" not in text:
        duration = parse_duration(text)
        return _ordered(now - duration, now)
    first, _, second = text.partition("/")
    if _is_duration(first) and _is_duration(second):
        raise TimespanError(f"'{text}': an interval needs at least one date-time")
    if _is_duration(first):
        end = parse_instant(second)
        return _ordered(end - parse_duration(first), end)
    start = parse_instant(first)
    if _is_duration(second):
        return _ordered(start, start + parse_duration(second))
    return _ordered(start, parse_instant(second))


def _ordered(start: dt.datetime, end: dt.datetime) -> TimeWindow:
    return TimeWindow(start, end) if start <= end else TimeWindow(end, start)
