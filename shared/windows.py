"""Cost windows: which time windows a costs run computes, and which of them are final.

A window is [start, start + width), aligned to the UTC day (width divides 24 h), so it matches
KQL's bin(TimeGenerated, width) and every window lies inside one UTC day and month (the day- and
month-to-date totals add whole windows).

Each run computes, oldest first:
  * every window not yet final, from the progress watermark (the end of the oldest window still
    not final) up to and including the open window that contains `now`: nothing is skipped, even
    after the timer was off for a while;
  * the last `recompute_windows` final windows again, so metrics that arrive late (Azure Monitor
    ingestion takes minutes, sometimes longer) are counted in the window they belong to. "Last" counts
    from the watermark as well as from `now`: runs that failed (storage down, the host killed) owe the
    windows they would have recomputed, so the first run after them recomputes those too (found by the
    chaos soak, bench/soak: a late row of a window final just before two failed runs was never counted).
A window is final once `now` is `ingestion_delay` past its end; younger windows (the open one
included) are written as provisional so a budget crossed ten minutes ago is visible now.
Stdlib only, so the modules that need window arithmetic (config, costs' outputs, alerts) stay cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MINUTES_PER_DAY = 24 * 60
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, order=True)
class Window:
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """Stable text id (progress RowKey, log lines): the start in ISO 8601 UTC."""
        return self.start.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class PlannedWindow:
    window: Window
    final: bool


def divides_a_day(window_minutes: int) -> bool:
    """Windows of this width align with UTC days (and so months): the day- and month-to-date totals need it."""
    return window_minutes > 0 and MINUTES_PER_DAY % window_minutes == 0


def check_window_minutes(window_minutes: int) -> None:
    if not divides_a_day(window_minutes):
        raise ValueError(
            f"window_minutes={window_minutes}: must divide a day (1440 minutes) evenly, e.g. 15, 30, 60, "
            "120, 1440, so windows align with UTC days for the day- and month-to-date totals"
        )


def window_containing(at: datetime, window_minutes: int) -> Window:
    check_window_minutes(window_minutes)
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone; pass an aware UTC datetime")
    width = timedelta(minutes=window_minutes)
    start = _EPOCH + ((at.astimezone(UTC) - _EPOCH) // width) * width
    return Window(start, start + width)


def windows_between(first_start: datetime, last_start: datetime, window_minutes: int) -> list[Window]:
    """Every window from the one containing first_start to the one containing last_start."""
    window = window_containing(first_start, window_minutes)
    last = window_containing(last_start, window_minutes)
    width = timedelta(minutes=window_minutes)
    windows = []
    while window <= last:
        windows.append(window)
        window = Window(window.end, window.end + width)
    return windows


def is_final(window: Window, now: datetime, ingestion_delay: timedelta) -> bool:
    return now >= window.end + ingestion_delay


def plan_windows(
    now: datetime,
    *,
    window_minutes: int,
    ingestion_delay: timedelta,
    recompute_windows: int,
    final_through: datetime | None,
) -> list[PlannedWindow]:
    """The windows this run computes, oldest first (see the module docstring).

    `final_through` is the progress watermark: every window ending at or before it is final.
    None (first run) starts `recompute_windows` windows before the last final one.
    """
    if recompute_windows < 0:
        raise ValueError(f"recompute_windows={recompute_windows}: must be >= 0")
    if ingestion_delay < timedelta(0):
        raise ValueError(f"ingestion_delay={ingestion_delay}: must not be negative")
    width = timedelta(minutes=window_minutes)
    open_window = window_containing(now, window_minutes)
    # The newest window that is final now (ingestion_delay may span several windows).
    newest_final_end = window_containing(now - ingestion_delay, window_minutes).start
    recompute_from = newest_final_end - recompute_windows * width
    # The last run that succeeded made final the windows ending at or before final_through; it recomputed the
    # windows before them, newest first, so the ones it did not reach (recompute_windows - 1 of them before
    # final_through) are owed by the runs that failed since: equal to recompute_from when no run failed.
    owed_from = None if final_through is None else final_through - max(recompute_windows - 1, 0) * width
    first = recompute_from if owed_from is None else min(recompute_from, owed_from)
    first = min(first, open_window.start)
    return [
        PlannedWindow(window, is_final(window, now, ingestion_delay))
        for window in windows_between(first, open_window.start, window_minutes)
    ]


def as_utc(value: datetime) -> datetime:
    """The instant in UTC; a naive datetime is taken as UTC (Azure Monitor and billing speak UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def plain_utc(value: datetime) -> datetime:
    """A UTC datetime of a subclass (the Tables SDK's TablesEntityDatetime) as a plain datetime, so it
    compares, hashes and serialises like every other instant of the app."""
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )


def start_of_day(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def start_of_month(at: datetime) -> datetime:
    return start_of_day(at).replace(day=1)
