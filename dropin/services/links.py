"""Personal join links: who may enter a session's room, proven by a signed token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin import link_paths
from dropin.domain import tokens
from dropin.errors import Conflict, Forbidden, Gone, NotFound
from dropin.services.common import member_row, session_row
from dropin.services.rooms import removed_in
from dropin.services.views import JoinLink
from dropin.store.db import Database
from dropin.store.tables import bookings

JOIN = "join"
# The token outlives the session on purpose: a session may be moved later after the link was
# mailed. Whether it still lets anyone in is decided from the database when it is used
# (:func:`admit`): the session not ended, not cancelled, the member still booked or leading.
TOKEN_LIFETIME = timedelta(days=400)


@dataclass(frozen=True)
class JoinClaim:
    """What a verified join token says: this member, this session. (Whether they may come in
    now is decided from the database by :func:`admit`.)"""

    session_id: str
    member_id: str


async def member_role(db: Database, session_id: str, member_id: str) -> str | None:
    """``facilitator`` (lead or co), ``parent`` (confirmed booking) or None (not allowed)."""
    async with db.read() as conn:
        return await _role(conn, await session_row(conn, session_id), member_id)


async def _role(conn: AsyncConnection, session: Row[Any], member_id: str) -> str | None:
    if member_id in (session.lead_member_id, session.co_member_id):
        return "facilitator"
    booked = (
        await conn.execute(
            select(bookings.c.id).where(
                bookings.c.session_id == session.id,
                bookings.c.member_id == member_id,
                bookings.c.status == "confirmed",
            )
        )
    ).first()
    return "parent" if booked is not None else None


@dataclass(frozen=True)
class RoomPlace:
    """A member's place in a session's room, as the database says now."""

    # facilitator, parent, or None: no place (not booked, or the session is cancelled).
    role: str | None
    removed: bool


async def room_place(db: Database, session_id: str, member_id: str) -> RoomPlace:
    """Role and removal in one read, for every hello and token refresh (NotFound: no session)."""
    async with db.read() as conn:
        session = await session_row(conn, session_id)
        role = None if session.status == "cancelled" else await _role(conn, session, member_id)
        removed = await removed_in(conn, session_id, member_id)
    return RoomPlace(role, removed)


async def issue_join_link(
    db: Database,
    *,
    secret: str,
    public_url: str,
    session_id: str,
    member_id: str,
    now: datetime,
) -> JoinLink:
    """A member's personal join link, valid until the session ends.

    Refused (Forbidden) for members who are neither booked (confirmed) nor facilitating.
    """
    async with db.read() as conn:
        session = await session_row(conn, session_id)
        member = await member_row(conn, member_id)
    if member.group_id != session.group_id:
        raise NotFound("no such member in this session's group", code="member_not_found")
    if session.status == "cancelled":
        raise Conflict("this session has been cancelled", code="session_cancelled")
    if now >= session.ends_at:
        raise Conflict("this session is over", code="session_over")
    role = await member_role(db, session_id, member_id)
    if role is None:
        raise Forbidden(
            "this member is neither booked on nor facilitating this session", code="not_booked"
        )
    return JoinLink(
        url=join_url(secret, public_url, session_id, member_id, session.ends_at),
        expires_at=session.ends_at,
        role=role,
    )


def join_url(
    secret: str, public_url: str, session_id: str, member_id: str, ends_at: datetime
) -> str:
    """The member's personal join URL for a session (see :data:`TOKEN_LIFETIME`)."""
    token = tokens.sign(secret, JOIN, {"s": session_id, "m": member_id}, ends_at + TOKEN_LIFETIME)
    return link_paths.JOIN.url(public_url, token=token)


@dataclass(frozen=True)
class Admission:
    """A join link checked against the database: who, where, in which role."""

    session_id: str
    member_id: str
    role: str


async def admit(
    db: Database, secret: str, token: str, now: datetime, *, grace: timedelta = timedelta(0)
) -> Admission:
    """Check a join link now: Gone if the session ended (more than ``grace`` ago) or was
    cancelled, Forbidden if the member no longer has a place or was removed from the room,
    NotFound if the link is not genuine."""
    claim = read_join_token(secret, token, now)
    async with db.read() as conn:
        session = await session_row(conn, claim.session_id)
    if session.status == "cancelled":
        raise Gone("this drop-in has been cancelled", code="session_cancelled")
    if now >= session.ends_at + grace:
        raise Gone("this drop-in has ended", code="session_over")
    place = await room_place(db, claim.session_id, claim.member_id)
    if place.role is None:
        raise Forbidden("you no longer have a place in this drop-in", code="not_booked")
    if place.removed:
        raise Forbidden("a facilitator removed you from this drop-in", code="removed")
    return Admission(claim.session_id, claim.member_id, place.role)


def link_subject(secret: str, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """The subject of a signed link token: NotFound if tampered or for another purpose,
    Gone if expired. The one place link-token errors become what people see."""
    try:
        return tokens.verify(secret, purpose, token, now).subject
    except tokens.TokenError as exc:
        if exc.code == "expired_token":
            raise Gone("this link has expired", code="link_expired") from None
        raise NotFound("this link is not valid", code="link_invalid") from None


def read_join_token(secret: str, token: str, now: datetime) -> JoinClaim:
    """The claim in a join token, or NotFound (tampered) / Gone (expired)."""
    subject = link_subject(secret, JOIN, token, now)
    session_id, member_id = subject.get("s"), subject.get("m")
    if not isinstance(session_id, str) or not isinstance(member_id, str):
        raise NotFound("this link is not valid", code="link_invalid")
    return JoinClaim(session_id, member_id)
