"""The room state machine over time: ending, the facilitator failsafe, reconnection, capacity,
deadlines (the harness is tests/signaling/roomkit.py)."""

from __future__ import annotations

from signaling.effects import (
    Ended,
    PauseMedia,
    ResumeMedia,
    StartMedia,
    StopMedia,
)
from signaling.protocol import Admit as AdmitCmd
from signaling.protocol import (
    CameraSelf,
    CloseCode,
    EndReason,
    ErrorCode,
    FacilitatorBack,
    FacilitatorLost,
    LeaveReason,
    MuteSelf,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantState,
    ParticipantUpdated,
    RoomEnded,
    Waiting,
    WaitingList,
    Welcome,
)
from signaling.room import Room, RoomConfig
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
