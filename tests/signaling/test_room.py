"""The room state machine at the door and inside: waiting room, moderation, removal, self
controls (the harness is tests/signaling/roomkit.py)."""

from __future__ import annotations

import pytest

from signaling.effects import (
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
    ErrorCode,
    ErrorMessage,
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
    RoomCommand,
    RoomLocked,
    RoomUnlocked,
    SendToWaiting,
    SentToWaiting,
    Unlock,
    UnmuteSelf,
    Waiting,
    WaitingList,
    Welcome,
)
from signaling.protocol import Deny as DenyCmd
from tests.signaling.roomkit import (
    FACILITATOR,
    PARENT,
    Harness,
    closes,
    error,
    of,
    only,
    sent,
)

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
