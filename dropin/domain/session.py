"""The session aggregate: one drop-in with its places, waitlist and facilitators. Pure.

Everything that can happen to a session — a booking, a cancellation, a promotion from the
waitlist, a reschedule, a cancellation of the whole session, a change of facilitators — is a
method of :class:`Session` that takes ``now`` and returns a :class:`SessionChange`: the session
as it is afterwards, the booking rows it wrote, and the messages it owes (one outbox row
each). Nothing here reads a clock, a database or the network; services load a session, call
one method, and save the change in the same transaction (:mod:`dropin.store.uow`).

Refusals are the documented error tree (:mod:`dropin.errors`) with stable codes, so a
handler maps them to HTTP without knowing where they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from dropin.domain.booking import BookingRefused, QueuedBooking, Seats, decide, to_promote
from dropin.domain.recurrence import resolve_local
from dropin.domain.states import (
    AssignedBy,
    BookingStatus,
    FacilitatorRole,
    MemberRole,
    MessageKind,
    SessionStatus,
)
from dropin.errors import Conflict, Invalid, NotFound

MAX_CAPACITY = 500
MAX_DURATION_MINUTES = 24 * 60
# How far ahead an organizer may move one session.
MAX_AHEAD = timedelta(days=3660)


@dataclass(frozen=True)
class Booking:
    """A member's booking row. ``waitlist_seq`` orders the queue; ``revision`` rises on change."""

    id: str
    member_id: str
    status: BookingStatus
    waitlist_seq: int | None
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Owed:
    """A message the change owes someone: one outbox row, sent by the workers after commit."""

    kind: MessageKind
    member_id: str | None
    booking_id: str | None = None
    # The facilitator asking, in a swap request.
    other_member_id: str | None = None


@dataclass(frozen=True)
class HandoffMarks:
    """When each step of the facilitators' hand-over was taken (dropin/domain/handoff.py)."""

    lead_notified_at: datetime | None = None
    lead_confirmed_at: datetime | None = None
    handed_over_at: datetime | None = None
    alerted_at: datetime | None = None


@dataclass(frozen=True)
class SessionEdit:
    """An organizer's change to one session; ``None`` leaves a field as it is.

    ``starts_at`` is an instant (aware); ``local_start`` is wall-clock time in the group's
    zone (naive). At most one of the two.
    """

    starts_at: datetime | None = None
    local_start: datetime | None = None
    duration_minutes: int | None = None
    capacity: int | None = None
    status: SessionStatus | None = None


@dataclass(frozen=True)
class SessionChange:
    """What a method decided: the session afterwards, the rows it wrote, what it owes."""

    before: Session
    after: Session
    # Booking rows to insert (new) and to update (changed), each as it is afterwards.
    inserted: tuple[Booking, ...] = ()
    updated: tuple[Booking, ...] = ()
    owed: tuple[Owed, ...] = ()
    # Ids of the waitlisted bookings confirmed by this change, in promotion order.
    promoted: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.after != self.before or bool(self.inserted or self.updated or self.owed)

    def then(self, later: SessionChange) -> SessionChange:
        """This change followed by ``later`` (made on this change's ``after``)."""
        assert later.before is self.after, "changes must be chained on the same session"
        updated = {b.id: b for b in self.updated}
        inserted = {b.id: b for b in self.inserted}
        for b in later.updated:
            if b.id in inserted:
                inserted[b.id] = b
            else:
                updated[b.id] = b
        for b in later.inserted:
            inserted[b.id] = b
        return SessionChange(
            before=self.before,
            after=later.after,
            inserted=tuple(inserted.values()),
            updated=tuple(updated.values()),
            owed=self.owed + later.owed,
            promoted=self.promoted + later.promoted,
        )


class Known(Enum):
    """Which of a session's active bookings a loaded :class:`Session` holds.

    A decision loads what it needs and no more (a booking into a session of a hundred needs
    only the counts): ``NONE`` for a booking or the rotation's and handoff's changes,
    ``WAITLIST`` (every waitlisted booking) to promote, ``ALL`` to tell everyone or to ask
    whether a member holds a place (an organizer's choice of facilitators, a swap request).
    A method that needs more than was loaded says so (:class:`NotLoaded`).
    """

    NONE = 0
    WAITLIST = 1
    ALL = 2


class NotLoaded(RuntimeError):
    """A decision needed bookings the session was not loaded with (a programming error)."""


@dataclass(frozen=True)
class Session:
    """A session with its seat counts and the active bookings its decision needs.

    ``confirmed_count`` and ``waitlist_count`` are always whole; ``bookings`` holds what
    ``known`` says (see :class:`Known`), and the two always agree.
    """

    id: str
    group_id: str
    starts_at: datetime
    ends_at: datetime
    status: SessionStatus
    capacity: int
    lead: str | None = None
    co: str | None = None
    # Calendar SEQUENCE: rises on every change a calendar must show.
    sequence: int = 0
    # The next waitlisted booking's place in the queue (only grows).
    next_waitlist_seq: int = 1
    # Moved by hand: series edits leave its time alone.
    rescheduled: bool = False
    # Cancelled by a series edit (not by the organizer): a later edit may reinstate it.
    retired: bool = False
    assigned_by: AssignedBy | None = None
    rotation_note: str | None = None
    handoff: HandoffMarks = field(default_factory=HandoffMarks)
    confirmed_count: int = 0
    waitlist_count: int = 0
    bookings: tuple[Booking, ...] = ()
    known: Known = Known.ALL

    def __post_init__(self) -> None:
        queued = sum(1 for b in self.bookings if b.status == BookingStatus.WAITLISTED)
        confirmed = sum(1 for b in self.bookings if b.status == BookingStatus.CONFIRMED)
        whole = {
            Known.NONE: not self.bookings,
            Known.WAITLIST: confirmed == 0 and queued == self.waitlist_count,
            Known.ALL: (confirmed, queued) == (self.confirmed_count, self.waitlist_count),
        }
        if not whole[self.known]:
            raise ValueError(f"session {self.id}: bookings and counts disagree")

    # What follows from the bookings ------------------------------------------------------

    def _needs(self, known: Known, what: str) -> None:
        if self.known.value < known.value:
            raise NotLoaded(f"{what} needs {known.name} bookings; loaded: {self.known.name}")

    @property
    def waitlist(self) -> list[Booking]:
        """Waitlisted bookings, first in line first."""
        self._needs(Known.WAITLIST, "the waitlist")
        queued = [b for b in self.bookings if b.status == BookingStatus.WAITLISTED]
        return sorted(queued, key=lambda b: b.waitlist_seq or 0)

    @property
    def facilitators(self) -> tuple[str, ...]:
        return tuple(m for m in (self.lead, self.co) if m is not None)

    def is_over(self, now: datetime) -> bool:
        return now >= self.ends_at

    def booking_of(self, member_id: str) -> Booking | None:
        """The member's active booking, if any."""
        self._needs(Known.ALL, "a member's booking")
        return next((b for b in self.bookings if b.member_id == member_id), None)

    def waitlist_position(self, booking_id: str) -> int | None:
        """1-based place in the queue of a waitlisted booking."""
        ids = [b.id for b in self.waitlist]
        return ids.index(booking_id) + 1 if booking_id in ids else None

    def _holding(self, booking: Booking) -> tuple[Booking, ...]:
        return _hold(self.known, self.bookings, booking)

    # Bookings ----------------------------------------------------------------------------

    def book(
        self, member_id: str, *, new_id: str, earlier: Booking | None, now: datetime
    ) -> SessionChange:
        """Book ``member_id``: confirmed while places remain, else at the back of the queue.

        ``earlier`` is the member's previous booking row for this session (a cancelled one is
        re-used, with a higher revision); ``new_id`` names the row if there is none. Needs only
        the counts. Conflict: ``facilitating``, ``already_booked``, ``session_cancelled``,
        ``session_over``.
        """
        if member_id in self.facilitators:
            raise Conflict("this member facilitates this session", code="facilitating")
        if earlier is not None and earlier.status != BookingStatus.CANCELLED:
            raise already_booked(earlier.id)
        seats = Seats(self.status, self.ends_at, self.capacity, self.confirmed_count)
        try:
            status = decide(seats, now)
        except BookingRefused as exc:
            raise Conflict(exc.detail, code=exc.code) from None
        waits = status == BookingStatus.WAITLISTED
        seq = self.next_waitlist_seq if waits else None
        booking = (
            Booking(new_id, member_id, status, seq, 0, now, now)
            if earlier is None
            else replace(
                earlier,
                status=status,
                waitlist_seq=seq,
                revision=earlier.revision + 1,
                updated_at=now,
            )
        )
        after = replace(
            self,
            bookings=self._holding(booking),
            next_waitlist_seq=self.next_waitlist_seq + waits,
            confirmed_count=self.confirmed_count + (not waits),
            waitlist_count=self.waitlist_count + waits,
        )
        kind = MessageKind.BOOKING_WAITLISTED if waits else MessageKind.BOOKING_CONFIRMED
        return SessionChange(
            before=self,
            after=after,
            inserted=(booking,) if earlier is None else (),
            updated=() if earlier is None else (booking,),
            owed=(Owed(kind, member_id, booking.id),),
        )

    def cancel_booking(self, booking: Booking, now: datetime) -> SessionChange:
        """Cancel an active booking; a freed place goes to the first in the queue at once.

        Cancelling a confirmed place needs the waitlist loaded (it promotes).
        """
        if booking.status == BookingStatus.CANCELLED:
            raise ValueError("the booking is already cancelled")
        if self.is_over(now):
            raise Conflict("this session is over", code="session_over")
        freed = booking.status == BookingStatus.CONFIRMED
        if freed:
            self._needs(Known.WAITLIST, "cancelling a confirmed place")
        cancelled = replace(
            booking,
            status=BookingStatus.CANCELLED,
            waitlist_seq=None,
            revision=booking.revision + 1,
            updated_at=now,
        )
        after = replace(
            self,
            bookings=self._holding(cancelled),
            confirmed_count=self.confirmed_count - freed,
            waitlist_count=self.waitlist_count - (not freed),
        )
        change = SessionChange(
            before=self,
            after=after,
            updated=(cancelled,),
            owed=(Owed(MessageKind.BOOKING_CANCELLED, booking.member_id, booking.id),),
        )
        return change.then(after.promote(now)) if freed else change

    def promote(self, now: datetime) -> SessionChange:
        """Confirm waitlisted bookings while places are free, first in line first."""
        if self.status != SessionStatus.SCHEDULED or self.is_over(now):
            return SessionChange(self, self)
        waiting = self.waitlist
        chosen = to_promote(
            self.capacity,
            self.confirmed_count,
            [QueuedBooking(b.id, b.waitlist_seq or 0) for b in waiting],
        )
        if not chosen:
            return SessionChange(self, self)
        promoted = {
            b.id: replace(
                b,
                status=BookingStatus.CONFIRMED,
                waitlist_seq=None,
                revision=b.revision + 1,
                updated_at=now,
            )
            for b in waiting
            if b.id in chosen
        }
        held = self.bookings
        for b in promoted.values():
            held = _hold(self.known, held, b)
        after = replace(
            self,
            bookings=held,
            confirmed_count=self.confirmed_count + len(chosen),
            waitlist_count=self.waitlist_count - len(chosen),
        )
        return SessionChange(
            before=self,
            after=after,
            updated=tuple(promoted[i] for i in chosen),
            owed=tuple(
                Owed(MessageKind.BOOKING_PROMOTED, promoted[i].member_id, i) for i in chosen
            ),
            promoted=tuple(chosen),
        )

    # The session itself ------------------------------------------------------------------

    def edit(self, edit: SessionEdit, tz: ZoneInfo, now: datetime) -> SessionChange:
        """An organizer reschedules, resizes, cancels or reinstates this one session.

        Every change a calendar shows raises ``sequence`` and owes everyone in the session a
        notice (cancelled, or rescheduled: moved, lengthened, shortened, reinstated). More
        places, or a reinstatement, promote from the waitlist in the same change.
        """
        if self.is_over(now):
            raise Conflict("this session is over and cannot be changed", code="session_over")
        starts_at, ends_at = self._new_times(edit, tz, now)
        status = edit.status or self.status
        capacity = self.capacity if edit.capacity is None else edit.capacity
        if not 1 <= capacity <= MAX_CAPACITY:
            raise Invalid(f"capacity must be 1 to {MAX_CAPACITY}")
        after = replace(self, capacity=capacity)
        retimed = (starts_at, ends_at) != (self.starts_at, self.ends_at)
        if retimed:
            # Timing set by hand (start or length): later series edits leave it alone.
            after = replace(after, starts_at=starts_at, ends_at=ends_at, rescheduled=True)
            if starts_at != self.starts_at:
                after = replace(after, handoff=HandoffMarks())
        if status != self.status:
            after = replace(after, status=status)
            if status == SessionStatus.SCHEDULED:
                after = replace(after, handoff=HandoffMarks())
        if retimed or status != self.status:
            after = replace(after, sequence=self.sequence + 1)
        notice: MessageKind | None = None
        if status != self.status and status == SessionStatus.CANCELLED:
            notice = MessageKind.SESSION_CANCELLED
        elif retimed or status != self.status:
            notice = MessageKind.SESSION_RESCHEDULED
        change = SessionChange(
            self, after, owed=self.tell_everyone(notice) if notice is not None else ()
        )
        reopened = status != self.status and status == SessionStatus.SCHEDULED
        if capacity > self.capacity or reopened:
            return change.then(after.promote(now))
        return change

    def _new_times(
        self, edit: SessionEdit, tz: ZoneInfo, now: datetime
    ) -> tuple[datetime, datetime]:
        duration = self.ends_at - self.starts_at
        if edit.duration_minutes is not None:
            if not 1 <= edit.duration_minutes <= MAX_DURATION_MINUTES:
                raise Invalid(f"duration_minutes must be 1 to {MAX_DURATION_MINUTES}")
            duration = timedelta(minutes=edit.duration_minutes)
        if edit.starts_at is not None and edit.local_start is not None:
            raise Invalid("give starts_at or local_start, not both")
        starts_at = self.starts_at
        if edit.starts_at is not None:
            if edit.starts_at.tzinfo is None:
                raise Invalid("starts_at needs an offset or Z; use local_start for wall-clock")
            starts_at = edit.starts_at
        elif edit.local_start is not None:
            if edit.local_start.tzinfo is not None:
                raise Invalid("local_start is wall-clock time: give it without an offset")
            try:
                starts_at = resolve_local(edit.local_start, tz)
            except OverflowError:
                raise Invalid("that date is out of range", code="too_far_ahead") from None
        if starts_at > now + MAX_AHEAD:
            raise Invalid("a session cannot be moved that far ahead", code="too_far_ahead")
        moved = (starts_at, duration) != (self.starts_at, self.ends_at - self.starts_at)
        if moved and starts_at + duration <= now:
            raise Invalid("a session cannot be moved into the past", code="in_the_past")
        return starts_at, starts_at + duration

    def follow_series(
        self, starts_at: datetime, ends_at: datetime, *, retime: bool, now: datetime
    ) -> SessionChange:
        """A series edit put this session's occurrence at ``starts_at`` to ``ends_at``.

        ``retime``: take the new times (a session moved by hand keeps its own). A session the
        series had retired is reinstated. Either owes everyone a "rescheduled" notice.
        """
        after = self
        if retime and (starts_at, ends_at) != (self.starts_at, self.ends_at):
            after = replace(after, starts_at=starts_at, ends_at=ends_at, handoff=HandoffMarks())
        if self.retired:
            after = replace(
                after, status=SessionStatus.SCHEDULED, retired=False, handoff=HandoffMarks()
            )
        if after == self:
            return SessionChange(self, self)
        after = replace(after, sequence=self.sequence + 1)
        return SessionChange(self, after, owed=self.tell_everyone(MessageKind.SESSION_RESCHEDULED))

    def retire(self) -> SessionChange:
        """A series edit no longer has this occurrence: cancel it (a later edit may reinstate)."""
        if self.status != SessionStatus.SCHEDULED:
            return SessionChange(self, self)
        after = replace(
            self, status=SessionStatus.CANCELLED, retired=True, sequence=self.sequence + 1
        )
        return SessionChange(self, after, owed=self.tell_everyone(MessageKind.SESSION_CANCELLED))

    def resize(self, capacity: int, now: datetime) -> SessionChange:
        """The series' capacity changed: take it, and promote if places were added."""
        after = replace(self, capacity=capacity)
        change = SessionChange(self, after)
        if capacity > self.capacity:
            return change.then(after.promote(now))
        return change

    def tell_everyone(self, kind: MessageKind) -> tuple[Owed, ...]:
        """``kind`` owed to every active booking, then to each facilitator."""
        self._needs(Known.ALL, "telling everyone")
        booked = tuple(Owed(kind, b.member_id, b.id) for b in self.bookings)
        return booked + tuple(Owed(kind, m) for m in sorted(set(self.facilitators)))

    # Facilitators ------------------------------------------------------------------------

    def assign_facilitators(
        self,
        lead: str | None,
        co: str | None,
        *,
        roles: Mapping[str, MemberRole],
        now: datetime,
    ) -> SessionChange:
        """An organizer picks the lead and co-facilitator (or clears them with ``None``).

        ``roles`` holds the role of each named member who belongs to the session's group.
        Hand-picked facilitators are never changed by the rotation, and a lead picked by an
        organizer counts as confirmed (they arranged it).
        """
        check_pair(lead, co)
        if self.is_over(now):
            raise Conflict("this session is over and cannot be changed", code="session_over")
        for member_id in (lead, co):
            if member_id is None:
                continue
            if member_id not in roles:
                raise NotFound("no such member in this session's group", code="member_not_found")
            if roles[member_id] != MemberRole.FACILITATOR:
                raise Invalid("only facilitators can lead a session", code="not_a_facilitator")
            if self.booking_of(member_id) is not None:
                raise Conflict(
                    "this member has a booking for this session; cancel it first",
                    code="member_booked",
                )
        after = replace(
            self,
            lead=lead,
            co=co,
            assigned_by=AssignedBy.ORGANIZER if lead else None,
            rotation_note=None,
            handoff=replace(
                self.handoff, lead_confirmed_at=now if lead else None, handed_over_at=None
            ),
            sequence=self.sequence + 1,
        )
        return SessionChange(self, after, owed=self._facilitator_notices(after))

    def reassign(
        self, lead: str | None, co: str | None, *, note: str | None, handed_over_at: datetime | None
    ) -> SessionChange:
        """The rotation puts ``lead`` and ``co`` in (a can't-make-it, or the hand-over).

        A new lead has not been told or confirmed anything yet; one who stays keeps both.
        """
        same_lead = lead == self.lead
        after = replace(
            self,
            lead=lead,
            co=co,
            assigned_by=AssignedBy.ROTATION,
            rotation_note=note or None,
            handoff=replace(
                self.handoff,
                lead_confirmed_at=self.handoff.lead_confirmed_at if same_lead else None,
                lead_notified_at=self.handoff.lead_notified_at if same_lead else None,
                handed_over_at=handed_over_at,
            ),
            sequence=self.sequence + 1,
        )
        return SessionChange(self, after, owed=self._facilitator_notices(after))

    def fill(self, lead: str | None, co: str | None, *, note: str | None) -> SessionChange:
        """The rotation's pick for a session nobody leads yet; ``note`` says what fell short.

        Only a scheduled session still without a lead takes it: an organizer's choice or a
        cancellation made meanwhile wins. With no lead to give, only the note is kept.
        """
        if lead is None:
            return SessionChange(self, replace(self, rotation_note=note or None))
        if self.lead is not None or self.status != SessionStatus.SCHEDULED:
            return SessionChange(self, self)
        after = replace(
            self,
            lead=lead,
            co=co,
            assigned_by=AssignedBy.ROTATION,
            rotation_note=note or None,
            sequence=self.sequence + 1,
        )
        owed = tuple(Owed(MessageKind.FACILITATOR_ASSIGNED, m) for m in (lead, co) if m)
        return SessionChange(self, after, owed=owed)

    def ask_swap(
        self, asker: str, taker: str, *, roles: Mapping[str, MemberRole], now: datetime
    ) -> SessionChange:
        """``asker``, facilitating, asks ``taker`` (a facilitator of the group) to take over.

        Nothing changes until ``taker`` accepts (:meth:`swap`); they are sent the request.
        ``roles`` holds ``taker``'s role if they belong to the session's group.
        """
        if self.status != SessionStatus.SCHEDULED or now >= self.starts_at:
            raise Conflict("only upcoming sessions can be swapped", code="session_not_open")
        if asker not in self.facilitators:
            raise Invalid(
                "the member asking is not facilitating this session", code="not_facilitating"
            )
        if roles.get(taker) != MemberRole.FACILITATOR:
            raise NotFound("no such facilitator in this group", code="member_not_found")
        if taker in self.facilitators:
            raise Conflict("that facilitator is already in this session", code="already_in")
        if self.booking_of(taker) is not None:
            raise Conflict("that facilitator holds a place in this session", code="member_booked")
        request = Owed(MessageKind.SWAP_REQUEST, taker, other_member_id=asker)
        return SessionChange(self, self, owed=(request,))

    def swap(self, asker: str, taker: str, now: datetime) -> SessionChange:
        """``taker`` takes ``asker``'s place, in the same role; a lead by swap has confirmed."""
        if self.lead == asker:
            marks = replace(self.handoff, lead_confirmed_at=now, lead_notified_at=now)
            after = replace(self, lead=taker, handoff=marks)
        else:
            after = replace(self, co=taker)
        after = replace(after, assigned_by=AssignedBy.ROTATION, sequence=self.sequence + 1)
        return SessionChange(
            self,
            after,
            owed=(
                Owed(MessageKind.FACILITATOR_RELEASED, asker),
                Owed(MessageKind.FACILITATOR_ASSIGNED, taker),
            ),
        )

    def _facilitator_notices(self, after: Session) -> tuple[Owed, ...]:
        """Whoever leaves hears so; whoever joins, or changes role, gets an updated invite."""
        before = _roles(self)
        now_in = _roles(after)
        released = [
            Owed(MessageKind.FACILITATOR_RELEASED, m) for m in sorted(set(before) - set(now_in))
        ]
        assigned = [
            Owed(MessageKind.FACILITATOR_ASSIGNED, m)
            for m in sorted(now_in)
            if before.get(m) != now_in[m]
        ]
        return (*released, *assigned)

    def confirm_lead(self, member_id: str, now: datetime) -> SessionChange:
        """The lead confirms they will lead (once; later clicks change nothing)."""
        if member_id != self.lead or self.handoff.lead_confirmed_at is not None:
            return SessionChange(self, self)
        after = replace(self, handoff=replace(self.handoff, lead_confirmed_at=now))
        return SessionChange(self, after)

    def notify_lead(self, now: datetime) -> SessionChange:
        """Tell the lead ahead of the session (once)."""
        if self.handoff.lead_notified_at is not None:
            return SessionChange(self, self)
        after = replace(self, handoff=replace(self.handoff, lead_notified_at=now))
        owed = (Owed(MessageKind.LEAD_NOTICE, self.lead),) if self.lead else ()
        return SessionChange(self, after, owed=owed)

    def alert_organizer(self, now: datetime) -> SessionChange:
        """Tell the organizer nobody can lead (once)."""
        if self.handoff.alerted_at is not None:
            return SessionChange(self, self)
        after = replace(self, handoff=replace(self.handoff, alerted_at=now))
        return SessionChange(self, after, owed=(Owed(MessageKind.ORGANIZER_ALERT, None),))


def _hold(known: Known, held: tuple[Booking, ...], booking: Booking) -> tuple[Booking, ...]:
    """``held`` with ``booking`` as it is now, kept only where ``known`` keeps such a booking."""
    others = tuple(b for b in held if b.id != booking.id)
    keep = booking.status != BookingStatus.CANCELLED and (
        known == Known.ALL
        or (known == Known.WAITLIST and booking.status == BookingStatus.WAITLISTED)
    )
    return (*others, booking) if keep else others


def _roles(session: Session) -> dict[str, FacilitatorRole]:
    roles: dict[str, FacilitatorRole] = {}
    if session.lead is not None:
        roles[session.lead] = FacilitatorRole.LEAD
    if session.co is not None:
        roles[session.co] = FacilitatorRole.CO
    return roles


def check_pair(lead: str | None, co: str | None) -> None:
    """A co-facilitator needs a lead, and the two are different people (:class:`Invalid`)."""
    if co is not None and lead is None:
        raise Invalid("a co-facilitator needs a lead", code="co_without_lead")
    if lead is not None and lead == co:
        raise Invalid("lead and co-facilitator must be different people", code="same_facilitator")


def already_booked(booking_id: str | None) -> Conflict:
    """The refusal of a second active booking by the same member."""
    return Conflict(
        {"message": "this member already has a booking", "booking_id": booking_id},
        code="already_booked",
    )
