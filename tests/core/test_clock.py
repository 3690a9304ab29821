"""The one clock: fixed for --now, moved by tick, scaled for tests; always aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.clock import FixedClock, NaiveDatetimeError, ScaledClock, ensure_aware, now, using_clock


def test_a_fixed_clock_reports_its_time_in_utc_until_moved() -> None:
    clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=timezone(timedelta(hours=8))))

    with using_clock(clock):
        first = now()
        clock.sleep(90)
        second = now()

    assert first == datetime(2026, 11, 20, 2, tzinfo=UTC) and first.tzinfo == UTC
    assert second - first == timedelta(seconds=90)


def test_using_clock_restores_the_previous_clock() -> None:
    before = now()
    with using_clock(FixedClock(datetime(2000, 1, 1, tzinfo=UTC))):
        assert now().year == 2000
    assert now() >= before


def test_a_scaled_clock_runs_faster_than_the_wall_from_its_start() -> None:
    clock = ScaledClock(datetime(2026, 1, 1, tzinfo=UTC), speed=60, origin=1_000.0)

    import time

    elapsed = (clock.now() - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds()
    assert elapsed == pytest.approx((time.time() - 1_000.0) * 60, rel=1e-3)


def test_a_naive_time_is_refused_with_the_fix() -> None:
    with pytest.raises(NaiveDatetimeError, match=r"has no time zone; add one, e.g. \+08:00"):
        ensure_aware(datetime(2026, 11, 20, 10))
