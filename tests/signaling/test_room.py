"""The room state machine, scenario by scenario, without a socket or a peer connection."""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

import pytest

from signaling.effects import (
    Close,
    Effect,
    Ended,
    PauseMedia,
    ResumeMedia,
    Send,
    SetGate,
    StartMedia,
    StopMedia,
)
from signaling.protocol import Admit as AdmitCmd
from signaling.protocol import (
    AdmitAll,
    Admitted,
    CameraOff,
    CameraOffByFacilitator,
    CameraSelf,
    CloseCode,
    Denied,
    End,
    EndReason,
    ErrorCode,
    ErrorMessage,
    FacilitatorBack,
    FacilitatorLost,
    IceServer,
    Knocking,
    LeaveReason,
    Lock,
    LowerHand,
    Mute,
    MuteAll,
    MutedByFacilitator,
    MuteSelf,
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
    RoomUnlocked,
    SendToWaiting,
    SentToWaiting,
    ServerMessage,
    Unlock,
    UnmuteSelf,
    Waiting,
    WaitingList,
    Welcome,
    dump_server_message,
    parse_server_message,
)
from signaling.protocol import Deny as DenyCmd
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


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture
def room_with_facilitator(h: Harness) -> Harness:
    h.enter("f", "fran@example.org", FACILITATOR)
    return h


# --- the door and the waiting room -------------------------------------------------------------


def test_welcome_says_who_you_are_and_shows_nothing_inside(h: Harness) -> None:
    h.enter("f", "fran@example.org", FACILITATOR)
    effects = h.check(
        h.room.join(
            "a",
            "alex@example.org",
            PARENT,
            "Alex",
            h.now,
            ice_servers=(IceServer(("stun:x",)),),
        )
    )
    welcome = only(effects, "a", Welcome)
    assert welcome.role is PARENT
    assert welcome.state is ParticipantState.LOBBY
    assert not welcome.agreement_accepted
    assert not welcome.resumed
    assert welcome.reconnect_grace == 30.0
    assert welcome.ice_servers == (IceServer(("stun:x",)),)
    # A parent at the door does not learn who is inside.
    assert welcome.room.participants == ()
    assert welcome.room.waiting == ()
    # Nobody else hears about someone reading the agreement.
    assert effects == [Send("a", welcome)]


def test_knock_needs_the_agreement(h: Harness) -> None:
    h.join("a", "alex@example.org")
    effects = h.call("knock", "a")
    assert error(effects, "a") is ErrorCode.AGREEMENT_REQUIRED
    assert closes(effects) == {}
    assert h.room.state_of("p1") is ParticipantState.LOBBY


def test_facilitators_accept_the_agreement_too(h: Harness) -> None:
    h.join("f", "fran@example.org", FACILITATOR)
    assert error(h.call("knock", "f"), "f") is ErrorCode.AGREEMENT_REQUIRED


def test_parent_arriving_before_the_facilitator_waits(h: Harness) -> None:
    alex = h.enter("a", "alex@example.org")
    assert h.room.state_of(alex) is ParticipantState.WAITING
    assert h.room.waiting() == (alex,)

    h.join("f", "fran@example.org", FACILITATOR)
    h.call("accept_agreement", "f")
    effects = h.call("knock", "f")
    # The facilitator enters directly and sees who is waiting.
    admitted = only(effects, "f", Admitted)
    assert [w.participant_id for w in admitted.room.waiting] == [alex]
    assert of(effects, StartMedia) == [StartMedia("p2", "f", audio=True, video=False)]
    # Alex is still waiting: a facilitator arriving admits nobody.
    assert sent(effects, "a") == []
    assert h.room.state_of(alex) is ParticipantState.WAITING


def test_knock_alerts_facilitators_with_the_waiting_list(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.join("a", "alex@example.org")
    h.call("accept_agreement", "a")
    effects = h.call("knock", "a", audio_muted=True)
    assert only(effects, "a", Waiting) == Waiting(1)
    knock = only(effects, "f", Knocking)
    assert knock.participant_id == "p2"
    assert knock.display_name == "alex"
    assert [w.participant_id for w in knock.waiting] == ["p2"]
    assert of(effects, StartMedia) == []

    h.join("b", "bo@example.org")
    h.call("accept_agreement", "b")
    effects = h.call("knock", "b")
    assert only(effects, "b", Waiting) == Waiting(2)
    assert [w.participant_id for w in only(effects, "f", Knocking).waiting] == ["p2", "p3"]


def test_a_second_knock_restates_the_position(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("a", "alex@example.org")
    assert h.call("knock", "a") == [Send("a", Waiting(1))]


def test_admit(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.enter("a", "alex@example.org", PARENT)
    effects = h.call("admit", "f", alex)
    admitted = only(effects, "a", Admitted)
    assert {p.participant_id for p in admitted.room.participants} == {"p1", alex}
    assert admitted.room.waiting == ()  # parents never see the waiting list
    assert only(effects, "f", ParticipantJoined).participant.participant_id == alex
    assert only(effects, "f", WaitingList).waiting == ()
    assert of(effects, StartMedia) == [StartMedia(alex, "a", audio=True, video=False)]
    assert h.room.state_of(alex) is ParticipantState.ADMITTED


def test_pre_join_choices_carry_into_the_room(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.join("a", "alex@example.org")
    h.call("accept_agreement", "a")
    h.call("knock", "a", audio_muted=True, camera_on=True)
    effects = h.call("admit", "f", "p2")
    assert of(effects, StartMedia) == [StartMedia("p2", "a", audio=False, video=True)]
    assert only(effects, "f", ParticipantJoined).participant.audio_muted


def test_admitting_moves_the_line_up(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    a, b, c = (h.enter(x, f"{x}@example.org") for x in "abc")
    effects = h.call("admit", "f", a)
    assert only(effects, "b", Waiting) == Waiting(1)
    assert only(effects, "c", Waiting) == Waiting(2)
    effects = h.call("admit", "f", c)
    assert sent(effects, "b") == []  # still first
    assert h.room.waiting() == (b,)


def test_admit_all_in_knock_order(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    ids = [h.enter(x, f"{x}@example.org") for x in "abc"]
    effects = h.call("admit_all", "f")
    assert [e.participant_id for e in of(effects, StartMedia)] == ids
    assert h.room.waiting() == ()
    # One waiting-list update for the batch, not one per admission.
    assert len([m for m in sent(effects, "f") if isinstance(m, WaitingList)]) == 1
    # The last one in sees everyone.
    admitted = only(effects, "c", Admitted)
    assert {p.participant_id for p in admitted.room.participants} == {"p1", *ids}
    assert h.call("admit_all", "f") == []


def test_deny_turns_away_but_does_not_ban(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.enter("a", "alex@example.org")
    bo = h.enter("b", "bo@example.org")
    effects = h.call("deny", "f", alex)
    assert only(effects, "a", Denied) == Denied()
    assert closes(effects) == {"a": CloseCode.DENIED}
    assert only(effects, "b", Waiting) == Waiting(1)
    assert [w.participant_id for w in only(effects, "f", WaitingList).waiting] == [bo]
    assert h.room.participant(alex) is None
    # The connection closing afterwards is expected and changes nothing.
    assert h.disconnect("a") == []
    # Denied is not removed: they may try again, as a new participant.
    assert h.enter("a2", "alex@example.org") == "p4"
    assert h.room.state_of("p4") is ParticipantState.WAITING


def test_admit_and_deny_need_a_waiting_parent(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    assert error(h.call("admit", "f", alex), "f") is ErrorCode.WRONG_STATE
    assert error(h.call("deny", "f", alex), "f") is ErrorCode.WRONG_STATE
    assert error(h.call("admit", "f", "p99"), "f") is ErrorCode.NO_SUCH_PARTICIPANT


# --- who may moderate --------------------------------------------------------------------------

FACILITATOR_COMMANDS: list[RoomCommand] = [
    AdmitCmd("p3"),
    DenyCmd("p3"),
    AdmitAll(),
    SendToWaiting("p2"),
    Mute("p2"),
    MuteAll(),
    CameraOff("p2"),
    Remove("p2"),
    Lock(),
    Unlock(),
    End(),
]


@pytest.mark.parametrize("command", FACILITATOR_COMMANDS, ids=lambda c: c.type)
def test_parents_cannot_moderate(room_with_facilitator: Harness, command: RoomCommand) -> None:
    h = room_with_facilitator
    h.admitted("a", "alex@example.org")  # p2
    h.enter("b", "bo@example.org")  # p3, waiting
    effects = h.do("a", command)
    assert effects == [
        Send("a", ErrorMessage(ErrorCode.FORBIDDEN, "only a facilitator can do that", command.type))
    ]
    assert h.room.ended is None
    assert h.room.state_of("p3") is ParticipantState.WAITING


@pytest.mark.parametrize("command", FACILITATOR_COMMANDS, ids=lambda c: c.type)
def test_a_waiting_parent_cannot_moderate_either(
    room_with_facilitator: Harness, command: RoomCommand
) -> None:
    h = room_with_facilitator
    h.admitted("a", "alex@example.org")
    h.enter("b", "bo@example.org")
    assert error(h.do("b", command), "b") is ErrorCode.FORBIDDEN


def test_a_facilitator_moderates_only_from_inside(h: Harness) -> None:
    h.enter("a", "alex@example.org")
    h.join("f", "fran@example.org", FACILITATOR)
    assert error(h.call("admit", "f", "p1"), "f") is ErrorCode.WRONG_STATE


def test_facilitators_cannot_be_moderated(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("g", "gus@example.org", FACILITATOR)
    for command in (Mute("p2"), Remove("p2"), SendToWaiting("p2"), CameraOff("p2"), Remove("p1")):
        assert error(h.do("f", command), "f") is ErrorCode.FORBIDDEN


def test_commands_from_an_unknown_connection(h: Harness) -> None:
    assert error(h.call("knock", "nobody"), "nobody") is ErrorCode.NOT_JOINED


def test_hello_twice_on_one_connection(h: Harness) -> None:
    h.join("a", "alex@example.org")
    assert error(h.join("a", "bo@example.org"), "a") is ErrorCode.WRONG_STATE


# --- facilitator controls ----------------------------------------------------------------------


def test_mute_one(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    effects = h.call("mute", "f", alex)
    assert only(effects, "a", MutedByFacilitator) == MutedByFacilitator()
    assert of(effects, SetGate) == [SetGate(alex, audio=False, video=False)]
    assert only(effects, "f", ParticipantUpdated).participant.audio_muted
    assert only(effects, "a", ParticipantUpdated).participant.audio_muted
    assert h.call("mute", "f", alex) == []  # already muted
    # Muting is a nudge, not a gag: the parent may speak again.
    effects = h.do("a", UnmuteSelf())
    assert of(effects, SetGate) == [SetGate(alex, audio=True, video=False)]


def test_mute_all_mutes_parents_only(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("g", "gus@example.org", FACILITATOR)
    a = h.admitted("a", "alex@example.org")
    b = h.admitted("b", "bo@example.org")
    h.enter("c", "cy@example.org")  # waiting: nothing to mute yet
    effects = h.call("mute_all", "f")
    assert {g.participant_id for g in of(effects, SetGate)} == {a, b}
    assert of(effects, SetGate) == [SetGate(a, False, False), SetGate(b, False, False)]
    assert sent(effects, "c") == []
    assert not h.room.participant("p1").audio_muted  # type: ignore[union-attr]


def test_camera_off(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.enter("a", "alex@example.org")
    assert error(h.call("camera_off", "f", alex), "f") is ErrorCode.WRONG_STATE  # waiting
    h.call("admit", "f", alex)
    assert h.call("camera_off", "f", alex) == []  # cameras start off
    h.do("a", CameraSelf(on=True))
    effects = h.call("camera_off", "f", alex)
    assert only(effects, "a", CameraOffByFacilitator) == CameraOffByFacilitator()
    assert of(effects, SetGate) == [SetGate(alex, audio=True, video=False)]


def test_send_to_waiting(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    bo = h.admitted("b", "bo@example.org")
    h.enter("c", "cy@example.org")
    h.do("a", RaiseHand())
    effects = h.call("send_to_waiting", "f", alex)
    assert of(effects, StopMedia) == [StopMedia(alex)]
    assert only(effects, "a", SentToWaiting) == SentToWaiting(2)  # behind those already waiting
    assert only(effects, "f", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.SENT_TO_WAITING)
    # Other parents only see that someone left.
    assert only(effects, "b", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.LEFT)
    assert [w.participant_id for w in only(effects, "f", WaitingList).waiting] == ["p4", alex]
    assert h.room.state_of(alex) is ParticipantState.WAITING
    # Back in without a new knock; the raised hand did not survive the trip.
    effects = h.call("admit", "f", alex)
    assert not only(effects, "f", ParticipantJoined).participant.hand_raised
    assert bo in {p.participant_id for p in only(effects, "a", Admitted).room.participants}


def test_lock_and_unlock(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.admitted("a", "alex@example.org")
    waiting = h.enter("b", "bo@example.org")
    h.join("c", "cy@example.org")  # at the door, agreement not yet accepted
    effects = h.call("lock", "f")
    assert sent(effects, "f") == [RoomLocked()]
    assert sent(effects, "a") == [RoomLocked()]
    assert sent(effects, "b") == []  # the waiting room is not the room
    assert h.call("lock", "f") == []
    assert h.room.locked

    # A new arrival is refused at the door, with a code the page can explain.
    effects = h.join("d", "dee@example.org")
    assert error(effects, "d") is ErrorCode.ROOM_LOCKED
    assert closes(effects) == {"d": CloseCode.ROOM_LOCKED}
    # Someone already at the door is refused when they knock.
    h.call("accept_agreement", "c")
    effects = h.call("knock", "c")
    assert error(effects, "c") is ErrorCode.ROOM_LOCKED
    assert closes(effects) == {"c": CloseCode.ROOM_LOCKED}
    assert h.room.participant_id_for("c") is None
    # Those already waiting can still be let in; facilitators are never locked out.
    assert of(h.call("admit", "f", waiting), StartMedia)
    gus = h.enter("g", "gus@example.org", FACILITATOR)
    assert h.room.state_of(gus) is ParticipantState.ADMITTED

    assert sent(h.call("unlock", "f"), "a") == [RoomUnlocked()]
    assert only(h.join("d2", "dee@example.org"), "d2", Welcome)


def test_locked_room_lets_a_dropped_participant_back(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.disconnect("a")
    h.call("lock", "f")
    h.now += 10
    welcome = only(h.join("a2", "alex@example.org"), "a2", Welcome)
    assert welcome.participant_id == alex
    assert welcome.state is ParticipantState.ADMITTED


# --- removal -----------------------------------------------------------------------------------


def test_removal_sticks(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.admitted("b", "bo@example.org")
    effects = h.call("remove", "f", alex)
    assert only(effects, "a", Removed) == Removed()
    assert closes(effects) == {"a": CloseCode.REMOVED}
    assert of(effects, StopMedia) == [StopMedia(alex)]
    assert only(effects, "f", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.REMOVED)
    assert only(effects, "b", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.LEFT)
    assert h.room.participant(alex) is None
    assert h.disconnect("a") == []

    # Any later connection for that member, whatever the token, is refused.
    for attempt in range(3):
        h.now += 60
        effects = h.join(f"a{attempt}", "alex@example.org")
        assert error(effects, f"a{attempt}") is ErrorCode.REMOVED
        assert closes(effects) == {f"a{attempt}": CloseCode.REMOVED}
    # Even when the room is unlocked and empty of facilitators' attention.
    assert len(h.room) == 2


def test_remove_from_the_waiting_room(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.enter("a", "alex@example.org")
    bo = h.enter("b", "bo@example.org")
    effects = h.call("remove", "f", alex)
    assert closes(effects) == {"a": CloseCode.REMOVED}
    assert of(effects, StopMedia) == []
    assert only(effects, "b", Waiting) == Waiting(1)
    assert [w.participant_id for w in only(effects, "f", WaitingList).waiting] == [bo]
    assert error(h.join("a2", "alex@example.org"), "a2") is ErrorCode.REMOVED


def test_remove_someone_who_dropped(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.disconnect("a")
    effects = h.call("remove", "f", alex)
    assert closes(effects) == {}
    assert only(effects, "f", ParticipantLeft).reason is LeaveReason.REMOVED
    assert error(h.join("a2", "alex@example.org"), "a2") is ErrorCode.REMOVED


# --- self controls -----------------------------------------------------------------------------


def test_self_controls(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    effects = h.do("a", MuteSelf())
    assert of(effects, SetGate) == [SetGate(alex, audio=False, video=False)]
    assert only(effects, "f", ParticipantUpdated).participant.audio_muted
    assert h.do("a", MuteSelf()) == []
    assert of(h.do("a", CameraSelf(on=True)), SetGate) == [SetGate(alex, False, True)]
    assert of(h.do("a", UnmuteSelf()), SetGate) == [SetGate(alex, True, True)]
    effects = h.do("a", RaiseHand())
    assert of(effects, SetGate) == []
    assert only(effects, "f", ParticipantUpdated).participant.hand_raised
    assert not only(h.do("a", LowerHand()), "f", ParticipantUpdated).participant.hand_raised


def test_self_controls_only_in_the_room(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("a", "alex@example.org")
    assert error(h.do("a", MuteSelf()), "a") is ErrorCode.WRONG_STATE
    assert error(h.do("a", RaiseHand()), "a") is ErrorCode.WRONG_STATE


def test_leave(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    effects = h.call("leave", "a")
    assert closes(effects) == {"a": CloseCode.NORMAL}
    assert of(effects, StopMedia) == [StopMedia(alex)]
    assert only(effects, "f", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.LEFT)
    assert h.room.participant(alex) is None
    assert h.disconnect("a") == []
    # No grace after a deliberate leave: coming back means knocking again.
    assert h.enter("a2", "alex@example.org") != alex


def test_leaving_the_waiting_room(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("a", "alex@example.org")
    h.enter("b", "bo@example.org")
    effects = h.call("leave", "a")
    assert only(effects, "b", Waiting) == Waiting(1)
    assert [w.participant_id for w in only(effects, "f", WaitingList).waiting] == ["p3"]


def test_leaving_by_link_while_dropped_skips_the_grace(room_with_facilitator: Harness) -> None:
    """The page's "Leave" while reconnecting comes by the join link, with no connection."""
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.admitted("b", "bo@example.org")
    h.disconnect("a")
    effects = h.call("leave_member", "alex@example.org")
    assert closes(effects) == {}  # nothing to close: the connection was already gone
    assert only(effects, "f", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.LEFT)
    assert only(effects, "b", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.LEFT)
    assert h.room.participant(alex) is None
    assert h.tick(30) == []  # and the grace window has nothing left to do
    assert h.call("leave_member", "alex@example.org") == []  # twice is fine


def test_leaving_by_link_while_the_server_still_sees_a_connection(
    room_with_facilitator: Harness,
) -> None:
    """A half-open connection (the page gave up on it first) is closed with the leave."""
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    effects = h.call("leave_member", "alex@example.org")
    assert closes(effects) == {"a": CloseCode.NORMAL}
    assert of(effects, StopMedia) == [StopMedia(alex)]
    assert only(effects, "f", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.LEFT)
    assert h.disconnect("a") == []


def test_leaving_by_link_from_the_waiting_room(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("a", "alex@example.org")
    h.enter("b", "bo@example.org")
    h.disconnect("a")
    effects = h.call("leave_member", "alex@example.org")
    assert only(effects, "b", Waiting) == Waiting(1)
    assert [w.participant_id for w in only(effects, "f", WaitingList).waiting] == ["p3"]


def test_leaving_by_link_when_not_there(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    assert h.call("leave_member", "nobody@example.org") == []
    h.do("f", End())
    assert h.call("leave_member", "fran@example.org") == []


# --- end ---------------------------------------------------------------------------------------


def test_end_closes_everyone_and_forgets(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.enter("b", "bo@example.org")
    h.join("c", "cy@example.org")
    h.admitted("d", "dee@example.org")
    h.disconnect("d")
    effects = h.call("end", "f")
    assert closes(effects) == {c: CloseCode.ROOM_ENDED for c in "fabc"}
    for conn in "fabc":
        assert sent(effects, conn) == [RoomEnded(EndReason.ENDED_BY_FACILITATOR)]
    assert set(of(effects, StopMedia)) == {StopMedia("p1"), StopMedia(alex)}
    assert effects[-1] == Ended(EndReason.ENDED_BY_FACILITATOR)
    assert h.room.ended is EndReason.ENDED_BY_FACILITATOR
    assert len(h.room) == 0
    assert h.room.next_deadline() is None

    effects = h.join("a2", "alex@example.org")
    assert error(effects, "a2") is ErrorCode.ROOM_ENDED
    assert closes(effects) == {"a2": CloseCode.ROOM_ENDED}
    assert h.call("knock", "b") == []
    assert h.disconnect("b") == []
    assert h.tick(1000) == []
    assert h.check(h.room.terminate(EndReason.TIME_UP, h.now)) == []


def test_terminate_from_the_server(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    effects = h.check(h.room.terminate(EndReason.TIME_UP, h.now))
    assert sent(effects, "f") == [RoomEnded(EndReason.TIME_UP)]
    assert effects[-1] == Ended(EndReason.TIME_UP)


# --- the facilitator failsafe ------------------------------------------------------------------


def test_failsafe_pauses_and_resumes(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    bo = h.admitted("b", "bo@example.org")
    h.enter("c", "cy@example.org")
    effects = h.disconnect("f")
    assert of(effects, StopMedia) == [StopMedia("p1")]
    assert of(effects, PauseMedia) == [PauseMedia(alex), PauseMedia(bo)]
    for conn in "abc":
        assert only(effects, conn, FacilitatorLost) == FacilitatorLost(300.0)
    assert h.room.paused
    assert h.room.next_deadline() == h.now + 30  # the facilitator's grace comes first

    # A parent dropping and coming back while paused does not receive anything.
    h.now += 5
    h.disconnect("a")
    effects = h.join("a2", "alex@example.org")
    assert of(effects, StartMedia) == [StartMedia(alex, "a2", True, False, receiving=False)]
    welcome = only(effects, "a2", Welcome)
    assert welcome.room.paused
    assert welcome.room.pause_seconds_left == 295.0

    h.now += 5
    effects = h.join("f2", "fran@example.org", FACILITATOR)
    assert of(effects, StartMedia) == [StartMedia("p1", "f2", True, False, receiving=True)]
    assert of(effects, ResumeMedia) == [ResumeMedia(alex), ResumeMedia(bo)]
    for conn in ("a2", "b", "c"):
        assert only(effects, conn, FacilitatorBack) == FacilitatorBack()
    assert not h.room.paused
    assert h.tick(1000) == []  # nothing pending: no deadline survived
    assert h.room.ended is None


def test_failsafe_ends_the_room_after_the_timeout(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.disconnect("f")
    # The facilitator's grace runs out first: gone from the room, the room still paused.
    effects = h.tick(30)
    assert only(effects, "a", ParticipantLeft) == ParticipantLeft("p1", LeaveReason.DISCONNECTED)
    assert h.room.paused
    assert h.tick(269.9) == []
    effects = h.tick(0.1)
    assert sent(effects, "a") == [RoomEnded(EndReason.FACILITATOR_LOST)]
    assert closes(effects) == {"a": CloseCode.ROOM_ENDED}
    assert of(effects, StopMedia) == [StopMedia(alex)]
    assert effects[-1] == Ended(EndReason.FACILITATOR_LOST)


def test_a_returning_facilitator_after_their_grace_knocks_and_resumes(
    room_with_facilitator: Harness,
) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.disconnect("f")
    h.tick(60)
    welcome = only(h.join("f2", "fran@example.org", FACILITATOR), "f2", Welcome)
    assert welcome.state is ParticipantState.LOBBY
    assert h.room.paused
    h.call("accept_agreement", "f2")
    effects = h.call("knock", "f2")
    assert of(effects, ResumeMedia) == [ResumeMedia(alex)]
    assert only(effects, "a", FacilitatorBack)


def test_one_facilitator_dropping_is_not_the_last(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("g", "gus@example.org", FACILITATOR)
    h.admitted("a", "alex@example.org")
    effects = h.disconnect("f")
    assert of(effects, PauseMedia) == []
    assert not h.room.paused
    effects = h.call("leave", "g")
    assert of(effects, PauseMedia) == [PauseMedia("p3")]
    assert only(effects, "a", FacilitatorLost)


def test_the_last_facilitator_leaving_on_purpose_pauses_too(
    room_with_facilitator: Harness,
) -> None:
    h = room_with_facilitator
    h.admitted("a", "alex@example.org")
    effects = h.call("leave", "f")
    assert of(effects, PauseMedia) == [PauseMedia("p2")]
    assert h.room.paused


def test_knocks_while_paused_wait(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.disconnect("f")
    bo = h.enter("b", "bo@example.org")
    assert h.room.state_of(bo) is ParticipantState.WAITING
    effects = h.join("f2", "fran@example.org", FACILITATOR)
    # The returning facilitator sees who knocked while they were away.
    assert [w.participant_id for w in only(effects, "f2", Welcome).room.waiting] == [bo]


def test_failsafe_timeout_is_configurable() -> None:
    h = Harness(timeout=60)
    h.enter("f", "fran@example.org", FACILITATOR)
    h.admitted("a", "alex@example.org")
    assert only(h.disconnect("f"), "a", FacilitatorLost) == FacilitatorLost(60.0)
    assert of(h.tick(60), Ended) == [Ended(EndReason.FACILITATOR_LOST)]


# --- reconnection ------------------------------------------------------------------------------


def test_resume_within_grace_without_knocking(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.do("a", MuteSelf())
    effects = h.disconnect("a")
    assert of(effects, StopMedia) == [StopMedia(alex)]
    assert not only(effects, "f", ParticipantUpdated).participant.connected
    assert h.room.next_deadline() == h.now + 30

    h.now += 29
    effects = h.join("a2", "alex@example.org")
    welcome = only(effects, "a2", Welcome)
    assert welcome.participant_id == alex
    assert welcome.resumed
    assert welcome.state is ParticipantState.ADMITTED
    assert welcome.agreement_accepted
    assert alex in {p.participant_id for p in welcome.room.participants}
    assert of(effects, StartMedia) == [StartMedia(alex, "a2", audio=False, video=False)]
    assert only(effects, "f", ParticipantUpdated).participant.connected
    assert closes(effects) == {}
    assert h.room.participant_id_for("a2") == alex
    assert h.room.next_deadline() is None
    assert h.tick(60) == []


def test_waiting_parent_keeps_their_place(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.enter("a", "alex@example.org")
    h.enter("b", "bo@example.org")
    effects = h.disconnect("a")
    assert not only(effects, "f", WaitingList).waiting[0].connected
    h.now += 10
    effects = h.join("a2", "alex@example.org")
    assert only(effects, "a2", Welcome).state is ParticipantState.WAITING
    assert only(effects, "a2", Waiting) == Waiting(1)
    assert only(effects, "f", WaitingList).waiting[0].connected
    assert h.room.waiting()[0] == alex


def test_a_dropped_waiting_parent_can_be_admitted(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.enter("a", "alex@example.org")
    h.disconnect("a")
    effects = h.call("admit", "f", alex)
    assert of(effects, StartMedia) == []  # nothing to negotiate with yet
    assert not only(effects, "f", ParticipantJoined).participant.connected
    effects = h.join("a2", "alex@example.org")
    assert only(effects, "a2", Welcome).state is ParticipantState.ADMITTED
    assert of(effects, StartMedia) == [StartMedia(alex, "a2", True, False)]


def test_agreement_survives_a_reconnect_at_the_door(h: Harness) -> None:
    h.join("a", "alex@example.org")
    h.call("accept_agreement", "a")
    h.disconnect("a")
    welcome = only(h.join("a2", "alex@example.org"), "a2", Welcome)
    assert welcome.agreement_accepted
    assert welcome.state is ParticipantState.LOBBY


def test_after_the_grace_window_they_are_gone(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.admitted("b", "bo@example.org")
    h.disconnect("a")
    assert h.tick(29.9) == []
    effects = h.tick(0.1)
    assert only(effects, "f", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.DISCONNECTED)
    assert only(effects, "b", ParticipantLeft) == ParticipantLeft(alex, LeaveReason.DISCONNECTED)
    assert h.room.participant(alex) is None
    welcome = only(h.join("a2", "alex@example.org"), "a2", Welcome)
    assert welcome.participant_id != alex
    assert welcome.state is ParticipantState.LOBBY
    assert not welcome.resumed


def test_grace_expiry_in_the_waiting_room(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.enter("a", "alex@example.org")
    h.enter("b", "bo@example.org")
    h.disconnect("a")
    effects = h.tick(30)
    assert only(effects, "b", Waiting) == Waiting(1)
    assert [w.participant_id for w in only(effects, "f", WaitingList).waiting] == ["p3"]


def test_newest_connection_wins(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    before = len(h.room)
    effects = h.join("a2", "alex@example.org", name="Alex")
    assert closes(effects) == {"a": CloseCode.REPLACED}
    assert of(effects, StopMedia) == [StopMedia(alex)]
    assert of(effects, StartMedia) == [StartMedia(alex, "a2", True, False)]
    assert only(effects, "a2", Welcome).resumed
    # A new name is news; a new connection alone is not.
    assert only(effects, "f", ParticipantUpdated).participant.display_name == "Alex"
    assert sent(effects, "a") == []
    assert len(h.room) == before  # no ghost
    # The old connection's late messages and its closing are ignored.
    assert error(h.call("knock", "a"), "a") is ErrorCode.NOT_JOINED
    assert h.disconnect("a") == []
    assert h.room.participant(alex).connected  # type: ignore[union-attr]

    effects = h.join("a3", "alex@example.org", name="Alex")
    assert closes(effects) == {"a2": CloseCode.REPLACED}
    assert sent(effects, "f") == []


def test_replacing_a_facilitator_does_not_pause(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    h.admitted("a", "alex@example.org")
    effects = h.join("f2", "fran@example.org", FACILITATOR)
    assert closes(effects) == {"f": CloseCode.REPLACED}
    assert of(effects, PauseMedia) == []
    assert sent(effects, "a") == []


# --- capacity ----------------------------------------------------------------------------------


def test_capacity_counts_everyone_present() -> None:
    h = Harness(capacity=3)
    h.enter("f", "fran@example.org", FACILITATOR)
    h.admitted("a", "alex@example.org")
    h.join("b", "bo@example.org")  # at the door still counts
    effects = h.join("c", "cy@example.org")
    assert error(effects, "c") is ErrorCode.ROOM_FULL
    assert closes(effects) == {"c": CloseCode.ROOM_FULL}
    # A reconnect is not an arrival.
    h.disconnect("a")
    assert only(h.join("a2", "alex@example.org"), "a2", Welcome).resumed
    # A facilitator is never turned away from their own room.
    assert only(h.join("g", "gus@example.org", FACILITATOR), "g", Welcome)
    # A place frees up when someone leaves.
    h.call("leave", "b")
    h.call("leave", "g")
    assert only(h.join("c2", "cy@example.org"), "c2", Welcome)


# --- deadlines ---------------------------------------------------------------------------------


def test_next_deadline(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    assert h.room.next_deadline() is None
    h.admitted("a", "alex@example.org")
    h.disconnect("a")
    assert h.room.next_deadline() == h.now + 30
    h.now += 10
    h.disconnect("f")
    assert h.room.next_deadline() == h.now + 20
    h.tick(30)
    assert h.room.next_deadline() == h.now - 30 + 300


# --- participant ids ---------------------------------------------------------------------------


def test_room_uses_the_id_factory() -> None:
    room = Room(RoomConfig("s1", 12), new_participant_id=lambda: "pfixed")
    welcome = only(room.join("a", "m", PARENT, "Sam", 0.0), "a", Welcome)
    assert welcome.participant_id == "pfixed"


def test_default_participant_ids_are_opaque_and_valid() -> None:
    room = Room(RoomConfig("s1", 12))
    welcome = only(room.join("a", "alex@example.org", PARENT, "Alex", 0.0), "a", Welcome)
    pid = welcome.participant_id
    assert "alex" not in pid
    AdmitCmd(pid)  # the protocol accepts what the room mints
    other = only(room.join("b", "bo@example.org", PARENT, "Bo", 0.0), "b", Welcome)
    assert other.participant_id != pid


def test_restart_media_keeps_gates_and_pause(room_with_facilitator: Harness) -> None:
    h = room_with_facilitator
    alex = h.admitted("a", "alex@example.org")
    h.do("a", MuteSelf())
    h.do("a", CameraSelf(on=True))
    assert h.call("restart_media", "a") == [
        StopMedia(alex),
        StartMedia(alex, "a", audio=False, video=True),
    ]
    h.disconnect("f")
    assert h.call("restart_media", "a")[-1] == StartMedia(alex, "a", False, True, receiving=False)
    # Nothing to restart at the door, or for a connection the room does not know.
    h.join("b", "bo@example.org")
    assert h.call("restart_media", "b") == []
    assert h.call("restart_media", "zz") == []
