"""A family's right to be forgotten: erasing a member, or a whole group.

Their places in sessions still ahead are cancelled as if they had cancelled them (the waitlist
is promoted and the people promoted are told), sessions they were to facilitate are handed to
the rotation, and then the member's row goes, with everything that named them: bookings,
unavailable days, room removals and the mail still owed to them. What remains (seat counts,
sent-mail records) holds ids only, and nothing of them is left readable in the database file.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, exists, or_, select
from sqlalchemy.engine import Connection

from dropin.domain.session import Known
from dropin.domain.states import BookingStatus, SessionStatus
from dropin.errors import Conflict, NotFound
from dropin.services import handoff
from dropin.services.common import group_row, member_row
from dropin.store.db import Database
from dropin.store.tables import bookings, groups, members, outbox, sessions
from dropin.store.uow import UnitOfWork

log = logging.getLogger("dropin.erasure")


# How many times to go round if a booking or an assignment lands while a member is erased.
ATTEMPTS = 5


async def erase_member(db: Database, member_id: str, *, now: datetime) -> None:
    """Erase ``member_id``; NotFound if there is no such member (or it was erased already)."""
    for _ in range(ATTEMPTS):
        booked, leading = await _ties(db, member_id, now)
        for booking_id in booked:
            await db.run_write(_give_up_place, booking_id, member_id, now)
        for session_id in leading:
            await handoff.change_facilitators(
                db, session_id, now=now, leaving=member_id, tell_leaving=False
            )
        if await db.run_write(_delete_if_untied, member_id, now):
            break
    else:
        raise Conflict("the member keeps being booked meanwhile; try again", code="member_busy")
    await db.forget_freed_pages()
    log.info("member %s erased", member_id)


async def _ties(db: Database, member_id: str, now: datetime) -> tuple[list[str], list[str]]:
    """The member's active bookings in sessions not over, and the sessions ahead they lead."""
    async with db.read() as conn:
        await member_row(conn, member_id)
        booked = await conn.execute(_active_bookings(member_id, now))
        leading = await conn.execute(_facilitating(member_id, now))
        return [r.id for r in booked], [r.id for r in leading]


def _active_bookings(member_id: str, now: datetime) -> Select[tuple[str]]:
    return (
        select(bookings.c.id)
        .join(sessions, sessions.c.id == bookings.c.session_id)
        .where(
            bookings.c.member_id == member_id,
            bookings.c.status != BookingStatus.CANCELLED.value,
            sessions.c.ends_at > now,
        )
    )


def _facilitating(member_id: str, now: datetime) -> Select[tuple[str]]:
    return select(sessions.c.id).where(
        or_(sessions.c.lead_member_id == member_id, sessions.c.co_member_id == member_id),
        sessions.c.status == SessionStatus.SCHEDULED.value,
        sessions.c.starts_at > now,
    )


def _delete_if_untied(conn: Connection, member_id: str, now: datetime) -> bool:
    """Delete the member unless a booking or an assignment landed meanwhile (then False).

    The member's row is locked first (PostgreSQL): a booking holds it shared while it decides
    (:meth:`dropin.store.uow.UnitOfWork.member_and_booking`), so none is half-way through.
    """
    found = conn.execute(
        select(members.c.id).where(members.c.id == member_id).with_for_update()
    ).first()
    if found is None:
        return True  # erased meanwhile
    if conn.execute(_active_bookings(member_id, now).limit(1)).first() is not None:
        return False
    if conn.execute(_facilitating(member_id, now).limit(1)).first() is not None:
        return False
    conn.execute(delete(outbox).where(outbox.c.member_id == member_id))
    # Bookings, unavailable days and room removals go with the row (ON DELETE CASCADE).
    conn.execute(delete(members).where(members.c.id == member_id))
    return True


async def erase_group(db: Database, group_id: str) -> None:
    """Delete a group and erase its members: its series, sessions, bookings, the mail owed for
    them and every member's name, email and links. Nobody is mailed (there is nobody left to
    write to). NotFound ``group_not_found`` if there is no such group."""
    async with db.write() as conn:
        await group_row(conn, group_id)
        their_sessions = select(sessions.c.id).where(sessions.c.group_id == group_id)
        their_members = select(members.c.id).where(members.c.group_id == group_id)
        await conn.execute(
            delete(outbox).where(
                or_(outbox.c.session_id.in_(their_sessions), outbox.c.member_id.in_(their_members))
            )
        )
        # Members, series, sessions, bookings, organizers... go with it (ON DELETE CASCADE).
        await conn.execute(delete(groups).where(groups.c.id == group_id))
    await db.forget_freed_pages()
    log.info("group %s deleted", group_id)


async def erase_inactive(db: Database, *, now: datetime, retention_days: int) -> int:
    """Erase members with no booking and nothing to facilitate for ``retention_days``.

    Runs after the purge of old bookings (:func:`dropin.services.outbox.retention.purge`): a
    member whose last booking was purged, who joined and was last changed before the cutoff,
    and who leads or co-facilitates no session since, is erased. Returns how many.
    """
    cutoff = now - timedelta(days=retention_days)
    recent = select(sessions.c.id).where(sessions.c.ends_at >= cutoff)
    async with db.read() as conn:
        idle = (
            await conn.execute(
                select(members.c.id).where(
                    members.c.created_at < cutoff,
                    members.c.updated_at < cutoff,
                    ~exists().where(bookings.c.member_id == members.c.id),
                    ~exists().where(
                        sessions.c.id.in_(recent),
                        or_(
                            sessions.c.lead_member_id == members.c.id,
                            sessions.c.co_member_id == members.c.id,
                        ),
                    ),
                )
            )
        ).all()
    for (member_id,) in idle:
        try:
            await erase_member(db, member_id, now=now)
        except NotFound:
            continue  # erased meanwhile
    return len(idle)


def _give_up_place(conn: Connection, booking_id: str, member_id: str, now: datetime) -> None:
    uow = UnitOfWork(conn)
    session_id, _ = uow.booking(booking_id)
    session = uow.session(session_id, known=Known.WAITLIST)
    _, booking = uow.booking(booking_id)
    if booking.status == BookingStatus.CANCELLED or session.is_over(now):
        return
    change = session.cancel_booking(booking, now)
    # Others are told of their promotion; the member being erased is told nothing more.
    uow.save(replace(change, owed=tuple(o for o in change.owed if o.member_id != member_id)), now)
