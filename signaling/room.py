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

This module holds the rules; the effects it returns are in ``signaling/effects.py`` and the
bookkeeping of who is where (participants, indexes, the waiting line, group messages) in
``signaling/roster.py``, the changes to one participant that need only that bookkeeping in
``signaling/moderation.py``, the facilitator failsafe's pause in ``signaling/failsafe.py``, and
the commands by name in ``signaling/room_commands.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from signaling import moderation
from signaling.effects import (
    Close,
    CommandRefused,
    ConnId,
    Effect,
    Ended,
    MemberId,
    Removal,
    Send,
    StartMedia,
    StopMedia,
    refusal,
)
from signaling.failsafe import Failsafe
from signaling.protocol import (
    AcceptAgreement,
    Admit,
    AdmitAll,
    Admitted,
    CameraOff,
    CameraSelf,
    CloseCode,
    Deny,
    End,
    EndReason,
    ErrorCode,
    IceServer,
    Knock,
    Knocking,
    Leave,
    LeaveReason,
    Lock,
    LowerHand,
    Mute,
    MuteAll,
    MuteSelf,
    ParticipantInfo,
    ParticipantJoined,
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
    Unlock,
    UnmuteSelf,
    Waiting,
    Welcome,
    close_reason,
)
from signaling.room_commands import CommandShortcuts
from signaling.roster import Participant, Roster, random_participant_id

DEFAULT_RECONNECT_GRACE: Final = 30.0
DEFAULT_FACILITATOR_TIMEOUT: Final = 300.0

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


class Room(CommandShortcuts):
    """One session's room. Every method returns the effects to carry out, in order."""

    def __init__(
        self,
        config: RoomConfig,
        *,
        new_participant_id: Callable[[], str] = random_participant_id,
    ) -> None:
        self.config = config
        self._new_participant_id = new_participant_id
        self._roster = Roster()
        self._removed: set[MemberId] = set()
        self._locked = False
        self._failsafe = Failsafe(config.facilitator_timeout)
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
        return self._failsafe.deadline is not None

    def __len__(self) -> int:
        """Members present in any state, including those inside their grace window."""
        return len(self._roster)

    def participant_id_for(self, conn: ConnId) -> str | None:
        """The participant speaking on ``conn``, or None if it was replaced or never joined."""
        return self._roster.by_conn.get(conn)

    def participant(self, participant_id: str) -> ParticipantInfo | None:
        p = self._roster.participants.get(participant_id)
        return None if p is None else p.info()

    def state_of(self, participant_id: str) -> ParticipantState | None:
        p = self._roster.participants.get(participant_id)
        return None if p is None else p.state

    def waiting(self) -> tuple[str, ...]:
        """Participant ids in the waiting room, first in line first."""
        return tuple(self._roster.queue)

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which ``tick`` has something to do, or None."""
        if self._ended is not None:
            return None
        deadlines = [
            p.dropped_at + self.config.reconnect_grace
            for p in self._roster.participants.values()
            if p.dropped_at is not None
        ]
        if self._failsafe.deadline is not None:
            deadlines.append(self._failsafe.deadline)
        return min(deadlines, default=None)

    def snapshot(self, participant_id: str, now: float) -> RoomSnapshot:
        """The room as ``participant_id`` may see it: nothing of the inside until admitted."""
        p = self._roster.participants[participant_id]
        left = None if self._failsafe.deadline is None else max(0.0, self._failsafe.deadline - now)
        inside = p.in_room
        return RoomSnapshot(
            locked=self._locked,
            paused=self.paused,
            pause_seconds_left=left,
            participants=tuple(q.info() for q in self._roster.in_room()) if inside else (),
            waiting=self._roster.waiting_entries() if inside and p.role is Role.FACILITATOR else (),
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
                raise CommandRefused(
                    ErrorCode.ROOM_ENDED, "the room has ended", CloseCode.ROOM_ENDED
                )
            if conn in self._roster.by_conn:
                raise CommandRefused(ErrorCode.WRONG_STATE, "already joined on this connection")
            if member_id in self._removed:
                raise CommandRefused(
                    ErrorCode.REMOVED, "removed from this session", CloseCode.REMOVED
                )
            existing = self._roster.by_member.get(member_id)
            if existing is not None:
                return self._resume(
                    self._roster.participants[existing], conn, display_name, now, ice_servers
                )
            if role is Role.PARENT:
                if self._locked:
                    raise CommandRefused(
                        ErrorCode.ROOM_LOCKED, "the room is locked", CloseCode.ROOM_LOCKED
                    )
                if len(self._roster.participants) >= self.config.capacity:
                    raise CommandRefused(
                        ErrorCode.ROOM_FULL, "the room is full", CloseCode.ROOM_FULL
                    )
        except CommandRefused as refused:
            return refusal(conn, refused, "hello")

        p = Participant(
            participant_id=self._new_participant_id(),
            member_id=member_id,
            role=role,
            display_name=display_name,
            conn=conn,
        )
        self._roster.add(p)
        return [Send(conn, self._welcome(p, now, resumed=False, ice_servers=ice_servers))]

    def disconnect(self, conn: ConnId, now: float) -> list[Effect]:
        """Connection ``conn`` dropped without ``leave``: hold the place for the grace window."""
        pid = self._roster.by_conn.pop(conn, None)
        if pid is None:
            # Already replaced, left or removed: its closing is expected and changes nothing.
            return []
        p = self._roster.participants[pid]
        p.conn = None
        p.dropped_at = now
        effects: list[Effect] = []
        if p.in_room:
            effects.append(StopMedia(pid))
            effects += self._roster.to_room(ParticipantUpdated(p.info()))
            if p.role is Role.FACILITATOR:
                effects += self._failsafe.pause(self._roster, now)
        elif p.state is ParticipantState.WAITING:
            effects += self._roster.waiting_list()
        return effects

    def restart_media(self, conn: ConnId, now: float) -> list[Effect]:
        """The media connection on ``conn`` failed while the WebSocket lives: start it afresh.

        Keeps the participant's place, gates and pause state; the relay builds a new peer
        connection and the server offers again.
        """
        pid = self._roster.by_conn.get(conn)
        if pid is None or self._ended is not None:
            return []
        p = self._roster.participants[pid]
        if not p.in_room:
            return []
        return [StopMedia(pid), self._start_media(p, conn)]

    def tick(self, now: float) -> list[Effect]:
        """Let time pass: end a room left without a facilitator, forget expired drop-outs."""
        if self._ended is not None:
            return []
        if self._failsafe.deadline is not None and now >= self._failsafe.deadline:
            return self._finish(EndReason.FACILITATOR_LOST)
        effects: list[Effect] = []
        grace = self.config.reconnect_grace
        for p in list(self._roster.participants.values()):
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
        except CommandRefused as refused:
            return refusal(conn, refused, command.type)

    def _dispatch(self, conn: ConnId, command: RoomCommand, now: float) -> list[Effect]:
        p = self._sender(conn)
        match command:
            case AcceptAgreement():
                p.agreement_accepted = True
                return []
            case Knock(audio_muted=audio_muted, camera_on=camera_on):
                return self._knock(p, audio_muted, camera_on, now)
            case MuteSelf():
                return moderation.update_self(self._roster, p, audio_muted=True)
            case UnmuteSelf():
                return moderation.update_self(self._roster, p, audio_muted=False)
            case CameraSelf(on=on):
                return moderation.update_self(self._roster, p, camera_on=on)
            case RaiseHand():
                return moderation.update_self(self._roster, p, hand_raised=True)
            case LowerHand():
                return moderation.update_self(self._roster, p, hand_raised=False)
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
                targets = [q for q in self._roster.in_room() if q.role is Role.PARENT]
                return moderation.mute(self._roster, targets)
            case Admit(participant_id=pid):
                self._moderator(p)
                target = self._target(pid, ParticipantState.WAITING)
                return self._admit(target, now) + self._roster.waiting_list()
            case Deny(participant_id=pid):
                self._moderator(p)
                return moderation.deny(self._roster, self._target(pid, ParticipantState.WAITING))
            case SendToWaiting(participant_id=pid):
                self._moderator(p)
                return moderation.send_to_waiting(
                    self._roster, self._target(pid, ParticipantState.ADMITTED)
                )
            case Mute(participant_id=pid):
                self._moderator(p)
                return moderation.mute(self._roster, [self._target(pid, ParticipantState.ADMITTED)])
            case CameraOff(participant_id=pid):
                self._moderator(p)
                return moderation.camera_off(
                    self._roster, self._target(pid, ParticipantState.ADMITTED)
                )
            case Remove(participant_id=pid):
                self._moderator(p)
                return self._remove(self._target(pid, None), now)
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    def leave_member(self, member_id: MemberId, now: float) -> list[Effect]:
        """``member_id`` leaves for good without a connection to say it on: their page's
        "Leave" while it was reconnecting. Without this the others would see them
        "reconnecting" for the whole grace window. Nothing if they are not here."""
        pid = self._roster.by_member.get(member_id)
        if pid is None or self._ended is not None:
            return []
        return self._depart(self._roster.participants[pid], LeaveReason.LEFT, now)

    # --- rules ---------------------------------------------------------------------------------

    def _resume(
        self,
        p: Participant,
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
            del self._roster.by_conn[p.conn]
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
        renamed = display_name != p.display_name
        p.conn = conn
        p.dropped_at = None
        p.display_name = display_name
        self._roster.by_conn[conn] = p.participant_id
        effects.append(Send(conn, self._welcome(p, now, resumed=True, ice_servers=ice_servers)))
        if p.in_room:
            effects.append(self._start_media(p, conn))
            if renamed or not was_connected:
                effects += self._roster.to_room(ParticipantUpdated(p.info()), exclude=p)
            if p.role is Role.FACILITATOR:
                effects += self._failsafe.resume(self._roster)
        elif p.state is ParticipantState.WAITING:
            effects.append(Send(conn, Waiting(self._roster.position(p))))
            if renamed or not was_connected:
                effects += self._roster.waiting_list()
        return effects

    def _knock(
        self, p: Participant, audio_muted: bool, camera_on: bool, now: float
    ) -> list[Effect]:
        if p.state is ParticipantState.WAITING:
            # A repeated knock (a double tap) just restates the position.
            return [Send(_conn(p), Waiting(self._roster.position(p)))]
        if p.in_room:
            raise CommandRefused(ErrorCode.WRONG_STATE, "already in the room")
        if not p.agreement_accepted:
            raise CommandRefused(ErrorCode.AGREEMENT_REQUIRED, "accept the group agreement first")
        p.audio_muted = audio_muted
        p.camera_on = camera_on
        if p.role is Role.FACILITATOR:
            return self._admit(p, now)
        if self._locked:
            # Refused and forgotten: a locked room takes no new arrivals, and keeping the
            # member in the lobby would only make the next knock fail the same way.
            self._roster.forget(p)
            raise CommandRefused(ErrorCode.ROOM_LOCKED, "the room is locked", CloseCode.ROOM_LOCKED)
        p.state = ParticipantState.WAITING
        self._roster.queue.append(p.participant_id)
        knocking = Knocking(p.participant_id, p.display_name, self._roster.waiting_entries())
        return [
            Send(_conn(p), Waiting(self._roster.position(p))),
            *self._roster.to_facilitators(knocking),
        ]

    def _admit(self, p: Participant, now: float) -> list[Effect]:
        """Move ``p`` into the room. The caller sends the waiting list if it changed."""
        effects = self._roster.dequeue(p)
        p.state = ParticipantState.ADMITTED
        p.hand_raised = False
        effects += self._roster.to_room(ParticipantJoined(p.info()), exclude=p)
        if p.conn is not None:
            effects.append(Send(p.conn, Admitted(self.snapshot(p.participant_id, now))))
            effects.append(self._start_media(p, p.conn))
        if p.role is Role.FACILITATOR:
            effects += self._failsafe.resume(self._roster)
        return effects

    def _admit_all(self, now: float) -> list[Effect]:
        if not self._roster.queue:
            return []
        effects: list[Effect] = []
        for pid in list(self._roster.queue):
            effects += self._admit(self._roster.participants[pid], now)
        return effects + self._roster.waiting_list()

    def _remove(self, p: Participant, now: float) -> list[Effect]:
        self._removed.add(p.member_id)
        effects: list[Effect] = [Removal(p.member_id)]
        if p.conn is not None:
            effects.append(Send(p.conn, Removed()))
            effects.append(Close(p.conn, CloseCode.REMOVED, close_reason(CloseCode.REMOVED)))
        # _depart sends no close: the one above already carries the reason.
        conn, p.conn = p.conn, None
        if conn is not None:
            del self._roster.by_conn[conn]
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
        return effects + self._depart(p, LeaveReason.REMOVED, now)

    def _set_locked(self, locked: bool) -> list[Effect]:
        if locked == self._locked:
            return []
        self._locked = locked
        return self._roster.to_room(RoomLocked() if locked else RoomUnlocked())

    def _depart(self, p: Participant, reason: LeaveReason, now: float) -> list[Effect]:
        """``p`` is gone for good: left, removed, or their grace window ran out."""
        effects: list[Effect] = []
        if p.conn is not None:
            # Only a leave reaches here connected; the others arrive disconnected.
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
            effects.append(Close(p.conn, CloseCode.NORMAL, close_reason(CloseCode.NORMAL)))
        was_in_room = p.in_room
        was_waiting = p.state is ParticipantState.WAITING
        effects += self._roster.dequeue(p)
        self._roster.forget(p)
        if was_in_room:
            effects += self._roster.left(p, reason)
            if p.role is Role.FACILITATOR:
                effects += self._failsafe.pause(self._roster, now)
        elif was_waiting:
            effects += self._roster.waiting_list()
        return effects

    def _finish(self, reason: EndReason) -> list[Effect]:
        effects: list[Effect] = []
        for p in self._roster.participants.values():
            if p.conn is None:
                continue
            if p.in_room:
                effects.append(StopMedia(p.participant_id))
            effects.append(Send(p.conn, RoomEnded(reason)))
            effects.append(Close(p.conn, CloseCode.ROOM_ENDED, close_reason(CloseCode.ROOM_ENDED)))
        effects.append(Ended(reason))
        # Nothing about the room outlives it, not even who was removed: an ended room
        # refuses every join, so there is nothing left to enforce.
        self._roster.clear()
        self._removed.clear()
        self._failsafe.deadline = None
        self._ended = reason
        return effects

    # --- helpers -------------------------------------------------------------------------------

    def _sender(self, conn: ConnId) -> Participant:
        pid = self._roster.by_conn.get(conn)
        if pid is None:
            raise CommandRefused(ErrorCode.NOT_JOINED, "say hello first")
        return self._roster.participants[pid]

    def _moderator(self, p: Participant) -> None:
        if p.role is not Role.FACILITATOR:
            raise CommandRefused(ErrorCode.FORBIDDEN, "only a facilitator can do that")
        if not p.in_room:
            raise CommandRefused(ErrorCode.WRONG_STATE, "enter the room first")

    def _target(self, participant_id: str, state: ParticipantState | None) -> Participant:
        p = self._roster.participants.get(participant_id)
        if p is None:
            raise CommandRefused(ErrorCode.NO_SUCH_PARTICIPANT, "no such participant")
        if p.role is not Role.PARENT:
            raise CommandRefused(ErrorCode.FORBIDDEN, "facilitators cannot be moderated")
        if state is not None and p.state is not state:
            raise CommandRefused(ErrorCode.WRONG_STATE, f"participant is not {state.value}")
        return p

    def _start_media(self, p: Participant, conn: ConnId) -> StartMedia:
        receiving = p.role is Role.FACILITATOR or self._failsafe.deadline is None
        return StartMedia(
            p.participant_id,
            conn,
            audio=not p.audio_muted,
            video=p.camera_on,
            receiving=receiving,
        )

    def _welcome(
        self, p: Participant, now: float, *, resumed: bool, ice_servers: tuple[IceServer, ...]
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


def _conn(p: Participant) -> ConnId:
    # Commands only ever come from a connected participant.
    assert p.conn is not None
    return p.conn
