"""Message composition: one row per kind of outbox event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dropin.domain.entries import Seat, SessionFacts
from dropin.domain.imip import build_imip, build_notice, calendar_method
from dropin.domain.messages import (
    WORDING,
    MemberLinks,
    Recipient,
    Sender,
    compose,
    compose_about_member,
    when,
)
from dropin.domain.states import MessageKind

NOW = datetime(2028, 3, 1, 9, 0, tzinfo=UTC)
FACTS = SessionFacts(
    id="s1",
    title="Evening drop-in",
    group_name="Monthly NVR parents circle",
    starts_at=datetime(2028, 4, 11, 18, 30, tzinfo=UTC),
    ends_at=datetime(2028, 4, 11, 19, 45, tzinfo=UTC),
    timezone="Europe/London",
    status="scheduled",
    sequence=2,
    updated_at=NOW,
)
LINKS = MemberLinks(
    page_url="https://d.example/m/PAGE",
    feed_url="https://d.example/feeds/FEED.ics",
    join_url="https://d.example/j/JOIN",
    accept_url="https://d.example/r/ACCEPT",
    decline_url="https://d.example/r/DECLINE",
)
ANN = Recipient("Ann", "ann@example.org", "Europe/London", quiet=False)
SENDER = Sender("circle@d.example", "Monthly NVR parents circle")


@pytest.mark.parametrize(
    ("kind", "seat", "subject_starts", "method", "has_join"),
    [
        ("booking_confirmed", Seat("confirmed"), "Booked: Evening drop-in", "REQUEST", True),
        ("booking_promoted", Seat("confirmed", 1), "A place for you:", "REQUEST", True),
        (
            "booking_waitlisted",
            Seat("waitlisted", waitlist_position=3),
            "On the waitlist:",
            None,
            False,
        ),
        ("booking_cancelled", Seat("cancelled", 2), "Cancelled: your place", "CANCEL", False),
        ("session_rescheduled", Seat("confirmed"), "New time:", "REQUEST", True),
        ("session_cancelled", Seat("confirmed"), "Cancelled: Evening", "CANCEL", False),
        ("facilitator_assigned", Seat("lead"), "You lead:", "REQUEST", True),
        ("reminder_24h", Seat("confirmed"), "Reminder: Evening drop-in tomorrow", None, True),
        ("reminder_1h", Seat("confirmed"), "Reminder: Evening drop-in in an hour", None, True),
    ],
)
def test_each_kind(
    kind: MessageKind, seat: Seat, subject_starts: str, method: str | None, has_join: bool
) -> None:
    links = LINKS if has_join else LINKS.__class__(**{**LINKS.__dict__, "join_url": None})
    m = compose(kind, FACTS, seat, ANN, links, SENDER, now=NOW)
    assert m.subject.startswith(subject_starts)
    # Times in the recipient's zone: 18:30Z is 19:30 BST.
    assert "Tuesday 11 April 2028 at 19:30 (Europe/London)" in m.subject
    assert m.method == method
    assert m.text.startswith("Hello Ann,")
    assert ("https://d.example/j/JOIN" in m.text) == has_join
    assert "https://d.example/m/PAGE" in m.text and 'href="https://d.example/m/PAGE"' in m.html
    if method is None:
        assert m.calendar is None
        email = build_notice(
            subject=m.subject,
            sender="a@d.example",
            recipient="ann@example.org",
            text=m.text,
            html=m.html,
            message_id="x@d.example",
        )
        assert email.get_content_type() == "multipart/alternative"
    else:
        assert m.calendar is not None and calendar_method(m.calendar) == method
        cal = m.calendar.decode()
        assert "UID:session-s1@dropin" in cal
        assert "ATTENDEE" in cal and cal.count("ATTENDEE") == 1
        assert "mailto:ann@example.org" in cal and "ORGANIZER" in cal
        if method == "CANCEL":
            assert "STATUS:CANCELLED" in cal and "/j/JOIN" not in cal
        email = build_imip(
            subject=m.subject,
            sender="a@d.example",
            recipient="ann@example.org",
            text=m.text,
            html=m.html,
            calendar=m.calendar,
            method=method,
            message_id="x@d.example",
        )
        assert email.get_content_type() == "multipart/mixed"


def test_waitlist_position_and_one_click_links() -> None:
    m = compose(
        "booking_waitlisted",
        FACTS,
        Seat("waitlisted", waitlist_position=3),
        ANN,
        LINKS,
        SENDER,
        now=NOW,
    )
    assert "number 3" in m.text and "https://d.example/r/DECLINE" in m.text
    booked = compose("booking_confirmed", FACTS, Seat("confirmed"), ANN, LINKS, SENDER, now=NOW)
    assert "Cancel your place in one click: https://d.example/r/DECLINE" in booked.text


def test_sequence_rises_for_member_changes() -> None:
    first = compose("booking_confirmed", FACTS, Seat("confirmed", 0), ANN, LINKS, SENDER, now=NOW)
    cancel = compose("booking_cancelled", FACTS, Seat("cancelled", 1), ANN, LINKS, SENDER, now=NOW)
    assert first.calendar and cancel.calendar
    assert b"SEQUENCE:2" in first.calendar and b"SEQUENCE:3" in cancel.calendar


def test_discreet_messages_name_no_group_or_topic() -> None:
    quiet = Recipient("Ann", "ann@example.org", "America/New_York", quiet=True)
    for kind in ("booking_confirmed", "session_cancelled", "reminder_1h"):
        m = compose(kind, FACTS, Seat("confirmed"), quiet, LINKS, SENDER, now=NOW)  # type: ignore[arg-type]
        text = m.subject + m.text + m.html + (m.calendar or b"").decode()
        for word in ("Evening", "NVR", "circle", "parents"):
            assert word not in text.replace("circle@d.example", ""), (kind, word)
        assert m.from_name == "Drop-in"
        assert "14:30 (America/New_York)" in m.subject
        if m.calendar:
            assert b"CLASS:PRIVATE" in m.calendar


def test_new_links_carry_the_new_links_and_no_session() -> None:
    links = MemberLinks(page_url=LINKS.page_url, feed_url=LINKS.feed_url)
    m = compose_about_member(MessageKind.LINKS_CHANGED, ANN, links, SENDER)
    assert m.subject == "New links: Monthly NVR parents circle"
    assert m.from_name == "Monthly NVR parents circle"
    assert m.calendar is None and m.method is None
    assert m.text.startswith("Hello Ann,\n")
    assert LINKS.page_url in m.text and LINKS.feed_url in m.text
    assert f'href="{LINKS.feed_url}"' in m.html and f'href="{LINKS.page_url}"' in m.html
    assert "no longer work" in m.text
    # No time, no join or one-click links: it is about the member, not a session.
    for absent in ("JOIN", "ACCEPT", "DECLINE", "2028", "Evening"):
        assert absent not in m.text + m.html, absent


def test_new_links_in_a_discreet_group_name_no_group_or_topic() -> None:
    quiet = Recipient("Ann", "ann@example.org", "Europe/London", quiet=True)
    links = MemberLinks(page_url=LINKS.page_url, feed_url=LINKS.feed_url)
    m = compose_about_member(MessageKind.LINKS_CHANGED, quiet, links, SENDER)
    assert m.subject == "New links: Drop-in" and m.from_name == "Drop-in"
    for word in ("NVR", "circle", "parents", "Monthly"):
        assert word not in m.subject + m.text + m.html, word
    assert LINKS.page_url in m.text and LINKS.feed_url in m.text


def test_every_kind_has_its_wording() -> None:
    assert set(WORDING) == set(MessageKind)


def test_when() -> None:
    assert when(datetime(2028, 1, 11, 19, 30, tzinfo=UTC), "Asia/Kolkata") == (
        "Wednesday 12 January 2028 at 01:00 (Asia/Kolkata)"
    )


def test_invitation_has_one_click_accept_and_decline() -> None:
    m = compose("session_invitation", FACTS, Seat("public"), ANN, LINKS, SENDER, now=NOW)
    assert m.subject.startswith("Invitation: Evening drop-in")
    assert "Book your place in one click: https://d.example/r/ACCEPT" in m.text
    assert "https://d.example/r/DECLINE" in m.text
    assert m.method == "REQUEST" and m.calendar is not None
    cal = m.calendar.decode()
    assert "PARTSTAT=NEEDS-ACTION" in cal and "RSVP=TRUE" in cal
    assert "STATUS:TENTATIVE" in cal and "/j/JOIN" not in cal
