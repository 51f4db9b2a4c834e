"""Messages owed by the calendar rather than by a change: invitations and reminders.

Each is owed once (a unique ``dedup_key`` per kind, session, member and occasion), however
often its producer runs and however many workers run it at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dropin.domain.owed import REMINDERS
from dropin.domain.states import BookingStatus, MemberRole, MessageKind, SessionStatus
from dropin.errors import Conflict, NotFound
from dropin.store.db import Database, count_outbox_rows
from dropin.store.tables import bookings, members, outbox, sessions
from dropin.store.uow import outbox_insert


async def invite_group(db: Database, session_id: str, *, now: datetime) -> int:
    """Owe an invitation to every parent of the session's group without a place in it.

    Each member is invited to a session once, however often this is called.
    """
    async with db.read() as conn:
        session = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
        if session is None:
            raise NotFound("no such session", code="session_not_found")
        if session.status != SessionStatus.SCHEDULED or now >= session.starts_at:
            raise Conflict(
                "only upcoming scheduled sessions can be announced", code="session_not_open"
            )
        booked = select(bookings.c.member_id).where(
            bookings.c.session_id == session_id, bookings.c.status != BookingStatus.CANCELLED
        )
        parents = (
            (
                await conn.execute(
                    select(members.c.id).where(
                        members.c.group_id == session.group_id,
                        members.c.role == MemberRole.PARENT,
                        members.c.id.not_in(booked),
                    )
                )
            )
            .scalars()
            .all()
        )
    created = 0
    for member_id in parents:
        if await _owe_once(db, MessageKind.SESSION_INVITATION, session_id, member_id, None, now):
            created += 1
    return created


async def _owe_once(
    db: Database,
    kind: MessageKind,
    session_id: str,
    member_id: str,
    booking_id: str | None,
    now: datetime,
    occasion: str = "",
) -> bool:
    """Write an outbox row keyed by (kind, session, member[, occasion]) unless one exists."""
    key = f"{kind}:{session_id}:{member_id}" + (f":{occasion}" if occasion else "")
    try:
        async with db.write() as conn:
            exists = (
                await conn.execute(select(outbox.c.id).where(outbox.c.dedup_key == key))
            ).first()
            if exists is not None:
                return False
            await conn.execute(
                outbox_insert(
                    kind, now, session_id=session_id, member_id=member_id, booking_id=booking_id
                ).values(dedup_key=key)
            )
            count_outbox_rows(conn, 1)
    except IntegrityError:
        return False  # another worker wrote it first
    return True


async def queue_reminders(db: Database, *, now: datetime) -> int:
    """Owe a reminder to everyone in sessions starting soon.

    Each is owed once per start time: a session moved after its reminder went out is
    reminded of again for its new time.
    """
    created = 0
    for kind, before, too_late in REMINDERS:
        async with db.read() as conn:
            due = (
                await conn.execute(
                    select(
                        sessions.c.id,
                        sessions.c.starts_at,
                        sessions.c.lead_member_id,
                        sessions.c.co_member_id,
                    ).where(
                        sessions.c.status == SessionStatus.SCHEDULED,
                        sessions.c.starts_at <= now + before,
                        sessions.c.starts_at > now + too_late,
                    )
                )
            ).all()
            people: list[tuple[str, str, str | None, str]] = []
            for s in due:
                booked = (
                    await conn.execute(
                        select(bookings.c.member_id, bookings.c.id).where(
                            bookings.c.session_id == s.id,
                            bookings.c.status == BookingStatus.CONFIRMED,
                        )
                    )
                ).all()
                at = s.starts_at.strftime("%Y%m%dT%H%M")
                people += [(s.id, b.member_id, b.id, at) for b in booked]
                people += [(s.id, m, None, at) for m in (s.lead_member_id, s.co_member_id) if m]
        for session_id, member_id, booking_id, at in people:
            if await _owe_once(db, kind, session_id, member_id, booking_id, now, occasion=at):
                created += 1
    return created
