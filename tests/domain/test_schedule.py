"""Re-planning a series' future sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropin.domain.recurrence import Occurrence
from dropin.domain.schedule import Existing, Move, Plan, new_occurrences, occurrence_key, replan


def occ(day: int, hour: int = 19) -> Occurrence:
    local = datetime(2026, 6, day, hour, 30)
    start = local.replace(tzinfo=UTC)
    return Occurrence(local, start, start + timedelta(hours=1))


def ex(sid: str, day: int, *, rescheduled: bool = False) -> Existing:
    o = occ(day)
    return Existing(sid, occurrence_key(o.local_start), o.starts_at, rescheduled)


@pytest.mark.parametrize(
    ("existing", "wanted", "plan"),
    [
        # Same count: every session keeps its bookings and moves to its new time.
        (
            [ex("b", 9), ex("a", 2)],
            [occ(3), occ(10)],
            Plan((), (Move("a", occ(3), True), Move("b", occ(10), True)), ()),
        ),
        # Fewer occurrences: the leftovers are retired, latest first to go.
        (
            [ex("a", 2), ex("b", 9), ex("c", 16)],
            [occ(5)],
            Plan((), (Move("a", occ(5), True),), ("b", "c")),
        ),
        # More occurrences: the extra ones are created.
        (
            [ex("a", 2)],
            [occ(2, 20), occ(9, 20)],
            Plan((occ(9, 20),), (Move("a", occ(2, 20), True),), ()),
        ),
        # A session moved by hand keeps its own time.
        (
            [ex("a", 2, rescheduled=True)],
            [occ(4)],
            Plan((), (Move("a", occ(4), False),), ()),
        ),
        ([], [], Plan((), (), ())),
    ],
)
def test_replan(existing: list[Existing], wanted: list[Occurrence], plan: Plan) -> None:
    assert replan(existing, wanted) == plan


def test_new_occurrences_skips_taken_keys() -> None:
    found = [occ(2), occ(9), occ(16)]
    taken = {occurrence_key(occ(9).local_start)}
    assert new_occurrences(found, taken) == [occ(2), occ(16)]
