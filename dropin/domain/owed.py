"""Whether an outbox message is still owed when its turn comes, and when reminders fall. Pure.

A message is composed at send time, from the state then: one that is no longer true (an
invitation to someone who booked meanwhile, a reminder for a place given up) is skipped with
the reason. Cancellations are always sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dropin.domain.entries import Relation
from dropin.domain.states import BookingStatus, MessageKind, SessionStatus

# Reminders go out this long before the start (and not at all once it is too late to help).
REMINDERS: tuple[tuple[MessageKind, timedelta, timedelta], ...] = (
    (MessageKind.REMINDER_24H, timedelta(hours=24), timedelta(hours=2)),
    (MessageKind.REMINDER_1H, timedelta(hours=1), timedelta(minutes=5)),
)

ALWAYS_SENT = frozenset(
    {MessageKind.BOOKING_CANCELLED, MessageKind.SESSION_CANCELLED, MessageKind.FACILITATOR_RELEASED}
)
# Kinds about the member themselves, not a session (written without one): owed for as long as
# the member exists, and composed from their row then (their current address and links).
ABOUT_THE_MEMBER = frozenset({MessageKind.LINKS_CHANGED})
_PARTICIPANTS: frozenset[Relation] = frozenset({"confirmed", "lead", "co"})
# What each kind needs to still be true when its turn comes ("public": no place, no role).
NEEDS: dict[MessageKind, frozenset[Relation]] = {
    MessageKind.BOOKING_CONFIRMED: frozenset({"confirmed"}),
    MessageKind.BOOKING_PROMOTED: frozenset({"confirmed"}),
    MessageKind.BOOKING_WAITLISTED: frozenset({"waitlisted"}),
    MessageKind.SESSION_RESCHEDULED: frozenset({"confirmed", "waitlisted", "lead", "co"}),
    MessageKind.FACILITATOR_ASSIGNED: frozenset({"lead", "co"}),
    # Invited members who booked or declined meanwhile need no invitation any more.
    MessageKind.SESSION_INVITATION: frozenset({"public", "cancelled"}),
    MessageKind.LEAD_NOTICE: frozenset({"lead"}),
    MessageKind.SWAP_REQUEST: frozenset({"public", "cancelled"}),
    MessageKind.REMINDER_24H: _PARTICIPANTS,
    MessageKind.REMINDER_1H: _PARTICIPANTS,
}
_BOOKED: dict[BookingStatus, Relation] = {
    BookingStatus.CONFIRMED: "confirmed",
    BookingStatus.WAITLISTED: "waitlisted",
    BookingStatus.CANCELLED: "cancelled",
}


def relation(
    member_id: str, lead_id: str | None, co_id: str | None, booking: BookingStatus | None
) -> Relation:
    """A member's relation to a session: their role if they facilitate, else their booking's."""
    if member_id == lead_id:
        return "lead"
    if member_id == co_id:
        return "co"
    return "public" if booking is None else _BOOKED[booking]


def why_not_owed(
    kind: MessageKind,
    status: SessionStatus,
    relation: Relation,
    now: datetime,
    starts_at: datetime,
) -> str:
    """Why a message is no longer owed ("" if it is). Cancellations are always sent, and so is
    a message about the member themselves (whatever the session, or none)."""
    if kind in ALWAYS_SENT or kind in ABOUT_THE_MEMBER:
        return ""
    if status == SessionStatus.CANCELLED:
        return "session cancelled since"
    if relation not in NEEDS.get(kind, frozenset()):
        return "no longer true for this member"
    for reminder, before, too_late in REMINDERS:
        # A reminder is only true while the session is that far away (it may have moved).
        if kind == reminder and not (now + too_late < starts_at <= now + before):
            return "session no longer due for this reminder"
    return ""
