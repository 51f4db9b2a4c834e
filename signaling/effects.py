"""What a room asks its caller to do: the effects :class:`~signaling.room.Room` returns.

A room never sends, closes or touches media itself; each call returns a list of these, in the
order to carry them out (``signaling/live.py`` does). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from signaling.protocol import (
    CloseCode,
    EndReason,
    ErrorCode,
    ErrorMessage,
    ServerMessage,
    close_reason,
)

# Opaque to the room: the WebSocket layer names each connection, the scheduling core names each
# member. Neither ever reaches a client; clients only see participant ids.
ConnId: TypeAlias = str
MemberId: TypeAlias = str


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` on connection ``conn``."""

    conn: ConnId
    message: ServerMessage


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn`` with ``code`` and ``reason`` (after sending what came before)."""

    conn: ConnId
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class StartMedia:
    """``participant_id`` is in the room on ``conn``: negotiate (the server offers) and forward.

    Forward the others' media to them and theirs to the others. ``audio``/``video`` are this
    participant's gate (see ``SetGate``); ``receiving`` is False when they join a paused room
    (see ``PauseMedia``).
    """

    participant_id: str
    conn: ConnId
    audio: bool
    video: bool
    receiving: bool = True


@dataclass(frozen=True, slots=True)
class StopMedia:
    """Tear down ``participant_id``'s media: nothing to or from them any more."""

    participant_id: str


@dataclass(frozen=True, slots=True)
class SetGate:
    """Forward ``participant_id``'s audio / video to others only while these are true.

    The page stops sending when muted too, but the server does not trust it to.
    """

    participant_id: str
    audio: bool
    video: bool


@dataclass(frozen=True, slots=True)
class PauseMedia:
    """No facilitator is connected: forward nothing to ``participant_id`` until resumed."""

    participant_id: str


@dataclass(frozen=True, slots=True)
class ResumeMedia:
    """A facilitator is back: forward the others' media to ``participant_id`` again."""

    participant_id: str


@dataclass(frozen=True, slots=True)
class Removal:
    """Record that ``member_id`` was removed, so it sticks beyond this room's memory."""

    member_id: MemberId


@dataclass(frozen=True, slots=True)
class Ended:
    """The room is over (always the last effect): drop it and everything it held."""

    reason: EndReason


Effect: TypeAlias = (
    Send | Close | StartMedia | StopMedia | SetGate | PauseMedia | ResumeMedia | Removal | Ended
)


class CommandRefused(Exception):
    """A command the room will not carry out; becomes an ``error`` (and maybe a close)."""

    def __init__(self, code: ErrorCode, message: str, close: CloseCode | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


def refusal(conn: ConnId, refused: CommandRefused, in_reply_to: str) -> list[Effect]:
    """The effects of refusing a command from ``conn``: an ``error``, and a close if it says so."""
    effects: list[Effect] = [Send(conn, ErrorMessage(refused.code, refused.message, in_reply_to))]
    if refused.close is not None:
        effects.append(Close(conn, refused.close, close_reason(refused.close)))
    return effects
