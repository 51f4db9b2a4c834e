"""The room state machine: who is at the door, who waits, who is in, and what each may do.

A ``Room`` takes commands (a client message from a connection) and events (a connection
dropped, time passed) and returns a list of effects for the caller to carry out in order:
messages to send, connections to close, media to start, stop, gate or pause. It never does any
of that itself: no I/O, no asyncio, no clock (every call takes ``now``, monotonic seconds), so the
rules below are tested without a socket or a peer connection. Calls never await, so on one
event loop each call is atomic and the caller needs no lock around it.

The rules, all enforced here rather than by the page:

- Consent at the door: everyone accepts the group agreement before knocking.
- Waiting room: a parent's knock puts them in the waiting room until a facilitator admits them,
  even when no facilitator has arrived yet. A facilitator's knock admits them at once.
- Only an admitted facilitator may use facilitator commands, and only on parents.
- Removal sticks: a removed member is refused on every later ``join`` for the life of the room.
- Lock: no new arrivals. A parent who is not yet in the waiting room is refused (``room_locked``,
  close 4423) at ``join`` or ``knock``; parents already waiting stay and may still be admitted;
  reconnects within the grace window and facilitators are never locked out.
- Failsafe: when no admitted facilitator is connected any more, every participant is told, media
  is paused, and ``tick`` ends the room after ``facilitator_timeout`` unless a facilitator
  comes back.
- Reconnection: a dropped participant keeps their place (lobby, waiting or admitted) for
  ``reconnect_grace`` seconds; a second connection for a member replaces the first (closed with
  4409). One member is never two participants.
- Capacity: a new parent is refused (``room_full``, close 4424) when the room already holds
  ``capacity`` members in any state; facilitators are never refused for capacity, since a room
  without its facilitator is worse than a room one over.
- When the room ends everyone is closed and the room forgets everything it held.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, TypeAlias

from signaling.protocol import (
    AcceptAgreement,
    Admit,
    AdmitAll,
    Admitted,
    CameraOff,
    CameraOffByFacilitator,
    CameraSelf,
    CloseCode,
    Denied,
    Deny,
    End,
    EndReason,
    ErrorCode,
    ErrorMessage,
    FacilitatorBack,
    FacilitatorLost,
    IceServer,
    Knock,
    Knocking,
    Leave,
    LeaveReason,
    Lock,
    LowerHand,
    Mute,
    MuteAll,
    MutedByFacilitator,
    MuteSelf,
    ParticipantInfo,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantState,
    ParticipantUpdated,
    RaiseHand,
    Remove,
    Removed,
    Role,
    RoomCommand,
    RoomEnded,
    RoomLocked,
    RoomSnapshot,
    RoomUnlocked,
    SendToWaiting,
    SentToWaiting,
    ServerMessage,
    Unlock,
    UnmuteSelf,
    Waiting,
    WaitingEntry,
    WaitingList,
    Welcome,
    close_reason,
)

__all__ = [
    "DEFAULT_FACILITATOR_TIMEOUT",
    "DEFAULT_RECONNECT_GRACE",
    "REOPENABLE",
    "Close",
    "ConnId",
    "Effect",
    "Ended",
    "MemberId",
    "PauseMedia",
    "Removal",
    "ResumeMedia",
    "Room",
    "RoomConfig",
    "Send",
    "SetGate",
    "StartMedia",
    "StopMedia",
]

DEFAULT_RECONNECT_GRACE: Final = 30.0
DEFAULT_FACILITATOR_TIMEOUT: Final = 300.0

# Opaque to the room: the WebSocket layer names each connection, the scheduling core names each
# member. Neither ever reaches a client; clients only see participant ids.
ConnId: TypeAlias = str
MemberId: TypeAlias = str

# Rooms ended because the organizer cancelled or moved their session: reinstated, or at the
# new time, the session gets a fresh room. Every other end is for good.
REOPENABLE: frozenset[EndReason] = frozenset({EndReason.CANCELLED, EndReason.RESCHEDULED})


@dataclass(frozen=True, slots=True)
class RoomConfig:
    room_id: str
    # The session's places plus its facilitators.
    capacity: int
    reconnect_grace: float = DEFAULT_RECONNECT_GRACE
    facilitator_timeout: float = DEFAULT_FACILITATOR_TIMEOUT


# --- effects -----------------------------------------------------------------------------------


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


# --- state -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Participant:
    participant_id: str
    member_id: MemberId
    role: Role
    display_name: str
    # None while dropped and inside the grace window.
    conn: ConnId | None
    state: ParticipantState = ParticipantState.LOBBY
    agreement_accepted: bool = False
    audio_muted: bool = False
    # Cameras start off: the product's privacy default.
    camera_on: bool = False
    hand_raised: bool = False
    dropped_at: float | None = None

    @property
    def in_room(self) -> bool:
        return self.state is ParticipantState.ADMITTED

    def info(self) -> ParticipantInfo:
        return ParticipantInfo(
            participant_id=self.participant_id,
            display_name=self.display_name,
            role=self.role,
            audio_muted=self.audio_muted,
            camera_on=self.camera_on,
            hand_raised=self.hand_raised,
            connected=self.conn is not None,
        )


class _Refused(Exception):
    """A command the room will not carry out; becomes an ``error`` (and maybe a close)."""

    def __init__(self, code: ErrorCode, message: str, close: CloseCode | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


def _random_participant_id() -> str:
    # Unguessable, so one participant cannot aim commands at ids it was never shown.
    return "p" + secrets.token_urlsafe(12)


class Room:
    """One session's room. Every method returns the effects to carry out, in order."""

    def __init__(
        self,
        config: RoomConfig,
        *,
        new_participant_id: Callable[[], str] = _random_participant_id,
    ) -> None:
        self.config = config
        self._new_participant_id = new_participant_id
        self._participants: dict[str, _Participant] = {}
        self._by_member: dict[MemberId, str] = {}
        self._by_conn: dict[ConnId, str] = {}
        self._queue: list[str] = []  # waiting participant ids, in knock order
        self._removed: set[MemberId] = set()
        self._locked = False
        self._pause_deadline: float | None = None
        self._ended: EndReason | None = None

    # --- queries -------------------------------------------------------------------------------

    @property
    def room_id(self) -> str:
        return self.config.room_id

    @property
    def ended(self) -> EndReason | None:
        """Why the room ended, or None while it runs."""
        return self._ended

    @property
    def locked(self) -> bool:
        return self._locked

    @property
    def paused(self) -> bool:
        return self._pause_deadline is not None

    def __len__(self) -> int:
        """Members present in any state, including those inside their grace window."""
        return len(self._participants)

    def participant_id_for(self, conn: ConnId) -> str | None:
        """The participant speaking on ``conn``, or None if it was replaced or never joined."""
        return self._by_conn.get(conn)

    def participant(self, participant_id: str) -> ParticipantInfo | None:
        p = self._participants.get(participant_id)
        return None if p is None else p.info()

    def state_of(self, participant_id: str) -> ParticipantState | None:
        p = self._participants.get(participant_id)
        return None if p is None else p.state

    def waiting(self) -> tuple[str, ...]:
        """Participant ids in the waiting room, first in line first."""
        return tuple(self._queue)

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which ``tick`` has something to do, or None."""
        if self._ended is not None:
            return None
        deadlines = [
            p.dropped_at + self.config.reconnect_grace
            for p in self._participants.values()
            if p.dropped_at is not None
        ]
        if self._pause_deadline is not None:
            deadlines.append(self._pause_deadline)
        return min(deadlines, default=None)

    def snapshot(self, participant_id: str, now: float) -> RoomSnapshot:
        """The room as ``participant_id`` may see it: nothing of the inside until admitted."""
        p = self._participants[participant_id]
        left = None if self._pause_deadline is None else max(0.0, self._pause_deadline - now)
        inside = p.in_room
        return RoomSnapshot(
            locked=self._locked,
            paused=self.paused,
            pause_seconds_left=left,
            participants=tuple(q.info() for q in self._in_room()) if inside else (),
            waiting=self._waiting_entries() if inside and p.role is Role.FACILITATOR else (),
        )

    # --- connection events ---------------------------------------------------------------------

    def join(
        self,
        conn: ConnId,
        member_id: MemberId,
        role: Role,
        display_name: str,
        now: float,
        *,
        ice_servers: tuple[IceServer, ...] = (),
    ) -> list[Effect]:
        """A connection said ``hello`` with a valid token for ``member_id`` in ``role``.

        A member already present (connected or inside the grace window) is resumed in the
        state they had, on the new connection; an older connection is closed with 4409.
        ``display_name`` must already be normalized (``protocol.normalize_display_name``).
        """
        try:
            if self._ended is not None:
                raise _Refused(ErrorCode.ROOM_ENDED, "the room has ended", CloseCode.ROOM_ENDED)
            if conn in self._by_conn:
                raise _Refused(ErrorCode.WRONG_STATE, "already joined on this connection")
            if member_id in self._removed:
                raise _Refused(ErrorCode.REMOVED, "removed from this session", CloseCode.REMOVED)
            existing = self._by_member.get(member_id)
            if existing is not None:
                return self._resume(
                    self._participants[existing], conn, display_name, now, ice_servers
                )
            if role is Role.PARENT:
                if self._locked:
                    raise _Refused(
                        ErrorCode.ROOM_LOCKED, "the room is locked", CloseCode.ROOM_LOCKED
                    )
                if len(self._participants) >= self.config.capacity:
                    raise _Refused(ErrorCode.ROOM_FULL, "the room is full", CloseCode.ROOM_FULL)
        except _Refused as refused:
            return _refusal(conn, refused, "hello")

        p = _Participant(
            participant_id=self._new_participant_id(),
            member_id=member_id,
            role=role,
            display_name=display_name,
            conn=conn,
        )
        self._participants[p.participant_id] = p
        self._by_member[member_id] = p.participant_id
        self._by_conn[conn] = p.participant_id
        return [Send(conn, self._welcome(p, now, resumed=False, ice_servers=ice_servers))]

    def disconnect(self, conn: ConnId, now: float) -> list[Effect]:
        """Connection ``conn`` dropped without ``leave``: hold the place for the grace window."""
        pid = self._by_conn.pop(conn, None)
        if pid is None:
            # Already replaced, left or removed: its closing is expected and changes nothing.
            return []
        p = self._participants[pid]
        p.conn = None
        p.dropped_at = now
        effects: list[Effect] = []
        if p.in_room:
            effects.append(StopMedia(pid))
            effects += self._to_room(ParticipantUpdated(p.info()))
            if p.role is Role.FACILITATOR:
                effects += self._maybe_pause(now)
        elif p.state is ParticipantState.WAITING:
            effects += self._waiting_list()
        return effects

    def restart_media(self, conn: ConnId, now: float) -> list[Effect]:
        """The media connection on ``conn`` failed while the WebSocket lives: start it afresh.

        Keeps the participant's place, gates and pause state; the relay builds a new peer
        connection and the server offers again.
        """
        pid = self._by_conn.get(conn)
        if pid is None or self._ended is not None:
            return []
        p = self._participants[pid]
        if not p.in_room:
            return []
        return [StopMedia(pid), self._start_media(p, conn)]

    def tick(self, now: float) -> list[Effect]:
        """Let time pass: end a room left without a facilitator, forget expired drop-outs."""
        if self._ended is not None:
            return []
        if self._pause_deadline is not None and now >= self._pause_deadline:
            return self._finish(EndReason.FACILITATOR_LOST)
        effects: list[Effect] = []
        grace = self.config.reconnect_grace
        for p in list(self._participants.values()):
            if p.dropped_at is not None and now >= p.dropped_at + grace:
                effects += self._depart(p, LeaveReason.DISCONNECTED, now)
        return effects

    def terminate(self, reason: EndReason, now: float) -> list[Effect]:
        """End the room from the server side (session over, shutdown)."""
        if self._ended is not None:
            return []
        return self._finish(reason)

    # --- client commands -----------------------------------------------------------------------

    def handle(self, conn: ConnId, command: RoomCommand, now: float) -> list[Effect]:
        """Carry out ``command`` from ``conn``; a refusal becomes an ``error`` to the sender."""
        if self._ended is not None:
            return []
        try:
            return self._dispatch(conn, command, now)
        except _Refused as refused:
            return _refusal(conn, refused, command.type)

    def _dispatch(self, conn: ConnId, command: RoomCommand, now: float) -> list[Effect]:
        p = self._sender(conn)
        match command:
            case AcceptAgreement():
                p.agreement_accepted = True
                return []
            case Knock(audio_muted=audio_muted, camera_on=camera_on):
                return self._knock(p, audio_muted, camera_on, now)
            case MuteSelf():
                return self._self_update(p, audio_muted=True)
            case UnmuteSelf():
                return self._self_update(p, audio_muted=False)
            case CameraSelf(on=on):
                return self._self_update(p, camera_on=on)
            case RaiseHand():
                return self._self_update(p, hand_raised=True)
            case LowerHand():
                return self._self_update(p, hand_raised=False)
            case Leave():
                return self._depart(p, LeaveReason.LEFT, now)
            case Lock() | Unlock():
                self._moderator(p)
                return self._set_locked(isinstance(command, Lock))
            case End():
                self._moderator(p)
                return self._finish(EndReason.ENDED_BY_FACILITATOR)
            case AdmitAll():
                self._moderator(p)
                return self._admit_all(now)
            case MuteAll():
                self._moderator(p)
                targets = [q for q in self._in_room() if q.role is Role.PARENT]
                return self._mute(targets)
            case Admit(participant_id=pid):
                self._moderator(p)
                target = self._target(pid, ParticipantState.WAITING)
                return self._admit(target, now) + self._waiting_list()
            case Deny(participant_id=pid):
                self._moderator(p)
                return self._deny(self._target(pid, ParticipantState.WAITING))
            case SendToWaiting(participant_id=pid):
                self._moderator(p)
                return self._send_to_waiting(self._target(pid, ParticipantState.ADMITTED))
            case Mute(participant_id=pid):
                self._moderator(p)
                return self._mute([self._target(pid, ParticipantState.ADMITTED)])
            case CameraOff(participant_id=pid):
                self._moderator(p)
                return self._camera_off(self._target(pid, ParticipantState.ADMITTED))
            case Remove(participant_id=pid):
                self._moderator(p)
                return self._remove(self._target(pid, None), now)
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    # Convenience wrappers, one per command, for callers and tests that do not hold a message.

    def accept_agreement(self, conn: ConnId, now: float) -> list[Effect]:
        """Record that the participant on ``conn`` accepted the group agreement."""
        return self.handle(conn, AcceptAgreement(), now)

    def knock(
        self, conn: ConnId, now: float, *, audio_muted: bool = False, camera_on: bool = False
    ) -> list[Effect]:
        """Ask to enter: a facilitator enters, a parent waits."""
        return self.handle(conn, Knock(audio_muted=audio_muted, camera_on=camera_on), now)

    def admit(self, conn: ConnId, participant_id: str, now: float) -> list[Effect]:
        """Facilitator on ``conn`` admits a waiting parent."""
        return self.handle(conn, Admit(participant_id), now)

    def deny(self, conn: ConnId, participant_id: str, now: float) -> list[Effect]:
        """Facilitator on ``conn`` turns a waiting parent away (they may try again later)."""
        return self.handle(conn, Deny(participant_id), now)

    def admit_all(self, conn: ConnId, now: float) -> list[Effect]:
        """Facilitator on ``conn`` admits everyone waiting, first in line first."""
        return self.handle(conn, AdmitAll(), now)

    def send_to_waiting(self, conn: ConnId, participant_id: str, now: float) -> list[Effect]:
        """Facilitator on ``conn`` sends an admitted parent back to the waiting room."""
        return self.handle(conn, SendToWaiting(participant_id), now)

    def mute(self, conn: ConnId, participant_id: str, now: float) -> list[Effect]:
        """Facilitator on ``conn`` mutes a parent's microphone."""
        return self.handle(conn, Mute(participant_id), now)

    def mute_all(self, conn: ConnId, now: float) -> list[Effect]:
        """Facilitator on ``conn`` mutes every parent in the room."""
        return self.handle(conn, MuteAll(), now)

    def camera_off(self, conn: ConnId, participant_id: str, now: float) -> list[Effect]:
        """Facilitator on ``conn`` turns a parent's camera off."""
        return self.handle(conn, CameraOff(participant_id), now)

    def remove(self, conn: ConnId, participant_id: str, now: float) -> list[Effect]:
        """Facilitator on ``conn`` removes a parent for the rest of the session."""
        return self.handle(conn, Remove(participant_id), now)

    def lock(self, conn: ConnId, now: float) -> list[Effect]:
        """Facilitator on ``conn`` locks the room to new arrivals."""
        return self.handle(conn, Lock(), now)

    def unlock(self, conn: ConnId, now: float) -> list[Effect]:
        """Facilitator on ``conn`` unlocks the room."""
        return self.handle(conn, Unlock(), now)

    def end(self, conn: ConnId, now: float) -> list[Effect]:
        """Facilitator on ``conn`` ends the room for everyone."""
        return self.handle(conn, End(), now)

    def leave(self, conn: ConnId, now: float) -> list[Effect]:
        """The participant on ``conn`` leaves for good (no grace window)."""
        return self.handle(conn, Leave(), now)

    def leave_member(self, member_id: MemberId, now: float) -> list[Effect]:
        """``member_id`` leaves for good without a connection to say it on: their page's
        "Leave" while it was reconnecting. Without this the others would see them
        "reconnecting" for the whole grace window. Nothing if they are not here."""
        pid = self._by_member.get(member_id)
        if pid is None or self._ended is not None:
            return []
        return self._depart(self._participants[pid], LeaveReason.LEFT, now)

    # --- rules ---------------------------------------------------------------------------------

    def _resume(
        self,
        p: _Participant,
        conn: ConnId,
        display_name: str,
        now: float,
        ice_servers: tuple[IceServer, ...],
    ) -> list[Effect]:
        effects: list[Effect] = []
        was_connected = p.conn is not None
        if p.conn is not None:
            # The newest connection wins: a reload, a second tab, a network change.
            effects.append(Close(p.conn, CloseCode.REPLACED, close_reason(CloseCode.REPLACED)))
            del self._by_conn[p.conn]
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
        renamed = display_name != p.display_name
        p.conn = conn
        p.dropped_at = None
        p.display_name = display_name
        self._by_conn[conn] = p.participant_id
        effects.append(Send(conn, self._welcome(p, now, resumed=True, ice_servers=ice_servers)))
        if p.in_room:
            effects.append(self._start_media(p, conn))
            if renamed or not was_connected:
                effects += self._to_room(ParticipantUpdated(p.info()), exclude=p)
            if p.role is Role.FACILITATOR:
                effects += self._maybe_resume()
        elif p.state is ParticipantState.WAITING:
            effects.append(Send(conn, Waiting(self._position(p))))
            if renamed or not was_connected:
                effects += self._waiting_list()
        return effects

    def _knock(
        self, p: _Participant, audio_muted: bool, camera_on: bool, now: float
    ) -> list[Effect]:
        if p.state is ParticipantState.WAITING:
            # A repeated knock (a double tap) just restates the position.
            return [Send(_conn(p), Waiting(self._position(p)))]
        if p.in_room:
            raise _Refused(ErrorCode.WRONG_STATE, "already in the room")
        if not p.agreement_accepted:
            raise _Refused(ErrorCode.AGREEMENT_REQUIRED, "accept the group agreement first")
        p.audio_muted = audio_muted
        p.camera_on = camera_on
        if p.role is Role.FACILITATOR:
            return self._admit(p, now)
        if self._locked:
            # Refused and forgotten: a locked room takes no new arrivals, and keeping the
            # member in the lobby would only make the next knock fail the same way.
            self._forget(p)
            raise _Refused(ErrorCode.ROOM_LOCKED, "the room is locked", CloseCode.ROOM_LOCKED)
        p.state = ParticipantState.WAITING
        self._queue.append(p.participant_id)
        knocking = Knocking(p.participant_id, p.display_name, self._waiting_entries())
        return [Send(_conn(p), Waiting(self._position(p))), *self._to_facilitators(knocking)]

    def _admit(self, p: _Participant, now: float) -> list[Effect]:
        """Move ``p`` into the room. The caller sends the waiting list if it changed."""
        effects = self._dequeue(p)
        p.state = ParticipantState.ADMITTED
        p.hand_raised = False
        effects += self._to_room(ParticipantJoined(p.info()), exclude=p)
        if p.conn is not None:
            effects.append(Send(p.conn, Admitted(self.snapshot(p.participant_id, now))))
            effects.append(self._start_media(p, p.conn))
        if p.role is Role.FACILITATOR:
            effects += self._maybe_resume()
        return effects

    def _admit_all(self, now: float) -> list[Effect]:
        if not self._queue:
            return []
        effects: list[Effect] = []
        for pid in list(self._queue):
            effects += self._admit(self._participants[pid], now)
        return effects + self._waiting_list()

    def _deny(self, p: _Participant) -> list[Effect]:
        effects = self._dequeue(p)
        if p.conn is not None:
            effects.append(Send(p.conn, Denied()))
            effects.append(Close(p.conn, CloseCode.DENIED, close_reason(CloseCode.DENIED)))
        self._forget(p)
        return effects + self._waiting_list()

    def _send_to_waiting(self, p: _Participant) -> list[Effect]:
        p.state = ParticipantState.WAITING
        p.hand_raised = False
        # At the back of the line: the facilitator decides when, and admitting is one tap.
        self._queue.append(p.participant_id)
        effects: list[Effect] = []
        if p.conn is not None:
            effects.append(StopMedia(p.participant_id))
            effects.append(Send(p.conn, SentToWaiting(self._position(p))))
        effects += self._left(p, LeaveReason.SENT_TO_WAITING)
        return effects + self._waiting_list()

    def _mute(self, targets: Iterable[_Participant]) -> list[Effect]:
        effects: list[Effect] = []
        for p in targets:
            if p.audio_muted:
                continue
            p.audio_muted = True
            if p.conn is not None:
                effects.append(Send(p.conn, MutedByFacilitator()))
            effects.append(SetGate(p.participant_id, audio=False, video=p.camera_on))
            effects += self._to_room(ParticipantUpdated(p.info()))
        return effects

    def _camera_off(self, p: _Participant) -> list[Effect]:
        if not p.camera_on:
            return []
        p.camera_on = False
        effects: list[Effect] = []
        if p.conn is not None:
            effects.append(Send(p.conn, CameraOffByFacilitator()))
        effects.append(SetGate(p.participant_id, audio=not p.audio_muted, video=False))
        return effects + self._to_room(ParticipantUpdated(p.info()))

    def _remove(self, p: _Participant, now: float) -> list[Effect]:
        self._removed.add(p.member_id)
        effects: list[Effect] = [Removal(p.member_id)]
        if p.conn is not None:
            effects.append(Send(p.conn, Removed()))
            effects.append(Close(p.conn, CloseCode.REMOVED, close_reason(CloseCode.REMOVED)))
        # _depart sends no close: the one above already carries the reason.
        conn, p.conn = p.conn, None
        if conn is not None:
            del self._by_conn[conn]
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
        return effects + self._depart(p, LeaveReason.REMOVED, now)

    def _set_locked(self, locked: bool) -> list[Effect]:
        if locked == self._locked:
            return []
        self._locked = locked
        return self._to_room(RoomLocked() if locked else RoomUnlocked())

    def _self_update(
        self,
        p: _Participant,
        *,
        audio_muted: bool | None = None,
        camera_on: bool | None = None,
        hand_raised: bool | None = None,
    ) -> list[Effect]:
        if not p.in_room:
            raise _Refused(ErrorCode.WRONG_STATE, "only possible in the room")
        before = (p.audio_muted, p.camera_on, p.hand_raised)
        if audio_muted is not None:
            p.audio_muted = audio_muted
        if camera_on is not None:
            p.camera_on = camera_on
        if hand_raised is not None:
            p.hand_raised = hand_raised
        if (p.audio_muted, p.camera_on, p.hand_raised) == before:
            return []
        effects: list[Effect] = []
        if (p.audio_muted, p.camera_on) != before[:2]:
            effects.append(SetGate(p.participant_id, audio=not p.audio_muted, video=p.camera_on))
        return effects + self._to_room(ParticipantUpdated(p.info()))

    def _depart(self, p: _Participant, reason: LeaveReason, now: float) -> list[Effect]:
        """``p`` is gone for good: left, removed, or their grace window ran out."""
        effects: list[Effect] = []
        if p.conn is not None:
            # Only a leave reaches here connected; the others arrive disconnected.
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
            effects.append(Close(p.conn, CloseCode.NORMAL, close_reason(CloseCode.NORMAL)))
        was_in_room = p.in_room
        was_waiting = p.state is ParticipantState.WAITING
        effects += self._dequeue(p)
        self._forget(p)
        if was_in_room:
            effects += self._left(p, reason)
            if p.role is Role.FACILITATOR:
                effects += self._maybe_pause(now)
        elif was_waiting:
            effects += self._waiting_list()
        return effects

    def _maybe_pause(self, now: float) -> list[Effect]:
        if self._pause_deadline is not None or self._facilitator_present():
            return []
        self._pause_deadline = now + self.config.facilitator_timeout
        lost = FacilitatorLost(seconds_left=self.config.facilitator_timeout)
        paused: list[Effect] = [PauseMedia(q.participant_id) for q in self._parents_in_media()]
        return paused + self._to_connected(lost)

    def _maybe_resume(self) -> list[Effect]:
        if self._pause_deadline is None or not self._facilitator_present():
            return []
        self._pause_deadline = None
        resumed: list[Effect] = [ResumeMedia(q.participant_id) for q in self._parents_in_media()]
        return resumed + self._to_connected(FacilitatorBack())

    def _finish(self, reason: EndReason) -> list[Effect]:
        effects: list[Effect] = []
        for p in self._participants.values():
            if p.conn is None:
                continue
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
            effects.append(Send(p.conn, RoomEnded(reason)))
            effects.append(Close(p.conn, CloseCode.ROOM_ENDED, close_reason(CloseCode.ROOM_ENDED)))
        effects.append(Ended(reason))
        # Nothing about the room outlives it, not even who was removed: an ended room
        # refuses every join, so there is nothing left to enforce.
        self._participants.clear()
        self._by_member.clear()
        self._by_conn.clear()
        self._queue.clear()
        self._removed.clear()
        self._pause_deadline = None
        self._ended = reason
        return effects

    # --- helpers -------------------------------------------------------------------------------

    def _sender(self, conn: ConnId) -> _Participant:
        pid = self._by_conn.get(conn)
        if pid is None:
            raise _Refused(ErrorCode.NOT_JOINED, "say hello first")
        return self._participants[pid]

    def _moderator(self, p: _Participant) -> None:
        if p.role is not Role.FACILITATOR:
            raise _Refused(ErrorCode.FORBIDDEN, "only a facilitator can do that")
        if not p.in_room:
            raise _Refused(ErrorCode.WRONG_STATE, "enter the room first")

    def _target(self, participant_id: str, state: ParticipantState | None) -> _Participant:
        p = self._participants.get(participant_id)
        if p is None:
            raise _Refused(ErrorCode.NO_SUCH_PARTICIPANT, "no such participant")
        if p.role is not Role.PARENT:
            raise _Refused(ErrorCode.FORBIDDEN, "facilitators cannot be moderated")
        if state is not None and p.state is not state:
            raise _Refused(ErrorCode.WRONG_STATE, f"participant is not {state.value}")
        return p

    def _facilitator_present(self) -> bool:
        return any(
            p.role is Role.FACILITATOR and p.in_room and p.conn is not None
            for p in self._participants.values()
        )

    def _start_media(self, p: _Participant, conn: ConnId) -> StartMedia:
        receiving = p.role is Role.FACILITATOR or self._pause_deadline is None
        return StartMedia(
            p.participant_id,
            conn,
            audio=not p.audio_muted,
            video=p.camera_on,
            receiving=receiving,
        )

    def _parents_in_media(self) -> list[_Participant]:
        return [q for q in self._in_room() if q.role is Role.PARENT and q.conn is not None]

    def _forget(self, p: _Participant) -> None:
        self._participants.pop(p.participant_id, None)
        if self._by_member.get(p.member_id) == p.participant_id:
            del self._by_member[p.member_id]
        if p.conn is not None:
            self._by_conn.pop(p.conn, None)

    def _in_room(self) -> Iterator[_Participant]:
        return (p for p in self._participants.values() if p.in_room)

    def _position(self, p: _Participant) -> int:
        return self._queue.index(p.participant_id) + 1

    def _dequeue(self, p: _Participant) -> list[Effect]:
        """Take ``p`` out of the line and tell everyone behind them their new position."""
        if p.participant_id not in self._queue:
            return []
        index = self._queue.index(p.participant_id)
        self._queue.remove(p.participant_id)
        effects: list[Effect] = []
        for position, pid in enumerate(self._queue[index:], start=index + 1):
            q = self._participants[pid]
            if q.conn is not None:
                effects.append(Send(q.conn, Waiting(position)))
        return effects

    def _waiting_entries(self) -> tuple[WaitingEntry, ...]:
        return tuple(
            WaitingEntry(pid, p.display_name, p.conn is not None)
            for pid in self._queue
            for p in (self._participants[pid],)
        )

    def _waiting_list(self) -> list[Effect]:
        return self._to_facilitators(WaitingList(self._waiting_entries()))

    def _left(self, p: _Participant, reason: LeaveReason) -> list[Effect]:
        # Facilitators see why; parents see only that someone left. Being removed or sent out
        # is not news the other parents need, and it spares the person concerned.
        plain = LeaveReason.LEFT if reason is not LeaveReason.DISCONNECTED else reason
        return [
            Send(
                q.conn,
                ParticipantLeft(p.participant_id, reason if q.role is Role.FACILITATOR else plain),
            )
            for q in self._in_room()
            if q.conn is not None and q is not p
        ]

    def _to_room(
        self, message: ServerMessage, *, exclude: _Participant | None = None
    ) -> list[Effect]:
        return [
            Send(q.conn, message)
            for q in self._in_room()
            if q.conn is not None and q is not exclude
        ]

    def _to_facilitators(self, message: ServerMessage) -> list[Effect]:
        return [
            Send(q.conn, message)
            for q in self._in_room()
            if q.conn is not None and q.role is Role.FACILITATOR
        ]

    def _to_connected(self, message: ServerMessage) -> list[Effect]:
        return [Send(q.conn, message) for q in self._participants.values() if q.conn is not None]

    def _welcome(
        self, p: _Participant, now: float, *, resumed: bool, ice_servers: tuple[IceServer, ...]
    ) -> Welcome:
        return Welcome(
            participant_id=p.participant_id,
            role=p.role,
            display_name=p.display_name,
            state=p.state,
            agreement_accepted=p.agreement_accepted,
            resumed=resumed,
            reconnect_grace=self.config.reconnect_grace,
            room=self.snapshot(p.participant_id, now),
            ice_servers=ice_servers,
        )


def _conn(p: _Participant) -> ConnId:
    # Commands only ever come from a connected participant.
    assert p.conn is not None
    return p.conn


def _refusal(conn: ConnId, refused: _Refused, in_reply_to: str) -> list[Effect]:
    effects: list[Effect] = [Send(conn, ErrorMessage(refused.code, refused.message, in_reply_to))]
    if refused.close is not None:
        effects.append(Close(conn, refused.close, close_reason(refused.close)))
    return effects
