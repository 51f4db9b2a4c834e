"""What the rooms need from outside, declared here so that ``signaling`` imports nothing else.

The scheduling core (``dropin``) implements :class:`RoomAccess` over its database and builds
:class:`RoomSettings` from its own settings; the composition root (``dropin/web/app.py``) hands
both to the :class:`~signaling.hub.RoomHub`. Everything here is plain data or a
``typing.Protocol``: no I/O, nothing to import from the other side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from signaling.ice import IceConfig
from signaling.room import DEFAULT_FACILITATOR_TIMEOUT, DEFAULT_RECONNECT_GRACE


@dataclass(frozen=True)
class RoomFacts:
    """A session as its room needs it: when the room may run, whether it is off, its size."""

    session_id: str
    # The room opens this long before the session starts and closes this long after it ends
    # (the scheduling core decides both).
    opens_at: datetime
    closes_at: datetime
    cancelled: bool
    # The session's places plus its facilitators.
    capacity: int


@dataclass(frozen=True)
class Place:
    """A member's place in a session's room, as the scheduling core says now."""

    # "facilitator", "parent", or None: no place (not booked, or the session is cancelled).
    role: str | None
    # A facilitator removed them from this session's room (it sticks for the session).
    removed: bool


class RoomAccess(Protocol):
    """The scheduling core as the rooms see it. ``None`` means "no such session"."""

    async def room_facts(self, session_id: str) -> RoomFacts | None:
        """The session's room window, status and capacity."""

    async def place(self, session_id: str, member_id: str) -> Place | None:
        """``member_id``'s role and removal in ``session_id`` (read on every hello and refresh)."""

    async def record_removal(self, session_id: str, member_id: str, now: datetime) -> None:
        """Keep ``member_id`` out of ``session_id``'s room for good (idempotent)."""


@dataclass(frozen=True)
class RoomSettings:
    """How live rooms behave; the app builds them from its own settings."""

    reconnect_grace: float = DEFAULT_RECONNECT_GRACE
    facilitator_timeout: float = DEFAULT_FACILITATOR_TIMEOUT
    #: Seconds a client has to answer an offer before its connection is closed (4408).
    answer_timeout: float = 10.0
    #: Seconds a new connection has to send ``hello`` (4408).
    hello_timeout: float = 10.0
    #: A failed media connection is restarted at most this often per minute, then closed.
    max_media_restarts: int = 3
    ice: IceConfig = field(default_factory=IceConfig)
