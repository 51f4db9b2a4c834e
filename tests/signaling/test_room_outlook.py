"""``room_outlook``: what a live room does when the organizer changes its session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropin.services.rooms import RoomFacts
from signaling.hub import room_outlook
from signaling.protocol import EndReason

NOW = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def facts(starts_in: float, minutes: int = 60, status: str = "scheduled") -> RoomFacts:
    start = NOW + timedelta(minutes=starts_in)
    return RoomFacts("s1", start, start + timedelta(minutes=minutes), status, capacity=8)


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
    assert room_outlook(session, NOW, GRACE) == expected
