"""The room registry: which rooms run in this process, and who may get into them.

A connection's ``hello`` comes here. The hub reads the room token, opens the session's room on
first use (its capacity and closing time come from the scheduling core), refuses members a
facilitator removed (recorded in the database, so it holds across restarts), and hands the
connection to the :class:`~signaling.live.LiveRoom`. The hub is created by the app's lifespan
and closed with it.

Rooms live in this process's memory (``InMemoryRoomStore``): run one server process for rooms
(``dropin serve --workers 1``) until a shared store exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dropin.config import Settings
from dropin.errors import NotFound
from dropin.services import links, rooms
from dropin.services.rooms import CLOSES_AFTER, OPENS_BEFORE
from dropin.store.db import Database
from signaling.access import RoomClaims, RoomTokenError, issue_token
from signaling.access import read_token as read_room_token
from signaling.ice import IceConfig, ice_servers
from signaling.live import LiveRoom, Peer, RoomSettings
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
from signaling.room import InMemoryRoomStore, RoomConfig, RoomStore

logger = logging.getLogger(__name__)


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


class _Refusal(Exception):
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
        db: Database,
        secret: str,
        settings: RoomSettings,
        *,
        clock: Callable[[], datetime],
        store: RoomStore | None = None,
        relay_config: RelayConfig | None = None,
        close_grace: float = CLOSES_AFTER.total_seconds(),
    ) -> None:
        self._db = db
        self._secret = secret
        self.settings = settings
        self._clock = clock
        self._store: RoomStore = store or InMemoryRoomStore()
        self._relay_config = relay_config
        self._close_grace = close_grace
        self._live: dict[str, LiveRoom] = {}
        # Rooms that ended and are still letting go of their media.
        self._ending: set[LiveRoom] = set()
        self._opening = asyncio.Lock()
        self._closed = False

    async def hello(self, peer: Peer, hello: Hello) -> Joined | None:
        """Let ``peer`` into the room its token names, or refuse it (error, then close)."""
        now = self._clock()
        try:
            if self._closed:
                raise _Refusal(
                    ErrorCode.NO_SUCH_ROOM, "the server is stopping", CloseCode.NO_SUCH_ROOM
                )
            try:
                claims = read_room_token(self._secret, hello.token, now)
            except RoomTokenError:
                raise _Refusal(
                    ErrorCode.INVALID_TOKEN,
                    "room token missing, invalid or expired",
                    CloseCode.INVALID_TOKEN,
                ) from None
            live = await self._open(claims.session_id, now)
            place = await self._place(claims)
            if place is not None and place.removed:
                raise _Refusal(ErrorCode.REMOVED, "removed from this session", CloseCode.REMOVED)
            if place is None or place.role != claims.role:
                # The place (or the role) changed since the token was made: the join link,
                # exchanged again, says what is true now (403 not_booked, or the new role).
                raise _Refusal(
                    ErrorCode.INVALID_TOKEN,
                    "this token no longer matches your place in the session",
                    CloseCode.INVALID_TOKEN,
                )
        except _Refusal as refusal:
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
        seconds = int(min(900, (closes_at - now).total_seconds()))
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

    async def _place(self, claims: RoomClaims) -> links.RoomPlace | None:
        """The member's place now (role, removal), or None if the session is gone."""
        try:
            return await links.room_place(self._db, claims.session_id, claims.member_id)
        except NotFound:
            return None

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
                    facts: rooms.RoomFacts | None = await rooms.room_facts(self._db, room_id)
                except NotFound:
                    facts = None
                except Exception:
                    # The change is committed; the room keeps its old times until the next.
                    logger.exception("room %s: could not re-read its session", room_id)
                    continue
                outlook = room_outlook(facts, now, _seconds(self._close_grace))
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
            try:
                facts = await rooms.room_facts(self._db, session_id)
            except NotFound:
                raise _Refusal(
                    ErrorCode.NO_SUCH_ROOM, "no such room", CloseCode.NO_SUCH_ROOM
                ) from None
            closes_at = facts.ends_at + _seconds(self._close_grace)
            if facts.status == "cancelled" or now < facts.starts_at - OPENS_BEFORE:
                raise _Refusal(
                    ErrorCode.NO_SUCH_ROOM, "the room is not open", CloseCode.NO_SUCH_ROOM
                )
            if now >= closes_at:
                raise _Refusal(ErrorCode.ROOM_ENDED, "the room has ended", CloseCode.ROOM_ENDED)
            room = await self._store.open(
                RoomConfig(
                    room_id=session_id,
                    capacity=facts.capacity,
                    reconnect_grace=self.settings.reconnect_grace,
                    facilitator_timeout=self.settings.facilitator_timeout,
                )
            )
            if room is None:
                raise _Refusal(ErrorCode.ROOM_ENDED, "the room has ended", CloseCode.ROOM_ENDED)

            async def record_removal(member_id: str) -> None:
                await rooms.record_removal(self._db, session_id, member_id, self._clock())

            live = LiveRoom(
                room,
                closes_at=closes_at,
                settings=self.settings,
                store=self._store,
                on_removal=record_removal,
                on_ended=self._ended,
                relay_config=self._relay_config,
            )
            live.schedule_end((closes_at - now).total_seconds())
            self._live[session_id] = live
            logger.info("room %s opened (capacity %d)", session_id, facts.capacity)
            return live

    def _ended(self, live: LiveRoom) -> None:
        if self._live.get(live.room_id) is live:
            del self._live[live.room_id]
        self._ending.add(live)
        live.when_closed(lambda: self._ending.discard(live))


def room_outlook(
    facts: rooms.RoomFacts | None, now: datetime, close_grace: timedelta
) -> EndReason | datetime:
    """What a live room should do now its session may have changed: end (and why), or go on
    until the returned closing time. Pure: ``now`` in."""
    if facts is None or facts.status == "cancelled":
        return EndReason.CANCELLED
    if now < facts.starts_at - OPENS_BEFORE:
        return EndReason.RESCHEDULED
    closes_at = facts.ends_at + close_grace
    return EndReason.TIME_UP if now >= closes_at else closes_at


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
