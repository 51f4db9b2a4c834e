"""The hub's pure parts: ``room_outlook`` (what a live room does when the organizer changes its
session) and the bounded memory of ended rooms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signaling.hub import EndedRooms, room_outlook
from signaling.ports import RoomFacts
from signaling.protocol import EndReason

NOW = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
# The scheduling core's window: open 15 minutes before the start, until 10 after the end.
OPENS_BEFORE = timedelta(minutes=15)
GRACE = timedelta(minutes=10)


def facts(starts_in: float, minutes: int = 60, status: str = "scheduled") -> RoomFacts:
    start = NOW + timedelta(minutes=starts_in)
    end = start + timedelta(minutes=minutes)
    return RoomFacts("s1", start - OPENS_BEFORE, end + GRACE, status == "cancelled", capacity=8)


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        (None, EndReason.CANCELLED),  # the session is gone altogether
        (facts(-10, status="cancelled"), EndReason.CANCELLED),
        (facts(60 * 24 * 7), EndReason.RESCHEDULED),  # moved to next week
        (facts(15.5), EndReason.RESCHEDULED),  # its room would open in half a minute
        (facts(15), NOW + timedelta(minutes=15 + 60) + GRACE),  # opens right now
        (facts(-10), NOW + timedelta(minutes=50) + GRACE),  # on, unchanged
        (facts(-10, minutes=90), NOW + timedelta(minutes=80) + GRACE),  # lengthened
        (facts(-65), NOW + timedelta(minutes=5)),  # overrunning, inside the grace
        (facts(-70), EndReason.TIME_UP),  # the grace ends right now
        (facts(-70, minutes=50), EndReason.TIME_UP),  # shortened past its grace
    ],
)
def test_room_outlook(session: RoomFacts | None, expected: EndReason | datetime) -> None:
    assert room_outlook(session, NOW) == expected


def test_ended_rooms_are_remembered_within_a_bound() -> None:
    ended = EndedRooms(limit=2)
    ended.add("s1")
    # An ended room never reopens: that is what makes removal stick for the session.
    assert "s1" in ended and "s2" not in ended
    # Only a bounded number of ended ids is remembered, oldest forgotten first.
    ended.add("s2")
    ended.add("s3")
    assert "s1" not in ended and len(ended) == 2
