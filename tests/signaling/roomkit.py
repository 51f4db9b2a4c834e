"""The room state machine's test harness: a room, its connections, and readers of effects."""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from signaling.effects import (
    Close,
    Effect,
    Ended,
    Send,
)
from signaling.protocol import (
    CloseCode,
    ErrorCode,
    ErrorMessage,
    Role,
    RoomCommand,
    ServerMessage,
    Welcome,
    dump_server_message,
    parse_server_message,
)
from signaling.room import Room, RoomConfig

M = TypeVar("M", bound=ServerMessage)

PARENT = Role.PARENT
FACILITATOR = Role.FACILITATOR


class Harness:
    """A room with deterministic ids, a clock, and checks run after every step."""

    def __init__(self, capacity: int = 12, grace: float = 30.0, timeout: float = 300.0) -> None:
        counter = itertools.count(1)
        self.room = Room(
            RoomConfig("session-1", capacity, reconnect_grace=grace, facilitator_timeout=timeout),
            new_participant_id=lambda: f"p{next(counter)}",
        )
        self.now = 1000.0
        self.members: set[str] = set()

    def check(self, effects: list[Effect]) -> list[Effect]:
        for effect in effects:
            if isinstance(effect, Send):
                text = dump_server_message(effect.message)
                # Every message survives the wire, and no member id (an email here) leaks.
                assert parse_server_message(text) == effect.message
                for member in self.members:
                    assert member not in text
        ended = [e for e in effects if isinstance(e, Ended)]
        if ended:
            assert effects[-1] is ended[0]
        # No ghosts: one participant per member, one connection per participant.
        room: Any = self.room
        roster = room._roster
        assert len(roster.by_member) == len(roster.participants)
        for conn, pid in roster.by_conn.items():
            assert roster.participants[pid].conn == conn
        return effects

    def join(
        self, conn: str, member: str, role: Role = PARENT, name: str | None = None
    ) -> list[Effect]:
        self.members.add(member)
        return self.check(
            self.room.join(conn, member, role, name or member.split("@")[0], self.now)
        )

    def do(self, conn: str, command: RoomCommand) -> list[Effect]:
        return self.check(self.room.handle(conn, command, self.now))

    def call(self, method: str, *args: Any, **kwargs: Any) -> list[Effect]:
        return self.check(getattr(self.room, method)(*args, self.now, **kwargs))

    def enter(self, conn: str, member: str, role: Role = PARENT) -> str:
        """Join, accept the agreement and knock; return the participant id."""
        welcome = only(self.join(conn, member, role), conn, Welcome)
        self.call("accept_agreement", conn)
        self.call("knock", conn)
        return welcome.participant_id

    def admitted(self, conn: str, member: str) -> str:
        """A parent who knocked and was admitted by the facilitator on ``f``."""
        pid = self.enter(conn, member)
        self.call("admit", "f", pid)
        return pid

    def disconnect(self, conn: str) -> list[Effect]:
        return self.check(self.room.disconnect(conn, self.now))

    def tick(self, seconds: float) -> list[Effect]:
        self.now += seconds
        return self.check(self.room.tick(self.now))


def sent(effects: list[Effect], conn: str) -> list[ServerMessage]:
    return [e.message for e in effects if isinstance(e, Send) and e.conn == conn]


def only(effects: list[Effect], conn: str, kind: type[M]) -> M:
    found = [m for m in sent(effects, conn) if isinstance(m, kind)]
    assert len(found) == 1, (kind, effects)
    return found[0]


def error(effects: list[Effect], conn: str) -> ErrorCode:
    return only(effects, conn, ErrorMessage).code


def closes(effects: list[Effect]) -> dict[str, CloseCode]:
    return {e.conn: e.code for e in effects if isinstance(e, Close)}


def of(effects: list[Effect], kind: type[Any]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]
