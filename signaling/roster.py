"""Who is in a room and where: the participants, their indexes by member and by connection,
the waiting line, and the messages addressed to groups of them. Pure bookkeeping for
:class:`~signaling.room.Room`, which decides; no rule lives here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from signaling.effects import ConnId, Effect, MemberId, Send
from signaling.protocol import (
    LeaveReason,
    ParticipantInfo,
    ParticipantLeft,
    ParticipantState,
    Role,
    ServerMessage,
    Waiting,
    WaitingEntry,
    WaitingList,
)


@dataclass(slots=True)
class Participant:
    """One member in a room, in any state (lobby, waiting, admitted), connected or not."""

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


def random_participant_id() -> str:
    # Unguessable, so one participant cannot aim commands at ids it was never shown.
    return "p" + secrets.token_urlsafe(12)


class Roster:
    """A room's participants: one per member, one connection per participant, one line."""

    def __init__(self) -> None:
        self.participants: dict[str, Participant] = {}
        self.by_member: dict[MemberId, str] = {}
        self.by_conn: dict[ConnId, str] = {}
        self.queue: list[str] = []  # waiting participant ids, in knock order

    def __len__(self) -> int:
        return len(self.participants)

    def add(self, p: Participant) -> None:
        """A new participant (connected on ``p.conn``)."""
        self.participants[p.participant_id] = p
        self.by_member[p.member_id] = p.participant_id
        if p.conn is not None:
            self.by_conn[p.conn] = p.participant_id

    def clear(self) -> None:
        self.participants.clear()
        self.by_member.clear()
        self.by_conn.clear()
        self.queue.clear()

    def facilitator_present(self) -> bool:
        return any(
            p.role is Role.FACILITATOR and p.in_room and p.conn is not None
            for p in self.participants.values()
        )

    def parents_in_media(self) -> list[Participant]:
        return [q for q in self.in_room() if q.role is Role.PARENT and q.conn is not None]

    def forget(self, p: Participant) -> None:
        self.participants.pop(p.participant_id, None)
        if self.by_member.get(p.member_id) == p.participant_id:
            del self.by_member[p.member_id]
        if p.conn is not None:
            self.by_conn.pop(p.conn, None)

    def in_room(self) -> Iterator[Participant]:
        return (p for p in self.participants.values() if p.in_room)

    def position(self, p: Participant) -> int:
        return self.queue.index(p.participant_id) + 1

    def dequeue(self, p: Participant) -> list[Effect]:
        """Take ``p`` out of the line and tell everyone behind them their new position."""
        if p.participant_id not in self.queue:
            return []
        index = self.queue.index(p.participant_id)
        self.queue.remove(p.participant_id)
        effects: list[Effect] = []
        for position, pid in enumerate(self.queue[index:], start=index + 1):
            q = self.participants[pid]
            if q.conn is not None:
                effects.append(Send(q.conn, Waiting(position)))
        return effects

    def waiting_entries(self) -> tuple[WaitingEntry, ...]:
        return tuple(
            WaitingEntry(pid, p.display_name, p.conn is not None)
            for pid in self.queue
            for p in (self.participants[pid],)
        )

    def waiting_list(self) -> list[Effect]:
        return self.to_facilitators(WaitingList(self.waiting_entries()))

    def left(self, p: Participant, reason: LeaveReason) -> list[Effect]:
        # Facilitators see why; parents see only that someone left. Being removed or sent out
        # is not news the other parents need, and it spares the person concerned.
        plain = LeaveReason.LEFT if reason is not LeaveReason.DISCONNECTED else reason
        return [
            Send(
                q.conn,
                ParticipantLeft(p.participant_id, reason if q.role is Role.FACILITATOR else plain),
            )
            for q in self.in_room()
            if q.conn is not None and q is not p
        ]

    def to_room(
        self, message: ServerMessage, *, exclude: Participant | None = None
    ) -> list[Effect]:
        return [
            Send(q.conn, message) for q in self.in_room() if q.conn is not None and q is not exclude
        ]

    def to_facilitators(self, message: ServerMessage) -> list[Effect]:
        return [
            Send(q.conn, message)
            for q in self.in_room()
            if q.conn is not None and q.role is Role.FACILITATOR
        ]

    def to_connected(self, message: ServerMessage) -> list[Effect]:
        return [Send(q.conn, message) for q in self.participants.values() if q.conn is not None]
