"""Whether a message is still owed when its turn comes: a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropin.domain.entries import Relation
from dropin.domain.owed import ABOUT_THE_MEMBER, ALWAYS_SENT, NEEDS, relation, why_not_owed
from dropin.domain.states import BookingStatus, MessageKind, SessionStatus

NOW = datetime(2028, 3, 1, 9, 0, tzinfo=UTC)
K = MessageKind
ON, OFF = SessionStatus.SCHEDULED, SessionStatus.CANCELLED


@pytest.mark.parametrize(
    ("kind", "status", "rel", "starts_in", "reason"),
    [
        (K.BOOKING_CONFIRMED, ON, "confirmed", timedelta(days=3), ""),
        (K.BOOKING_CONFIRMED, ON, "cancelled", timedelta(days=3), "no longer true"),
        (K.BOOKING_CONFIRMED, OFF, "confirmed", timedelta(days=3), "session cancelled since"),
        # Cancellations always go, whatever happened since.
        (K.BOOKING_CANCELLED, OFF, "confirmed", timedelta(days=3), ""),
        (K.SESSION_CANCELLED, OFF, "public", timedelta(days=3), ""),
        (K.FACILITATOR_RELEASED, ON, "lead", timedelta(days=3), ""),
        (K.SESSION_INVITATION, ON, "public", timedelta(days=3), ""),
        (K.SESSION_INVITATION, ON, "confirmed", timedelta(days=3), "no longer true"),
        (K.LEAD_NOTICE, ON, "co", timedelta(days=3), "no longer true"),
        (K.REMINDER_24H, ON, "confirmed", timedelta(hours=20), ""),
        (K.REMINDER_24H, ON, "confirmed", timedelta(hours=30), "no longer due"),
        (K.REMINDER_24H, ON, "confirmed", timedelta(hours=1), "no longer due"),
        (K.REMINDER_1H, ON, "co", timedelta(minutes=50), ""),
        (K.REMINDER_1H, ON, "waitlisted", timedelta(minutes=50), "no longer true"),
        # About the member, not a session: owed whatever their place or the session.
        (K.LINKS_CHANGED, ON, "public", timedelta(days=3), ""),
        (K.LINKS_CHANGED, OFF, "cancelled", timedelta(days=-3), ""),
    ],
)
def test_why_not_owed(
    kind: MessageKind, status: SessionStatus, rel: Relation, starts_in: timedelta, reason: str
) -> None:
    got = why_not_owed(kind, status, rel, NOW, NOW + starts_in)
    assert reason in got if reason else got == ""


def test_relation_prefers_the_facilitator_role() -> None:
    assert relation("m", "m", None, BookingStatus.CONFIRMED) == "lead"
    assert relation("m", "x", "m", None) == "co"
    assert relation("m", None, None, BookingStatus.WAITLISTED) == "waitlisted"
    assert relation("m", None, None, None) == "public"


def test_every_kind_but_cancellations_and_alerts_says_what_it_needs() -> None:
    untabled = {K.BOOKING_CANCELLED, K.SESSION_CANCELLED, K.FACILITATOR_RELEASED}
    assert set(NEEDS) == set(MessageKind) - untabled - {K.ORGANIZER_ALERT} - ABOUT_THE_MEMBER
    assert K.LINKS_CHANGED in ABOUT_THE_MEMBER and not ABOUT_THE_MEMBER & ALWAYS_SENT
