"""The session aggregate as tables: what each decision does and what it owes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dropin.domain.session import (
    Booking,
    HandoffMarks,
    Known,
    NotLoaded,
    Owed,
    Session,
    SessionChange,
    SessionEdit,
)
from dropin.domain.states import AssignedBy, BookingStatus, MemberRole, MessageKind, SessionStatus
from dropin.errors import Conflict, Invalid, NotFound

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
START = NOW + timedelta(days=7)
LONDON = ZoneInfo("Europe/London")
C, W, X = BookingStatus.CONFIRMED, BookingStatus.WAITLISTED, BookingStatus.CANCELLED
K = MessageKind


def booking(bid: str, status: BookingStatus = C, seq: int | None = None) -> Booking:
    return Booking(bid, f"m-{bid}", status, seq, 0, NOW, NOW)


def session(*bookings: Booking, capacity: int = 2, **kw: object) -> Session:
    """A session loaded with all its active bookings (``bookings``), counts to match."""
    base = Session(
        id="s",
        group_id="g",
        starts_at=START,
        ends_at=START + timedelta(minutes=75),
        status=SessionStatus.SCHEDULED,
        capacity=capacity,
        next_waitlist_seq=10,
        confirmed_count=sum(b.status == C for b in bookings),
        waitlist_count=sum(b.status == W for b in bookings),
        bookings=bookings,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def kinds(change: SessionChange) -> list[tuple[MessageKind, str | None]]:
    return [(o.kind, o.member_id) for o in change.owed]


# Booking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "capacity", "status", "seq", "owed"),
    [
        ((), 2, C, None, K.BOOKING_CONFIRMED),
        ((booking("a"),), 2, C, None, K.BOOKING_CONFIRMED),
        ((booking("a"), booking("b")), 2, W, 10, K.BOOKING_WAITLISTED),
        # Capacity lowered below the confirmed count: nobody is bumped, newcomers wait.
        ((booking("a"), booking("b"), booking("c")), 1, W, 10, K.BOOKING_WAITLISTED),
        # A queue ahead keeps its order: the newcomer takes the next sequence number.
        ((booking("a"), booking("b"), booking("q", W, 4)), 2, W, 10, K.BOOKING_WAITLISTED),
    ],
)
def test_book(
    held: tuple[Booking, ...],
    capacity: int,
    status: BookingStatus,
    seq: int | None,
    owed: MessageKind,
) -> None:
    s = session(*held, capacity=capacity)
    change = s.book("m-new", new_id="new", earlier=None, now=NOW)
    (made,) = change.inserted
    assert (made.id, made.status, made.waitlist_seq, made.revision) == ("new", status, seq, 0)
    assert change.owed == (Owed(owed, "m-new", "new"),)
    assert change.after.next_waitlist_seq == (11 if seq else 10)
    assert change.after.confirmed_count == s.confirmed_count + (status == C)
    assert change.after.waitlist_count == s.waitlist_count + (status == W)
    if status == W:
        assert change.after.waitlist_position("new") == s.waitlist_count + 1


def test_booking_again_reuses_the_cancelled_row_with_a_higher_revision() -> None:
    earlier = replace(booking("old", X), member_id="m-x", revision=3)
    change = session().book("m-x", new_id="unused", earlier=earlier, now=NOW)
    assert change.inserted == ()
    (again,) = change.updated
    assert (again.id, again.status, again.revision, again.updated_at) == ("old", C, 4, NOW)
    assert again.created_at == earlier.created_at


@pytest.mark.parametrize(
    ("s", "member", "earlier", "code"),
    [
        (session(lead="m-f"), "m-f", None, "facilitating"),
        (session(co="m-f"), "m-f", None, "facilitating"),
        (session(booking("a")), "m-a", booking("a"), "already_booked"),
        (session(booking("a", W, 3)), "m-a", booking("a", W, 3), "already_booked"),
        (session(status=SessionStatus.CANCELLED), "m-n", None, "session_cancelled"),
        (session(ends_at=NOW), "m-n", None, "session_over"),
    ],
)
def test_book_refused(s: Session, member: str, earlier: Booking | None, code: str) -> None:
    with pytest.raises(Conflict) as refused:
        s.book(member, new_id="n", earlier=earlier, now=NOW)
    assert refused.value.code == code


# Cancelling and promotion ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "cancel", "promoted"),
    [
        # A freed place goes to the lowest sequence number, not the oldest row.
        ((booking("a"), booking("b"), booking("q2", W, 7), booking("q1", W, 3)), "a", ["q1"]),
        # A waitlisted booking leaving frees no place.
        ((booking("a"), booking("b"), booking("q1", W, 3), booking("q2", W, 7)), "q1", []),
        # Over capacity (lowered by hand): a cancellation may still leave no free place.
        ((booking("a"), booking("b"), booking("c"), booking("q1", W, 3)), "a", []),
        ((booking("a"),), "a", []),
    ],
)
def test_cancel_promotes_in_queue_order(
    held: tuple[Booking, ...], cancel: str, promoted: list[str]
) -> None:
    s = session(*held)
    change = s.cancel_booking(next(b for b in held if b.id == cancel), NOW)
    assert list(change.promoted) == promoted
    gone = next(b for b in change.updated if b.id == cancel)
    assert (gone.status, gone.waitlist_seq, gone.revision) == (X, None, 1)
    assert kinds(change) == [(K.BOOKING_CANCELLED, f"m-{cancel}")] + [
        (K.BOOKING_PROMOTED, f"m-{p}") for p in promoted
    ]
    assert cancel not in {b.id for b in change.after.bookings}
    for p in promoted:
        up = next(b for b in change.updated if b.id == p)
        assert (up.status, up.waitlist_seq, up.revision) == (C, None, 1)


def test_cancel_refused() -> None:
    with pytest.raises(Conflict) as over:
        session(booking("a"), ends_at=NOW).cancel_booking(booking("a"), NOW)
    assert over.value.code == "session_over"
    with pytest.raises(ValueError, match="already cancelled"):
        session().cancel_booking(booking("a", X), NOW)


# Loading only what a decision needs ------------------------------------------------------


def loaded(s: Session, known: Known) -> Session:
    """``s`` as the store would load it for a decision that needs ``known``."""
    keep = {
        Known.NONE: (),
        Known.WAITLIST: tuple(b for b in s.bookings if b.status == W),
        Known.ALL: s.bookings,
    }[known]
    return replace(s, bookings=keep, known=known)


@pytest.mark.parametrize("known", list(Known))
def test_the_same_decisions_whatever_was_loaded_beyond_the_need(known: Known) -> None:
    full_ = session(booking("a"), booking("b"), booking("q1", W, 3), booking("q2", W, 5))
    booked = loaded(full_, known).book("m-new", new_id="n", earlier=None, now=NOW)
    assert booked.after.waitlist_count == 3 and booked.after.confirmed_count == 2
    assert booked.owed == (Owed(K.BOOKING_WAITLISTED, "m-new", "n"),)
    if known != Known.NONE:
        freed = loaded(full_, known).cancel_booking(booking("a"), NOW)
        assert freed.promoted == ("q1",)
        assert (freed.after.confirmed_count, freed.after.waitlist_count) == (2, 1)


@pytest.mark.parametrize(
    ("known", "decide"),
    [
        (Known.NONE, lambda s: s.cancel_booking(booking("a"), NOW)),
        (Known.NONE, lambda s: s.promote(NOW)),
        (Known.WAITLIST, lambda s: s.retire()),
        (Known.WAITLIST, lambda s: s.edit(SessionEdit(duration_minutes=30), LONDON, NOW)),
        (Known.WAITLIST, lambda s: s.assign_facilitators("f3", None, roles=ROLES, now=NOW)),
    ],
)
def test_a_decision_refuses_to_guess_what_was_not_loaded(known: Known, decide: Any) -> None:
    with pytest.raises(NotLoaded):
        decide(loaded(full(), known))


def test_bookings_and_counts_must_agree() -> None:
    with pytest.raises(ValueError, match="disagree"):
        replace(session(booking("a")), confirmed_count=2)
    with pytest.raises(ValueError, match="disagree"):
        replace(session(booking("q", W, 1)), known=Known.NONE)


@pytest.mark.parametrize(
    ("s", "promoted"),
    [
        (session(booking("q1", W, 1), booking("q2", W, 2), capacity=1), ["q1"]),
        (session(booking("q1", W, 1), booking("q2", W, 2), capacity=5), ["q1", "q2"]),
        (session(booking("a"), booking("q1", W, 1), capacity=1), []),
        (session(booking("q1", W, 1), status=SessionStatus.CANCELLED), []),
        (session(booking("q1", W, 1), ends_at=NOW), []),
    ],
)
def test_promote(s: Session, promoted: list[str]) -> None:
    change = s.promote(NOW)
    assert list(change.promoted) == promoted
    assert change.changed == bool(promoted)


# Organizer edits ---------------------------------------------------------------------------


def full() -> Session:
    return session(booking("a"), booking("b"), booking("q", W, 3), lead="f1", co="f2", sequence=4)


EVERYONE_RESCHEDULED = [
    (K.SESSION_RESCHEDULED, "m-a"),
    (K.SESSION_RESCHEDULED, "m-b"),
    (K.SESSION_RESCHEDULED, "m-q"),
    (K.SESSION_RESCHEDULED, "f1"),
    (K.SESSION_RESCHEDULED, "f2"),
]


@pytest.mark.parametrize(
    ("edit", "sequence", "owed", "promoted"),
    [
        (SessionEdit(), 4, [], []),
        # Capacity is not on a calendar: no sequence bump, no notice, but the queue moves.
        (SessionEdit(capacity=3), 4, [(K.BOOKING_PROMOTED, "m-q")], ["q"]),
        (SessionEdit(capacity=1), 4, [], []),
        (SessionEdit(duration_minutes=90), 5, EVERYONE_RESCHEDULED, []),
        (SessionEdit(starts_at=START + timedelta(days=1)), 5, EVERYONE_RESCHEDULED, []),
        (
            SessionEdit(status=SessionStatus.CANCELLED),
            5,
            [(K.SESSION_CANCELLED, m) for m in ("m-a", "m-b", "m-q", "f1", "f2")],
            [],
        ),
        (SessionEdit(status=SessionStatus.SCHEDULED), 4, [], []),
    ],
)
def test_edit(
    edit: SessionEdit,
    sequence: int,
    owed: list[tuple[MessageKind, str]],
    promoted: list[str],
) -> None:
    change = full().edit(edit, LONDON, NOW)
    assert change.after.sequence == sequence
    assert kinds(change) == owed
    assert list(change.promoted) == promoted


def test_edit_local_start_keeps_wall_clock_time_across_dst() -> None:
    # 19:30 in London on 2027-04-13 is 18:30Z (summer time).
    change = full().edit(SessionEdit(local_start=datetime(2027, 4, 13, 19, 30)), LONDON, NOW)
    assert change.after.starts_at == datetime(2027, 4, 13, 18, 30, tzinfo=UTC)
    assert change.after.ends_at - change.after.starts_at == timedelta(minutes=75)
    assert change.after.rescheduled


def test_moving_a_session_starts_its_handoff_over_and_reinstating_promotes() -> None:
    marks = HandoffMarks(NOW, NOW, NOW, NOW)
    moved = full().edit(SessionEdit(starts_at=START + timedelta(hours=1)), LONDON, NOW)
    assert (
        replace(full(), handoff=marks)
        .edit(SessionEdit(starts_at=START + timedelta(hours=1)), LONDON, NOW)
        .after.handoff
        == HandoffMarks()
    )
    assert moved.after.rescheduled
    cancelled = session(booking("q", W, 1), status=SessionStatus.CANCELLED, handoff=marks)
    back = cancelled.edit(SessionEdit(status=SessionStatus.SCHEDULED), LONDON, NOW)
    assert back.after.handoff == HandoffMarks()
    assert kinds(back) == [(K.SESSION_RESCHEDULED, "m-q"), (K.BOOKING_PROMOTED, "m-q")]


@pytest.mark.parametrize(
    ("edit", "error", "code"),
    [
        (SessionEdit(capacity=0), Invalid, "invalid"),
        (SessionEdit(capacity=501), Invalid, "invalid"),
        (SessionEdit(duration_minutes=0), Invalid, "invalid"),
        (SessionEdit(starts_at=START, local_start=datetime(2027, 4, 1, 19)), Invalid, "invalid"),
        (SessionEdit(starts_at=datetime(2027, 4, 1, 19)), Invalid, "invalid"),
        (SessionEdit(local_start=datetime(2027, 4, 1, 19, tzinfo=UTC)), Invalid, "invalid"),
        (SessionEdit(starts_at=NOW - timedelta(days=1)), Invalid, "in_the_past"),
        (SessionEdit(starts_at=NOW + timedelta(days=4000)), Invalid, "too_far_ahead"),
    ],
)
def test_edit_refused(edit: SessionEdit, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as refused:
        full().edit(edit, LONDON, NOW)
    assert getattr(refused.value, "code", None) == code


def test_an_ended_session_cannot_be_edited() -> None:
    with pytest.raises(Conflict) as refused:
        session(ends_at=NOW).edit(SessionEdit(capacity=3), LONDON, NOW)
    assert refused.value.code == "session_over"


# Series edits ------------------------------------------------------------------------------


def test_follow_series_retire_and_reinstate() -> None:
    s = full()
    later = START + timedelta(days=1)
    moved = s.follow_series(later, later + timedelta(minutes=75), retime=True, now=NOW)
    assert (moved.after.starts_at, moved.after.sequence) == (later, 5)
    assert kinds(moved) == EVERYONE_RESCHEDULED
    kept = s.follow_series(later, later + timedelta(minutes=75), retime=False, now=NOW)
    assert not kept.changed
    retired = s.retire()
    assert (retired.after.status, retired.after.retired, retired.after.sequence) == (
        SessionStatus.CANCELLED,
        True,
        5,
    )
    assert [k for k, _ in kinds(retired)] == [K.SESSION_CANCELLED] * 5
    assert not retired.after.retire().changed
    back = retired.after.follow_series(s.starts_at, s.ends_at, retime=True, now=NOW)
    assert (back.after.status, back.after.retired, back.after.sequence) == (
        SessionStatus.SCHEDULED,
        False,
        6,
    )


def test_resize_promotes_only_when_places_are_added() -> None:
    assert list(full().resize(3, NOW).promoted) == ["q"]
    smaller = full().resize(1, NOW)
    assert (smaller.after.capacity, smaller.promoted, smaller.owed) == (1, (), ())


# Facilitators ------------------------------------------------------------------------------

ROLES = {
    "f1": MemberRole.FACILITATOR,
    "f2": MemberRole.FACILITATOR,
    "f3": MemberRole.FACILITATOR,
    "p": MemberRole.PARENT,
}


@pytest.mark.parametrize(
    ("lead", "co", "owed"),
    [
        ("f1", "f2", []),
        # The co becomes lead and a newcomer joins as co: both get an updated invite.
        ("f2", "f3", [(K.FACILITATOR_RELEASED, "f1"), (K.FACILITATOR_ASSIGNED, "f2"),
                      (K.FACILITATOR_ASSIGNED, "f3")]),
        (None, None, [(K.FACILITATOR_RELEASED, "f1"), (K.FACILITATOR_RELEASED, "f2")]),
        ("f3", None, [(K.FACILITATOR_RELEASED, "f1"), (K.FACILITATOR_RELEASED, "f2"),
                      (K.FACILITATOR_ASSIGNED, "f3")]),
    ],
)  # fmt: skip
def test_assign_facilitators(
    lead: str | None, co: str | None, owed: list[tuple[MessageKind, str]]
) -> None:
    change = full().assign_facilitators(lead, co, roles=ROLES, now=NOW)
    after = change.after
    assert (after.lead, after.co, after.sequence) == (lead, co, 5)
    assert after.assigned_by == (AssignedBy.ORGANIZER if lead else None)
    assert after.handoff.lead_confirmed_at == (NOW if lead else None)
    assert kinds(change) == owed


@pytest.mark.parametrize(
    ("lead", "co", "error", "code"),
    [
        (None, "f1", Invalid, "co_without_lead"),
        ("f1", "f1", Invalid, "same_facilitator"),
        ("zz", None, NotFound, "member_not_found"),
        ("p", None, Invalid, "not_a_facilitator"),
    ],
)
def test_assign_facilitators_refused(
    lead: str | None, co: str | None, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as refused:
        full().assign_facilitators(lead, co, roles=ROLES, now=NOW)
    assert getattr(refused.value, "code", None) == code


def test_a_booked_member_cannot_facilitate() -> None:
    s = session(replace(booking("a"), member_id="f3"))
    with pytest.raises(Conflict) as refused:
        s.assign_facilitators("f3", None, roles=ROLES, now=NOW)
    assert refused.value.code == "member_booked"


def test_rotation_hand_over_and_swap() -> None:
    marks = HandoffMarks(lead_notified_at=NOW, lead_confirmed_at=NOW)
    s = replace(full(), handoff=marks)
    # The hand-over: the co leads, a new co joins; the new lead has confirmed nothing yet.
    over = s.reassign("f2", "f3", note=None, handed_over_at=NOW)
    assert over.after.handoff == HandoffMarks(handed_over_at=NOW)
    assert over.after.assigned_by == AssignedBy.ROTATION
    assert kinds(over) == [
        (K.FACILITATOR_RELEASED, "f1"),
        (K.FACILITATOR_ASSIGNED, "f2"),
        (K.FACILITATOR_ASSIGNED, "f3"),
    ]
    # The lead stays (the co could not make it): their confirmation stands.
    stay = s.reassign("f1", "f3", note="short", handed_over_at=None)
    assert stay.after.handoff == marks
    assert stay.after.rotation_note == "short"
    swapped = full().swap("f1", "f3", NOW)
    assert (swapped.after.lead, swapped.after.handoff.lead_confirmed_at) == ("f3", NOW)
    assert kinds(swapped) == [(K.FACILITATOR_RELEASED, "f1"), (K.FACILITATOR_ASSIGNED, "f3")]


def test_fill_only_an_unled_scheduled_session() -> None:
    empty = session()
    filled = empty.fill("f1", "f2", note=None)
    assert (filled.after.lead, filled.after.co, filled.after.sequence) == ("f1", "f2", 1)
    assert kinds(filled) == [(K.FACILITATOR_ASSIGNED, "f1"), (K.FACILITATOR_ASSIGNED, "f2")]
    assert not full().fill("f3", None, note=None).changed
    assert not session(status=SessionStatus.CANCELLED).fill("f1", None, note=None).changed
    noted = empty.fill(None, None, note="nobody free")
    assert (noted.after.rotation_note, noted.owed) == ("nobody free", ())


def test_handoff_steps_are_taken_once() -> None:
    s = full()
    told = s.notify_lead(NOW)
    assert kinds(told) == [(K.LEAD_NOTICE, "f1")]
    assert not told.after.notify_lead(NOW).changed
    alert = s.alert_organizer(NOW)
    assert kinds(alert) == [(K.ORGANIZER_ALERT, None)]
    assert not alert.after.alert_organizer(NOW).changed
    confirmed = s.confirm_lead("f1", NOW)
    assert confirmed.after.handoff.lead_confirmed_at == NOW
    assert not s.confirm_lead("f2", NOW).changed


@pytest.mark.parametrize(
    ("s", "asker", "taker", "error", "code"),
    [
        (replace(full(), status=SessionStatus.CANCELLED), "f1", "f3", Conflict, "session_not_open"),
        (replace(full(), starts_at=NOW), "f1", "f3", Conflict, "session_not_open"),
        (full(), "m-a", "f3", Invalid, "not_facilitating"),
        (full(), "f1", "p", NotFound, "member_not_found"),
        (full(), "f1", "zz", NotFound, "member_not_found"),
        (full(), "f1", "f2", Conflict, "already_in"),
        (session(replace(booking("a"), member_id="f3"), lead="f1"), "f1", "f3", Conflict,
         "member_booked"),
    ],
)  # fmt: skip
def test_ask_swap_refused(
    s: Session, asker: str, taker: str, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as refused:
        s.ask_swap(asker, taker, roles=ROLES, now=NOW)
    assert getattr(refused.value, "code", None) == code


def test_ask_swap_owes_the_taker_a_request_and_changes_nothing() -> None:
    change = full().ask_swap("f2", "f3", roles=ROLES, now=NOW)
    assert change.after == change.before
    assert change.owed == (Owed(MessageKind.SWAP_REQUEST, "f3", other_member_id="f2"),)
