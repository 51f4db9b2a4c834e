"""The scheduling core's side of the rooms: what ``signaling`` asks of it, answered here.

``signaling`` declares what it needs (:mod:`signaling.ports`) and imports nothing from
``dropin``; this module implements it over the database (:class:`DatabaseRoomAccess`), builds
the rooms' settings from the app's, and exchanges a join link for a room token (the HTTP route
``POST /j/{token}/room-token`` calls :func:`exchange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from dropin.config import Settings
from dropin.domain.states import SessionStatus
from dropin.errors import DropinError, NotFound
from dropin.services import links, rooms
from dropin.services.rooms import CLOSES_AFTER, OPENS_BEFORE
from dropin.services.sessions import get_session
from dropin.store.db import Database
from dropin.store.tables import sessions
from signaling.access import TOKEN_SECONDS, issue_token
from signaling.ice import IceConfig
from signaling.ports import Place, RoomFacts, RoomSettings


class TooEarly(DropinError):
    """The room is not open yet; ``detail`` says when it opens."""

    status = 425
    code = "too_early"


class DatabaseRoomAccess:
    """:class:`signaling.ports.RoomAccess` over the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def room_facts(self, session_id: str) -> RoomFacts | None:
        """The session's room window, status and room capacity (its places plus its
        facilitators), or None if there is no such session."""
        async with self._db.read() as conn:
            session = (
                await conn.execute(select(sessions).where(sessions.c.id == session_id))
            ).first()
        if session is None:
            return None
        facilitators = sum(1 for m in (session.lead_member_id, session.co_member_id) if m)
        return RoomFacts(
            session_id=session_id,
            opens_at=session.starts_at - OPENS_BEFORE,
            closes_at=session.ends_at + CLOSES_AFTER,
            cancelled=session.status == SessionStatus.CANCELLED,
            capacity=session.capacity + facilitators,
        )

    async def place(self, session_id: str, member_id: str) -> Place | None:
        try:
            found = await links.room_place(self._db, session_id, member_id)
        except NotFound:
            return None
        return Place(role=found.role, removed=found.removed)

    async def record_removal(self, session_id: str, member_id: str, now: datetime) -> None:
        await rooms.record_removal(self._db, session_id, member_id, now)


def room_settings(settings: Settings) -> RoomSettings:
    """The rooms' settings from the app's :class:`~dropin.config.Settings`."""
    return RoomSettings(
        reconnect_grace=float(settings.reconnect_grace),
        facilitator_timeout=float(settings.facilitator_timeout),
        ice=IceConfig(
            stun_urls=settings.stun_urls,
            turn_urls=settings.turn_urls,
            turn_secret=settings.turn_secret,
            turn_ttl=settings.turn_ttl,
        ),
    )


@dataclass(frozen=True)
class Exchanged:
    token: str
    expires_in: int
    role: str
    session_id: str


async def exchange(db: Database, secret: str, join_token: str, *, now: datetime) -> Exchanged:
    """Swap a join link for a room token, if the member may enter the room now.

    Errors: NotFound (not a join link), Gone (session over or cancelled, link expired),
    Forbidden (no place any more), :class:`TooEarly` (opens 15 minutes before the start).
    The token never outlives the room (the session's end plus a short grace).
    """
    admission = await links.admit(db, secret, join_token, now, grace=CLOSES_AFTER)
    view = await get_session(db, admission.session_id)
    opens = view.starts_at - OPENS_BEFORE
    if now < opens:
        raise TooEarly({"message": "the room is not open yet", "opens_at": opens.isoformat()})
    # (After the room closes, admit() has already refused.)
    # Never past the room's closing time, never more than 15 minutes.
    seconds = int(min(TOKEN_SECONDS, (view.ends_at + CLOSES_AFTER - now).total_seconds()))
    token = issue_token(
        secret,
        member_id=admission.member_id,
        session_id=admission.session_id,
        role=admission.role,
        now=now,
        seconds=max(1, seconds),
    )
    return Exchanged(token, max(1, seconds), admission.role, admission.session_id)
