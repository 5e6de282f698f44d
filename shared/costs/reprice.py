"""Repricing final cost windows on purpose: the library side of `python -m tools.reprice`.

A costs run never reprices a closed month (recompute.py holds such a window when only its prices
changed). reprice_costs does, for the whole UTC days [first_day, end_day) it is given: every window there
is recomputed with the current price table and deployment map through the run's own steps
(recompute.py); each window whose content changed gets a new revision with its final flag as recorded,
and the reason goes into the log line and into the progress of every window it rewrote (RepriceReason),
where the next run also finds the new price version, so it has nothing left to restate. A dry run computes
the same and uploads and records nothing.

Refused with an InputError before anything is read but the progress watermark: a range whose end is not
after its start, and a range reaching past the costs run's watermark, i.e. holding a window that is not
final yet (the open one among them): those are the run's own, and it prices them with the current table.
No setting states how long the workspace keeps the metrics (infra's logRetentionDays is not an app
setting), so the range is not checked against it: a window whose metrics are gone recomputes as empty
and is left as it is (its stored revision stays), and the report names the days it could not count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.config import CostSettings
from shared.costs.clients import CostClients
from shared.costs.outputs import WindowOutcome
from shared.costs.recompute import EMPTY_FINGERPRINT, load_inputs, recompute
from shared.errors import InputError, UploadError
from shared.money import from_micros
from shared.windows import PlannedWindow, Window, window_containing, windows_between

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepricedWindow:
    """A window whose recomputed content differs from its last upload."""

    window: Window
    rows: int
    previous_price_version: str | None  # None: not recorded (no upload yet, or before versions were kept)
    usage_changed: bool  # its usage differs too (late metrics), not only what it costs


@dataclass
class RepriceReport:
    """What a reprice did (or, dry, would do)."""

    first_day: date
    end_day: date  # not included
    reason: str
    dry_run: bool
    price_version: str
    windows: list[WindowOutcome] = field(default_factory=list)
    rewritten: list[RepricedWindow] = field(default_factory=list)
    # Over the UTC days holding rewritten windows: the stored summaries as readers saw them before, and
    # the recomputation (unchanged windows are equal in both, so the difference is the rewritten ones').
    cost_before: dict[str, Decimal] = field(default_factory=dict)
    cost_after: dict[str, Decimal] = field(default_factory=dict)
    # Days left out of those costs: some window there has a stored revision but no metrics now.
    uncounted_days: list[date] = field(default_factory=list)
    rows_uploaded: int = 0

    @property
    def cost_difference(self) -> dict[str, Decimal]:
        currencies = sorted(set(self.cost_before) | set(self.cost_after))
        return {c: self.cost_after.get(c, Decimal(0)) - self.cost_before.get(c, Decimal(0)) for c in currencies}

    def line(self) -> str:
        """The log line: the reason, how many windows, old -> new price versions, the cost difference."""
        were = sorted({item.previous_price_version or "not recorded" for item in self.rewritten})
        statuses = {status: sum(o.status == status for o in self.windows) for status in ("unchanged", "empty", "held")}
        verb = "would rewrite" if self.dry_run else "rewrote"
        prices = f" with prices {', '.join(were)} -> {self.price_version}" if self.rewritten else ""
        difference = ", ".join(
            f"{amount:+f} {currency} ({self.cost_before.get(currency, Decimal(0))} -> "
            f"{self.cost_after.get(currency, Decimal(0))})"
            for currency, amount in self.cost_difference.items()
        )
        uncounted = (
            f" (left out: {', '.join(map(str, self.uncounted_days))}, stored windows without metrics now)"
            if self.uncounted_days
            else ""
        )
        return (
            f"reprice {self.first_day} to {self.end_day} (UTC days, the last one excluded), reason {self.reason!r}"
            f"{' (dry run: nothing uploaded)' if self.dry_run else ''}: {len(self.windows)} windows; "
            f"{verb} {len(self.rewritten)}{prices}, {statuses['unchanged']} unchanged, {statuses['empty']} "
            f"without usage{self._held_part(statuses['held'])}; cost difference {difference or 'none'}{uncounted}; "
            f"{self.rows_uploaded} rows uploaded"
        )

    @staticmethod
    def _held_part(held: int) -> str:
        return f", {held} held (fewer rows than stored: metrics past the workspace's retention?)" if held else ""

    def window_lines(self) -> list[str]:
        """One line per rewritten window, for people reviewing it."""
        return [
            f"{item.window.start:%Y-%m-%d %H:%M} UTC: {item.rows} rows, prices "
            f"{item.previous_price_version or 'not recorded'} -> {self.price_version}"
            + (", usage changed too (late metrics)" if item.usage_changed else "")
            for item in self.rewritten
        ]


def check_range(first_day: date, end_day: date, reason: str) -> None:
    """What can be refused before anything is read (InputError)."""
    if end_day <= first_day:
        raise InputError(
            f"the range's end {end_day} is not after its start {first_day}: the range is the UTC days from its "
            "start up to, not including, its end"
        )
    if not reason.strip():
        raise InputError("the reason is empty: say why these windows are repriced (it is logged and recorded)")


def windows_to_reprice(
    first_day: date, end_day: date, *, watermark: datetime | None, window_minutes: int, now: datetime
) -> list[Window]:
    """Every window of the UTC days [first_day, end_day) (a checked range); refused (InputError) when it
    reaches past the watermark (see the module docstring)."""
    start, end = _midnight(first_day), _midnight(end_day)
    if watermark is None:
        raise InputError("no cost window is final yet in this workspace's progress: nothing to reprice")
    if end > watermark:
        open_window = window_containing(now, window_minutes)
        raise InputError(
            f"the range ends at {end:%Y-%m-%d %H:%M} UTC, but the windows from {watermark:%Y-%m-%d %H:%M} UTC on "
            f"are not final yet (the open one is {open_window.start:%Y-%m-%d %H:%M} UTC): the costs run prices "
            f"them with the current price table itself; end the range at {watermark.date()} or before"
        )
    return windows_between(start, end - timedelta(minutes=window_minutes), window_minutes)


def reprice_costs(
    settings: CostSettings,
    first_day: date,
    end_day: date,
    reason: str,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    clients: CostClients | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RepriceReport:
    """Reprice the UTC days [first_day, end_day) (see the module docstring). Raises InputError for a range
    it refuses or bad input files, QueryError when the usage or the stored costs could not be read (nothing
    uploaded), UploadError when some windows did not upload (the others are recorded)."""
    from shared.costs.totals import daily_totals_of_frame, stored_daily_totals

    check_range(first_day, end_day, reason)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    inputs = load_inputs(settings, clients)
    progress = inputs.clients.progress
    windows = windows_to_reprice(
        first_day, end_day, watermark=progress.final_through(), window_minutes=settings.window_minutes, now=now
    )
    recorded = progress.windows(windows[0].start)
    # Kept as recorded: a final window stays final; one never recorded is final by now (before the watermark).
    planned = [
        PlannedWindow(window, previous.final if (previous := recorded.get(window.start)) else True)
        for window in windows
    ]
    stored = stored_daily_totals(  # before anything is uploaded
        inputs.clients.query, settings.workspace_id, windows[0].start, windows[-1].end, "stored cost totals query"
    )
    done = recompute(
        settings, inputs, planned, recorded, closed_before=None, steps={}, reprice_reason=reason, upload=not dry_run,
        sleep=sleep,
    )  # fmt: skip
    report = RepriceReport(first_day, end_day, reason, dry_run, inputs.prices.version, done.outcomes)
    report.rows_uploaded = done.upload.rows_uploaded
    for outcome in done.outcomes:
        if outcome.status in ("uploaded", "changed"):  # "failed": raised below, for the next attempt
            previous = recorded.get(outcome.window.start)
            usage = done.contents[outcome.window.start].usage_fingerprint
            report.rewritten.append(
                RepricedWindow(
                    outcome.window,
                    outcome.rows,
                    previous.price_version if previous else None,
                    previous is None or previous.usage_fingerprint != usage,
                )
            )
    report.uncounted_days = sorted(
        {
            outcome.window.start.date()
            for outcome in done.outcomes
            if outcome.status == "empty"
            and (previous := recorded.get(outcome.window.start)) is not None
            and previous.fingerprint != EMPTY_FINGERPRINT
        }
    )
    days = {item.window.start.date() for item in report.rewritten} - set(report.uncounted_days)
    report.cost_before = _cost_by_currency(stored, days)
    report.cost_after = _cost_by_currency(daily_totals_of_frame(done.priced.frame), days)
    if not dry_run:
        progress.save(done.progress, None)  # the watermark is the run's: a reprice never moves it
    # At warning when some windows failed: the command shows warnings only, and what was rewritten must show.
    log.log(logging.WARNING if done.upload.windows_failed else logging.INFO, report.line())
    if done.upload.windows_failed:
        raise UploadError(
            f"{len(done.upload.windows_failed)} repriced windows failed to upload (the others were recorded; "
            "run the same command again): " + "; ".join(done.upload.problems)
        )
    return report


def _midnight(day: date) -> datetime:
    return datetime.combine(day, clock_time(0), tzinfo=UTC)


def _cost_by_currency(daily: pd.DataFrame, days: set[date]) -> dict[str, Decimal]:
    """Cost per currency of those days (unpriced usage, currency "", has none)."""
    if daily.empty or not days:
        return {}
    chosen = daily[daily["Day"].map(lambda day: day.date() in days) & (daily["Currency"] != "")]
    sums = chosen.groupby("Currency")["CostMicros"].sum()
    return {str(currency): from_micros(int(micros)) for currency, micros in sums.items()}
