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

from sqlalchemy import Insert, Row, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dropin.domain.session import (
    Booking,
    HandoffMarks,
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
from dropin.store.tables import bookings, outbox, sessions

# Columns whose change is bookkeeping, not a change to the session a calendar or feed shows:
# they leave ``updated_at`` (the feeds' Last-Modified) alone.
_BOOKKEEPING = frozenset(
    {
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
    conn.execute(outbox_insert(kind, now, **ids))
    count_outbox_rows(conn, 1)


class UnitOfWork:
    """Loads sessions with their active bookings and saves what the aggregate decided."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def session(self, session_id: str, *, lock: bool = True) -> Session:
        """The session and its active bookings; ``lock`` serializes deciders on its row.

        PostgreSQL: ``SELECT … FOR UPDATE``. SQLite ignores it; its write transactions are
        already serialized (:mod:`dropin.store.db`). The lock is taken in a statement of its
        own: a transaction that waited for it must read the bookings *after* getting it.
        """
        query = select(sessions).where(sessions.c.id == session_id)
        if lock:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            raise NotFound("no such session", code="session_not_found")
        active = self.conn.execute(
            select(bookings)
            .where(
                bookings.c.session_id == session_id,
                bookings.c.status != BookingStatus.CANCELLED.value,
            )
            .order_by(bookings.c.created_at, bookings.c.id)
        ).all()
        return session_from_row(row, tuple(booking_from_row(b) for b in active))

    def booking(self, booking_id: str) -> tuple[str, Booking]:
        """A booking (any status) and its session's id."""
        row = self.conn.execute(select(bookings).where(bookings.c.id == booking_id)).first()
        if row is None:
            raise NotFound("no such booking", code="booking_not_found")
        return row.session_id, booking_from_row(row)

    def booking_of(self, session_id: str, member_id: str) -> Booking | None:
        """The member's booking row for the session, whatever its status."""
        row = self.conn.execute(
            select(bookings).where(
                bookings.c.session_id == session_id, bookings.c.member_id == member_id
            )
        ).first()
        return None if row is None else booking_from_row(row)

    def save(self, change: SessionChange, now: datetime) -> None:
        """Write the change: session row, booking rows, then one outbox row per owed message."""
        before, after = change.before, change.after
        was = session_values(before)
        values = {k: v for k, v in session_values(after).items() if was[k] != v}
        if values.keys() - _BOOKKEEPING:
            values["updated_at"] = now
        if change.inserted or change.updated:
            values["confirmed_count"] = after.confirmed_count
            values["waitlist_count"] = after.waitlist_count
        if values:
            self.conn.execute(sessions.update().where(sessions.c.id == after.id).values(**values))
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
                    bookings.insert().values(session_id=session_id, **booking_values(booking))
                )
        except IntegrityError:
            # Only reachable if the session lock was bypassed; never a 500, never two rows.
            raise already_booked(None) from None

    def _update(self, booking: Booking) -> None:
        values = booking_values(booking)
        del values["id"], values["created_at"]
        done = self.conn.execute(
            bookings.update()
            # The row must be as it was loaded: the revision rises with every change.
            .where(bookings.c.id == booking.id, bookings.c.revision == booking.revision - 1)
            .values(**values)
        )
        if done.rowcount != 1:
            raise Conflict("this booking changed meanwhile; try again", code="booking_changed")


def session_from_row(row: Row[Any], active: tuple[Booking, ...] = ()) -> Session:
    """The aggregate from a ``sessions`` row and its active bookings."""
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
        bookings=active,
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
        "rescheduled": s.rescheduled,
        "retired": s.retired,
        "facilitators_by": s.assigned_by.value if s.assigned_by else None,
        "rotation_note": s.rotation_note,
        "lead_notified_at": s.handoff.lead_notified_at,
        "lead_confirmed_at": s.handoff.lead_confirmed_at,
        "handed_over_at": s.handoff.handed_over_at,
        "alerted_at": s.handoff.alerted_at,
    }


def booking_from_row(row: Row[Any]) -> Booking:
    found = {f.name: getattr(row, f.name) for f in fields(Booking)}
    return Booking(**{**found, "status": BookingStatus(row.status)})


def booking_values(b: Booking) -> dict[str, Any]:
    return {f.name: getattr(b, f.name) for f in fields(Booking)} | {"status": b.status.value}
