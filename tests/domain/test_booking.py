"""Booking rules as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropin.domain.booking import (
    BookingRefused,
    QueuedBooking,
    Seats,
    decide,
    to_promote,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


@pytest.mark.parametrize(
    ("seats", "expected"),
    [
        (Seats("scheduled", LATER, capacity=10, confirmed=0), "confirmed"),
        (Seats("scheduled", LATER, capacity=10, confirmed=9), "confirmed"),
        (Seats("scheduled", LATER, capacity=10, confirmed=10), "waitlisted"),
        # Capacity lowered below the confirmed count: nobody is bumped, newcomers wait.
        (Seats("scheduled", LATER, capacity=5, confirmed=8), "waitlisted"),
        (Seats("scheduled", LATER, capacity=0, confirmed=0), "waitlisted"),
        # A session under way can still be booked until it ends.
        (Seats("scheduled", NOW + timedelta(seconds=1), capacity=2, confirmed=0), "confirmed"),
    ],
)
def test_decide(seats: Seats, expected: str) -> None:
    assert decide(seats, NOW) == expected


@pytest.mark.parametrize(
    ("seats", "code"),
    [
        (Seats("cancelled", LATER, capacity=10, confirmed=0), "session_cancelled"),
        (Seats("scheduled", NOW, capacity=10, confirmed=0), "session_over"),
        (Seats("scheduled", NOW - timedelta(days=1), capacity=10, confirmed=0), "session_over"),
    ],
)
def test_decide_refuses(seats: Seats, code: str) -> None:
    with pytest.raises(BookingRefused) as info:
        decide(seats, NOW)
    assert info.value.code == code


W = [QueuedBooking("c", 7), QueuedBooking("a", 3), QueuedBooking("b", 5)]


@pytest.mark.parametrize(
    ("capacity", "confirmed", "waiting", "expected"),
    [
        (10, 9, W, ["a"]),
        (10, 8, W, ["a", "b"]),
        (10, 5, W, ["a", "b", "c"]),
        (10, 10, W, []),
        (10, 12, W, []),
        (10, 0, [], []),
    ],
)
def test_to_promote(
    capacity: int, confirmed: int, waiting: list[QueuedBooking], expected: list[str]
) -> None:
    assert to_promote(capacity, confirmed, waiting) == expected
