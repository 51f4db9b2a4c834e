"""Booking rules: capacity, waitlist and promotion. Pure; the caller holds the lock.

A booking is ``confirmed`` while places remain, else ``waitlisted``. Waitlisted bookings are
ordered by a sequence number that only grows, so "first come, first promoted" survives
cancellations in the middle of the list. Confirmed bookings are never bumped: lowering a
session's capacity below its confirmed count only stops new confirmations.

These are the rules; :class:`dropin.domain.session.Session` applies them to a session and its
bookings and says what the change owes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dropin.domain.states import BookingStatus, SessionStatus


class BookingRefused(Exception):
    """The session cannot take this booking; ``code`` says why."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Seats:
    """What the rules need to know about a session at the moment of a booking."""

    status: SessionStatus
    ends_at: datetime
    capacity: int
    confirmed: int


@dataclass(frozen=True)
class QueuedBooking:
    """A waitlisted booking: its id and its place in the queue (lower goes first)."""

    booking_id: str
    seq: int


def decide(seats: Seats, now: datetime) -> BookingStatus:
    """The status a new booking gets, or :class:`BookingRefused`."""
    if seats.status == SessionStatus.CANCELLED:
        raise BookingRefused("session_cancelled", "this session has been cancelled")
    if now >= seats.ends_at:
        raise BookingRefused("session_over", "this session is over")
    if seats.confirmed < seats.capacity:
        return BookingStatus.CONFIRMED
    return BookingStatus.WAITLISTED


def to_promote(capacity: int, confirmed: int, waiting: Sequence[QueuedBooking]) -> list[str]:
    """Ids of the waitlisted bookings to confirm now, in promotion order.

    As many as there are free places, first by sequence number.
    """
    free = max(0, capacity - confirmed)
    if free == 0:
        return []
    return [w.booking_id for w in sorted(waiting, key=lambda w: w.seq)[:free]]
