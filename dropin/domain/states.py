"""The states and roles that rows, rules and messages share. Pure.

Each is a ``StrEnum``: it is stored as its plain string value (the columns are ``String``), it
compares equal to that string, and mypy refuses a value that is not one of its members.
"""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    """Whether a session takes place."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class BookingStatus(StrEnum):
    """A member's booking for one session: a place, a place in the queue, or neither."""

    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class MemberRole(StrEnum):
    """What a member does in their group."""

    PARENT = "parent"
    FACILITATOR = "facilitator"


class AccountRole(StrEnum):
    """What a staff account may do: ``admin`` everything on this server, ``organizer`` the
    groups they organize, ``facilitator`` the sessions they facilitate (never parents' emails)."""

    ADMIN = "admin"
    ORGANIZER = "organizer"
    FACILITATOR = "facilitator"


class AssignedBy(StrEnum):
    """Who chose a session's facilitators (the rotation never changes an organizer's choice)."""

    ROTATION = "rotation"
    ORGANIZER = "organizer"


class FacilitatorRole(StrEnum):
    """A facilitator's part in one session."""

    LEAD = "lead"
    CO = "co"


class OutboxStatus(StrEnum):
    """An owed message: pending -> sending -> sent | failed | skipped."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    # No longer relevant when its turn came (the booking changed again meanwhile).
    SKIPPED = "skipped"


class MessageKind(StrEnum):
    """What happened that someone must be told about: one outbox row each."""

    BOOKING_CONFIRMED = "booking_confirmed"
    BOOKING_WAITLISTED = "booking_waitlisted"
    BOOKING_PROMOTED = "booking_promoted"
    BOOKING_CANCELLED = "booking_cancelled"
    SESSION_RESCHEDULED = "session_rescheduled"
    SESSION_CANCELLED = "session_cancelled"
    FACILITATOR_ASSIGNED = "facilitator_assigned"
    SESSION_INVITATION = "session_invitation"
    LEAD_NOTICE = "lead_notice"
    FACILITATOR_RELEASED = "facilitator_released"
    ORGANIZER_ALERT = "organizer_alert"
    SWAP_REQUEST = "swap_request"
    REMINDER_24H = "reminder_24h"
    REMINDER_1H = "reminder_1h"
    # About the member, not a session: their email changed, so did their personal links.
    LINKS_CHANGED = "links_changed"
