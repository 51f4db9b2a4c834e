"""Re-planning a series' future sessions: alignment in time, never across weeks or months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropin.domain.recurrence import Occurrence
from dropin.domain.schedule import (
    Existing,
    Move,
    Plan,
    new_occurrences,
    occurrence_key,
    replan,
    tolerance,
)


def occ(month: int, day: int, hour: int = 19) -> Occurrence:
    local = datetime(2028, month, day, hour, 30)
    start = local.replace(tzinfo=UTC)
    return Occurrence(local, start, start + timedelta(hours=1))


def ex(sid: str, month: int, day: int, *, rescheduled: bool = False) -> Existing:
    return Existing(sid, occ(month, day).starts_at, rescheduled)


MONTH = timedelta(days=14)
WEEK = timedelta(days=3, hours=12)


@pytest.mark.parametrize(
    ("existing", "wanted", "within", "plan"),
    [
        # 2nd Tuesday -> 3rd Tuesday: every session moves a week and keeps its bookings.
        (
            [ex("b", 2, 8), ex("a", 1, 11)],
            [occ(1, 18), occ(2, 15)],
            MONTH,
            Plan((), (Move("a", occ(1, 18), True), Move("b", occ(2, 15), True)), ()),
        ),
        # Same dates, new time of day.
        (
            [ex("a", 1, 11)],
            [occ(1, 11, 20)],
            MONTH,
            Plan((), (Move("a", occ(1, 11, 20), True),), ()),
        ),
        # Monthly -> every other month: the sessions in between are retired, not shifted.
        (
            [ex("a", 1, 11), ex("b", 2, 8), ex("c", 3, 14)],
            [occ(1, 11), occ(3, 14)],
            MONTH,
            Plan((), (Move("a", occ(1, 11), True), Move("c", occ(3, 14), True)), ("b",)),
        ),
        # The series now starts in March: January and February retire, March keeps its id.
        (
            [ex("a", 1, 11), ex("b", 2, 8), ex("c", 3, 14)],
            [occ(3, 14), occ(4, 11)],
            MONTH,
            Plan((occ(4, 11),), (Move("c", occ(3, 14), True),), ("a", "b")),
        ),
        # Weekly: tonight's session never becomes next week's.
        (
            [ex("t", 1, 12), ex("n", 1, 19)],
            [occ(1, 19, 17), occ(1, 26, 17)],
            WEEK,
            Plan((occ(1, 26, 17),), (Move("n", occ(1, 19, 17), True),), ("t",)),
        ),
        # A session moved by hand keeps its own time.
        (
            [ex("a", 1, 11, rescheduled=True)],
            [occ(1, 12)],
            MONTH,
            Plan((), (Move("a", occ(1, 12), False),), ()),
        ),
        # More occurrences than sessions: the extra ones are created.
        (
            [ex("a", 1, 11)],
            [occ(1, 11), occ(1, 18), occ(1, 25)],
            WEEK,
            Plan((occ(1, 18), occ(1, 25)), (Move("a", occ(1, 11), True),), ()),
        ),
        ([], [], MONTH, Plan((), (), ())),
    ],
)
def test_replan(
    existing: list[Existing], wanted: list[Occurrence], within: timedelta, plan: Plan
) -> None:
    assert replan(existing, wanted, within) == plan


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ([occ(1, 4), occ(1, 11), occ(1, 18)], timedelta(days=3, hours=12)),
        ([occ(1, 11), occ(2, 8), occ(3, 14), occ(4, 11)], timedelta(days=14)),
        ([occ(1, 11), occ(1, 11, 20)], timedelta(hours=1)),
        ([occ(1, 11), occ(9, 11)], timedelta(days=16)),
        ([occ(1, 11)], timedelta(days=3)),
    ],
)
def test_tolerance(wanted: list[Occurrence], expected: timedelta) -> None:
    assert tolerance(wanted) == expected


def test_new_occurrences_skips_taken_keys() -> None:
    found = [occ(1, 2), occ(1, 9), occ(1, 16)]
    taken = {occurrence_key(occ(1, 9).local_start)}
    assert new_occurrences(found, taken) == [occ(1, 2), occ(1, 16)]
