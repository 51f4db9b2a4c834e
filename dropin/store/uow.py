"""The unit of work: one write transaction's sessions, bookings and owed messages.

Services load a :class:`~dropin.domain.session.Session` through :class:`UnitOfWork`, let the
aggregate decide, and :meth:`UnitOfWork.save` the change: the session row, the booking rows
and one outbox row per owed message, all in the caller's transaction. The unit of work counts
the outbox rows it wrote; :class:`dropin.store.db.Database` reads that count after the commit
and tells its listener (the app nudges the workers with it), so nothing guesses whether a
request wrote mail.

Transaction bodies are synchronous (:meth:`Database.run_write`); async callers holding an
``AsyncConnection`` use ``await conn.run_sync(lambda c: ...)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Row, bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dropin.domain.session import (
    Booking,
    HandoffMarks,
    Known,
    Owed,
    Session,
    SessionChange,
    already_booked,
)
from dropin.domain.states import (
    AssignedBy,
    BookingStatus,
    MessageKind,
    OutboxStatus,
    SessionStatus,
)
from dropin.errors import Conflict, NotFound
from dropin.store.db import count_outbox_rows
from dropin.store.tables import bookings, members, outbox, sessions

# Columns whose change is bookkeeping, not a change to the session a calendar or feed shows:
# they leave ``updated_at`` (the feeds' Last-Modified) alone.
_BOOKKEEPING = frozenset(
    {
        "confirmed_count",
        "waitlist_count",
        "next_waitlist_seq",
        "rotation_note",
        "lead_notified_at",
        "lead_confirmed_at",
        "handed_over_at",
        "alerted_at",
    }
)


def outbox_insert(
    kind: MessageKind,
    now: datetime,
    *,
    session_id: str | None = None,
    member_id: str | None = None,
    booking_id: str | None = None,
    other_member_id: str | None = None,
) -> Insert:
    """The statement recording that a message is owed; run it in the change's transaction.

    Whoever runs it also calls :func:`dropin.store.db.count_outbox_rows`, so the commit
    reports it (:func:`owe` does both).
    """
    return outbox.insert().values(
        kind=MessageKind(kind).value,
        session_id=session_id,
        member_id=member_id,
        booking_id=booking_id,
        other_member_id=other_member_id,
        status=OutboxStatus.PENDING.value,
        attempts=0,
        created_at=now,
    )


def owe(conn: Connection, kind: MessageKind, now: datetime, **ids: str | None) -> None:
    """Write one outbox row (a message owed) in ``conn``'s transaction, and count it."""
    row = {"session_id": None, "member_id": None, "booking_id": None, "other_member_id": None}
    conn.execute(_INSERT_OUTBOX, {**row, **ids, "kind": MessageKind(kind).value, "created_at": now})
    count_outbox_rows(conn, 1)


# Statements of the hot paths, built once: a booking runs these hundreds of times a second, and
# building a statement costs more than SQLite takes to run it.
_SESSION = select(sessions).where(sessions.c.id == bindparam("b_session_id"))
_SESSION_LOCKED = _SESSION.with_for_update()
_ACTIVE_BOOKINGS = (
    select(bookings)
    .where(
        bookings.c.session_id == bindparam("b_session_id"),
        bookings.c.status != BookingStatus.CANCELLED.value,
    )
    .order_by(bookings.c.created_at, bookings.c.id)
)
_WAITLISTED_BOOKINGS = (
    select(bookings)
    .where(
        bookings.c.session_id == bindparam("b_session_id"),
        bookings.c.status == BookingStatus.WAITLISTED.value,
    )
    .order_by(bookings.c.created_at, bookings.c.id)
)
_MEMBER_AND_BOOKING = (
    select(members.c.group_id.label("member_group"), bookings)
    .select_from(members)
    .outerjoin(
        bookings,
        (bookings.c.member_id == members.c.id)
        & (bookings.c.session_id == bindparam("b_session_id")),
    )
    .where(members.c.id == bindparam("b_member_id"))
    # Held shared while the booking decides: erasing the member waits for it (PostgreSQL).
    .with_for_update(read=True, of=members)
)
_UPDATE_SESSION = sessions.update().where(sessions.c.id == bindparam("b_session_id"))
_UPDATE_BOOKING = bookings.update().where(
    bookings.c.id == bindparam("b_booking_id"), bookings.c.revision == bindparam("b_revision")
)
_INSERT_OUTBOX = outbox.insert().values(status=OutboxStatus.PENDING.value, attempts=0)


class UnitOfWork:
    """Loads sessions with their active bookings and saves what the aggregate decided."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def session(self, session_id: str, *, known: Known = Known.ALL, lock: bool = True) -> Session:
        """The session with the active bookings ``known`` asks for (:class:`Known`).

        ``lock`` serializes deciders on the session's row.

        PostgreSQL: ``SELECT … FOR UPDATE``. SQLite ignores it; its write transactions are
        already serialized (:mod:`dropin.store.db`). The lock is taken in a statement of its
        own: a transaction that waited for it must read the bookings *after* getting it.
        """
        query = _SESSION_LOCKED if lock else _SESSION
        row = self.conn.execute(query, {"b_session_id": session_id}).first()
        if row is None:
            raise NotFound("no such session", code="session_not_found")
        if known == Known.NONE:
            return session_from_row(row, (), known)
        query = _ACTIVE_BOOKINGS if known == Known.ALL else _WAITLISTED_BOOKINGS
        active = self.conn.execute(query, {"b_session_id": session_id}).all()
        return session_from_row(row, tuple(booking_from_row(b) for b in active), known)

    def booking(self, booking_id: str) -> tuple[str, Booking]:
        """A booking (any status) and its session's id."""
        row = self.conn.execute(select(bookings).where(bookings.c.id == booking_id)).first()
        if row is None:
            raise NotFound("no such booking", code="booking_not_found")
        return row.session_id, booking_from_row(row)

    def member_and_booking(
        self, session_id: str, member_id: str
    ) -> tuple[str | None, Booking | None]:
        """The member's group (None: no such member) and their booking row for the session,
        whatever its status, in one query."""
        row = self.conn.execute(
            _MEMBER_AND_BOOKING, {"b_session_id": session_id, "b_member_id": member_id}
        ).first()
        if row is None:
            return None, None
        return row.member_group, None if row.id is None else booking_from_row(row)

    def save(self, change: SessionChange, now: datetime) -> None:
        """Write the change: session row, booking rows, then one outbox row per owed message."""
        before, after = change.before, change.after
        was = session_values(before)
        values = {k: v for k, v in session_values(after).items() if was[k] != v}
        if values.keys() - _BOOKKEEPING:
            values["updated_at"] = now
        if values:
            self.conn.execute(_UPDATE_SESSION, {"b_session_id": after.id, **values})
        for booking in change.inserted:
            self._insert(after.id, booking)
        for booking in change.updated:
            self._update(booking)
        self.owe(after.id, change.owed, now)

    def owe(self, session_id: str, owed: Iterable[Owed], now: datetime) -> None:
        for o in owed:
            owe(
                self.conn,
                o.kind,
                now,
                session_id=session_id,
                member_id=o.member_id,
                booking_id=o.booking_id,
                other_member_id=o.other_member_id,
            )

    def _insert(self, session_id: str, booking: Booking) -> None:
        try:
            # A savepoint keeps the transaction usable if the unique key fires (PostgreSQL).
            with self.conn.begin_nested():
                self.conn.execute(
                    bookings.insert(), {"session_id": session_id, **booking_values(booking)}
                )
        except IntegrityError:
            # Only reachable if the session lock was bypassed; never a 500, never two rows.
            raise already_booked(None) from None

    def _update(self, booking: Booking) -> None:
        values = booking_values(booking)
        del values["id"], values["created_at"]
        # The row must be as it was loaded: the revision rises with every change.
        done = self.conn.execute(
            _UPDATE_BOOKING,
            {"b_booking_id": booking.id, "b_revision": booking.revision - 1, **values},
        )
        if done.rowcount != 1:
            raise Conflict("this booking changed meanwhile; try again", code="booking_changed")


def session_from_row(
    row: Row[Any], active: tuple[Booking, ...] = (), known: Known = Known.NONE
) -> Session:
    """The aggregate from a ``sessions`` row and the active bookings ``known`` says.

    Where the bookings were loaded, they are the truth and the counts follow from them: the
    row's counts are a cache (and the retention purge deletes an old session's bookings but
    keeps its counts as history).
    """
    confirmed, waiting = row.confirmed_count, row.waitlist_count
    if known != Known.NONE:
        waiting = sum(1 for b in active if b.status == BookingStatus.WAITLISTED)
    if known == Known.ALL:
        confirmed = len(active) - waiting
    return Session(
        id=row.id,
        group_id=row.group_id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=SessionStatus(row.status),
        capacity=row.capacity,
        lead=row.lead_member_id,
        co=row.co_member_id,
        sequence=row.sequence,
        next_waitlist_seq=row.next_waitlist_seq,
        rescheduled=row.rescheduled,
        retired=row.retired,
        assigned_by=AssignedBy(row.facilitators_by) if row.facilitators_by else None,
        rotation_note=row.rotation_note,
        handoff=HandoffMarks(
            lead_notified_at=row.lead_notified_at,
            lead_confirmed_at=row.lead_confirmed_at,
            handed_over_at=row.handed_over_at,
            alerted_at=row.alerted_at,
        ),
        confirmed_count=confirmed,
        waitlist_count=waiting,
        bookings=active,
        known=known,
    )


def session_values(s: Session) -> dict[str, Any]:
    """The ``sessions`` columns the aggregate owns (the counts are written with them)."""
    return {
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
        "status": s.status.value,
        "capacity": s.capacity,
        "lead_member_id": s.lead,
        "co_member_id": s.co,
        "sequence": s.sequence,
        "next_waitlist_seq": s.next_waitlist_seq,
        "confirmed_count": s.confirmed_count,
        "waitlist_count": s.waitlist_count,
        "rescheduled": s.rescheduled,
        "retired": s.retired,
        "facilitators_by": s.assigned_by.value if s.assigned_by else None,
        "rotation_note": s.rotation_note,
        "lead_notified_at": s.handoff.lead_notified_at,
        "lead_confirmed_at": s.handoff.lead_confirmed_at,
        "handed_over_at": s.handoff.handed_over_at,
        "alerted_at": s.handoff.alerted_at,
    }


_BOOKING_COLUMNS = tuple(f.name for f in fields(Booking))


def booking_from_row(row: Row[Any]) -> Booking:
    found = row._mapping
    values = {name: found[name] for name in _BOOKING_COLUMNS}
    return Booking(**values | {"status": BookingStatus(found["status"])})


def booking_values(b: Booking) -> dict[str, Any]:
    return {name: getattr(b, name) for name in _BOOKING_COLUMNS} | {"status": b.status.value}
