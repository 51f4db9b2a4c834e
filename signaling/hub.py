"""The room registry: which rooms run in this process, and who may get into them.

A connection's ``hello`` comes here. The hub reads the room token, opens the session's room on
first use (its window and capacity come from the scheduling core through
:class:`~signaling.ports.RoomAccess`), refuses members a facilitator removed (recorded by the
scheduling core, so it holds across restarts), and hands the connection to the
:class:`~signaling.live.LiveRoom`. The hub is created by the app's lifespan and closed with it.

Rooms live in this process's memory: run one server process for rooms
(``dropin serve --workers 1``) until a shared store exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from signaling.access import TOKEN_SECONDS, RoomClaims, RoomTokenError, issue_token
from signaling.access import read_token as read_room_token
from signaling.ice import ice_servers
from signaling.live import LiveRoom, Peer
from signaling.ports import Place, RoomAccess, RoomFacts, RoomSettings
from signaling.protocol import (
    CloseCode,
    EndReason,
    ErrorCode,
    ErrorMessage,
    Hello,
    Role,
    close_reason,
)
from signaling.relay import RelayConfig
from signaling.room import REOPENABLE, Room, RoomConfig

logger = logging.getLogger(__name__)


class EndedRooms:
    """The ids of rooms that ended for good, oldest first, bounded: enough to refuse a late
    reconnect to an ended room. An ended room never reopens in this process, which is what
    makes a removal stick for the session even before it is recorded."""

    def __init__(self, limit: int = 10_000) -> None:
        self._ids: dict[str, None] = {}
        self._limit = limit

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, room_id: str) -> None:
        self._ids[room_id] = None
        while len(self._ids) > self._limit:
            del self._ids[next(iter(self._ids))]


class _HelloRefused(Exception):
    """A ``hello`` the hub turns away; becomes an ``error`` and a close."""

    def __init__(self, code: ErrorCode, message: str, close: CloseCode) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


@dataclass(frozen=True)
class Joined:
    """A connection that is now in a room."""

    room: LiveRoom
    claims: RoomClaims


class RoomHub:
    """Every live room of this process."""

    def __init__(
        self,
        access: RoomAccess,
        secret: str,
        settings: RoomSettings,
        *,
        clock: Callable[[], datetime],
        relay_config: RelayConfig | None = None,
    ) -> None:
        self._access = access
        self._secret = secret
        self.settings = settings
        self._clock = clock
        self._relay_config = relay_config
        self._live: dict[str, LiveRoom] = {}
        self._ended_rooms = EndedRooms()
        # Rooms that ended and are still letting go of their media.
        self._ending: set[LiveRoom] = set()
        self._opening = asyncio.Lock()
        self._closed = False

    async def hello(self, peer: Peer, hello: Hello) -> Joined | None:
        """Let ``peer`` into the room its token names, or refuse it (error, then close)."""
        now = self._clock()
        try:
            if self._closed:
                raise _HelloRefused(
                    ErrorCode.NO_SUCH_ROOM, "the server is stopping", CloseCode.NO_SUCH_ROOM
                )
            try:
                claims = read_room_token(self._secret, hello.token, now)
            except RoomTokenError:
                raise _HelloRefused(
                    ErrorCode.INVALID_TOKEN,
                    "room token missing, invalid or expired",
                    CloseCode.INVALID_TOKEN,
                ) from None
            live = await self._open(claims.session_id, now)
            place = await self._place(claims)
            if place is not None and place.removed:
                raise _HelloRefused(
                    ErrorCode.REMOVED, "removed from this session", CloseCode.REMOVED
                )
            if place is None or place.role != claims.role:
                # The place (or the role) changed since the token was made: the join link,
                # exchanged again, says what is true now (403 not_booked, or the new role).
                raise _HelloRefused(
                    ErrorCode.INVALID_TOKEN,
                    "this token no longer matches your place in the session",
                    CloseCode.INVALID_TOKEN,
                )
        except _HelloRefused as refusal:
            peer.send(ErrorMessage(refusal.code, refusal.message, "hello"))
            peer.close(refusal.close, close_reason(refusal.close))
            return None
        if live.ended:  # ended while we were reading the database
            peer.send(ErrorMessage(ErrorCode.ROOM_ENDED, "the room has ended", "hello"))
            peer.close(CloseCode.ROOM_ENDED, close_reason(CloseCode.ROOM_ENDED))
            return None
        servers = ice_servers(self.settings.ice, claims.member_id, now)
        if not live.join(peer, claims.member_id, Role(claims.role), hello.display_name, servers):
            return None
        logger.info(
            "room %s: connection %s joined (token %s, %s)",
            claims.session_id,
            peer.id,
            claims.jti,
            claims.role,
        )
        return Joined(live, claims)

    async def refresh_token(
        self, claims: RoomClaims, closes_at: datetime
    ) -> tuple[str, int] | None:
        """A fresh room token for the same member, room and role, or None once the room has
        closed or the member no longer has that place (checked in the database)."""
        now = self._clock()
        seconds = int(min(TOKEN_SECONDS, (closes_at - now).total_seconds()))
        if seconds < 1:
            return None
        place = await self._place(claims)
        if place is None or place.removed or place.role != claims.role:
            return None
        token = issue_token(
            self._secret,
            member_id=claims.member_id,
            session_id=claims.session_id,
            role=claims.role,
            now=now,
            seconds=seconds,
        )
        return token, seconds

    async def _place(self, claims: RoomClaims) -> Place | None:
        """The member's place now (role, removal), or None if the session is gone."""
        return await self._access.place(claims.session_id, claims.member_id)

    def now(self) -> datetime:
        """The hub's wall clock (the app's, so tests can move it)."""
        return self._clock()

    def leave(self, session_id: str, member_id: str) -> bool:
        """``member_id`` leaves ``session_id``'s room by their link (their page's "Leave" while
        its WebSocket was down); True if they were in it, in any state."""
        live = self._live.get(session_id)
        return live is not None and live.leave_member(member_id)

    async def refresh(self, now: datetime, session_id: str | None = None) -> None:
        """Re-read live rooms' sessions (``session_id``'s only, if given; else every one)
        after the organizer changed sessions: a room
        whose session was cancelled, or moved to a time that is not open, ends for everyone
        (``room_ended`` ``cancelled`` / ``rescheduled``); otherwise its closing time follows
        the session's new end. Called after the change is committed."""
        # Under the opening lock: a room being opened from the old facts is in _live after.
        async with self._opening:
            for room_id, live in list(self._live.items()):
                if session_id is not None and room_id != session_id:
                    continue
                try:
                    facts = await self._access.room_facts(room_id)
                except Exception:
                    # The change is committed; the room keeps its old times until the next.
                    logger.exception("room %s: could not re-read its session", room_id)
                    continue
                outlook = room_outlook(facts, now)
                if isinstance(outlook, EndReason):
                    logger.info("room %s ended: session %s", room_id, outlook)
                    live.end(outlook)
                elif outlook != live.closes_at:
                    live.closes_at = outlook
                    live.schedule_end((outlook - now).total_seconds())

    def get(self, room_id: str) -> LiveRoom | None:
        """The live room for a session, if one runs in this process."""
        return self._live.get(room_id)

    def stats(self) -> dict[str, int]:
        """Totals over every live room (for the health check and leak tests)."""
        totals = {"rooms": len(self._live)}
        for live in self._live.values():
            for key, value in live.stats().items():
                totals[key] = totals.get(key, 0) + value
        return totals

    async def close(self) -> None:
        """Close every room's connections (1001) and media; used at server shutdown."""
        self._closed = True
        rooms_now = [*self._live.values(), *self._ending]
        self._live.clear()
        self._ending.clear()
        await asyncio.gather(*(live.close() for live in rooms_now), return_exceptions=True)

    async def _open(self, session_id: str, now: datetime) -> LiveRoom:
        live = self._live.get(session_id)
        if live is not None and not live.ended:
            return live
        async with self._opening:
            live = self._live.get(session_id)
            if live is not None and not live.ended:
                return live
            facts = await self._access.room_facts(session_id)
            if facts is None:
                raise _HelloRefused(ErrorCode.NO_SUCH_ROOM, "no such room", CloseCode.NO_SUCH_ROOM)
            if facts.cancelled or now < facts.opens_at:
                raise _HelloRefused(
                    ErrorCode.NO_SUCH_ROOM, "the room is not open", CloseCode.NO_SUCH_ROOM
                )
            if now >= facts.closes_at or session_id in self._ended_rooms:
                # An ended room never reopens: that is what makes removal stick for the session.
                raise _HelloRefused(
                    ErrorCode.ROOM_ENDED, "the room has ended", CloseCode.ROOM_ENDED
                )
            room = Room(
                RoomConfig(
                    room_id=session_id,
                    capacity=facts.capacity,
                    reconnect_grace=self.settings.reconnect_grace,
                    facilitator_timeout=self.settings.facilitator_timeout,
                )
            )

            async def record_removal(member_id: str) -> None:
                await self._access.record_removal(session_id, member_id, self._clock())

            closes_at = facts.closes_at
            live = LiveRoom(
                room,
                closes_at=closes_at,
                settings=self.settings,
                on_removal=record_removal,
                on_ended=self._ended,
                relay_config=self._relay_config,
            )
            live.schedule_end((closes_at - now).total_seconds())
            self._live[session_id] = live
            logger.info("room %s opened (capacity %d)", session_id, facts.capacity)
            return live

    def _ended(self, live: LiveRoom) -> None:
        if live.room.ended not in REOPENABLE:
            self._ended_rooms.add(live.room_id)
        if self._live.get(live.room_id) is live:
            del self._live[live.room_id]
        self._ending.add(live)
        live.when_closed(lambda: self._ending.discard(live))


def room_outlook(facts: RoomFacts | None, now: datetime) -> EndReason | datetime:
    """What a live room should do now its session may have changed: end (and why), or go on
    until the returned closing time. Pure: ``now`` in."""
    if facts is None or facts.cancelled:
        return EndReason.CANCELLED
    if now < facts.opens_at:
        return EndReason.RESCHEDULED
    return EndReason.TIME_UP if now >= facts.closes_at else facts.closes_at
