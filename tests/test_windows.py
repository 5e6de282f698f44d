"""Window planning: nothing skipped, late data recomputed, final only after the ingestion delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.windows import Window, plan_windows, start_of_month, window_containing

H = timedelta(hours=1)
NOW = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)


def plan(now: datetime, final_through: datetime | None, *, delay: int = 15, recompute: int = 3,
         minutes: int = 60) -> list[tuple[str, bool]]:
    return [(p.window.start.strftime("%d %H:%M"), p.final) for p in plan_windows(
        now, window_minutes=minutes, ingestion_delay=timedelta(minutes=delay), recompute_windows=recompute,
        final_through=final_through)]


def test_first_run_recomputes_n_final_windows_and_the_open_one() -> None:
    assert plan(NOW, None) == [("27 07:00", True), ("27 08:00", True), ("27 09:00", True), ("27 10:00", False)]


def test_window_is_provisional_until_the_delay_has_passed() -> None:
    at_10_10 = NOW - timedelta(minutes=10)
    assert plan(at_10_10, None)[-2:] == [("27 09:00", False), ("27 10:00", False)]
    assert plan(at_10_10, None)[0] == ("27 06:00", True)


def test_after_an_outage_every_window_since_the_watermark_is_computed() -> None:
    planned = plan(NOW, NOW - 30 * H)
    assert planned[0] == ("26 04:00", True) and len(planned) == 31 and planned[-1] == ("27 10:00", False)


def test_no_recompute_only_open_and_unfinished_windows() -> None:
    assert plan(NOW, datetime(2026, 11, 27, 10, tzinfo=UTC), recompute=0) == [("27 10:00", False)]


def test_windows_align_with_days_and_other_widths() -> None:
    assert window_containing(NOW, 15) == Window(NOW - timedelta(minutes=5), NOW + timedelta(minutes=10))
    assert window_containing(NOW, 1440).start == datetime(2026, 11, 27, tzinfo=UTC)
    assert start_of_month(NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="must divide a day"):
        window_containing(NOW, 7)
    with pytest.raises(ValueError, match="time zone"):
        window_containing(datetime(2026, 1, 1), 60)
