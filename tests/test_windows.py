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
    # Plus the two final windows before the watermark whose recomputations the missed runs owed.
    planned = plan(NOW, NOW - 30 * H)
    assert planned[0] == ("26 02:00", True) and len(planned) == 33 and planned[-1] == ("27 10:00", False)


def test_runs_that_failed_leave_their_recomputations_to_the_next_run() -> None:
    # Steady hourly runs: the watermark is the last run's newest final end; the plan is the same as on a first run.
    steady = plan(NOW, datetime(2026, 11, 27, 9, tzinfo=UTC))
    assert steady == [("27 07:00", True), ("27 08:00", True), ("27 09:00", True), ("27 10:00", False)]
    # The 08:20 and 09:20 runs failed: the last success (07:20) made 06:00 final. Those runs would have computed
    # 05:00-07:00 and 06:00-08:00, so 05:00 and 06:00 (whose late rows only they could count) come too.
    after_failures = plan(NOW, datetime(2026, 11, 27, 7, tzinfo=UTC))
    assert [start for start, _ in after_failures] == ["27 05:00", "27 06:00", "27 07:00", "27 08:00", "27 09:00",
                                                       "27 10:00"]  # fmt: skip


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
