"""Changes to one participant that need nothing but the roster: a facilitator's deny, send
back to the waiting room, mute and camera off, and a participant's own mute, camera and hand.

:class:`~signaling.room.Room` checks who may do what, then calls these. Pure: they change the
roster and return the effects to carry out, in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from signaling.effects import Close, CommandRefused, Effect, Send, SetGate, StopMedia
from signaling.protocol import (
    CameraOffByFacilitator,
    CloseCode,
    Denied,
    ErrorCode,
    LeaveReason,
    MutedByFacilitator,
    ParticipantState,
    ParticipantUpdated,
    SentToWaiting,
    close_reason,
)
from signaling.roster import Participant, Roster


def deny(roster: Roster, p: Participant) -> list[Effect]:
    effects = roster.dequeue(p)
    if p.conn is not None:
        effects.append(Send(p.conn, Denied()))
        effects.append(Close(p.conn, CloseCode.DENIED, close_reason(CloseCode.DENIED)))
    roster.forget(p)
    return effects + roster.waiting_list()


def send_to_waiting(roster: Roster, p: Participant) -> list[Effect]:
    p.state = ParticipantState.WAITING
    p.hand_raised = False
    # At the back of the line: the facilitator decides when, and admitting is one tap.
    roster.queue.append(p.participant_id)
    effects: list[Effect] = []
    if p.conn is not None:
        effects.append(StopMedia(p.participant_id))
        effects.append(Send(p.conn, SentToWaiting(roster.position(p))))
    effects += roster.left(p, LeaveReason.SENT_TO_WAITING)
    return effects + roster.waiting_list()


def mute(roster: Roster, targets: Iterable[Participant]) -> list[Effect]:
    effects: list[Effect] = []
    for p in targets:
        if p.audio_muted:
            continue
        p.audio_muted = True
        if p.conn is not None:
            effects.append(Send(p.conn, MutedByFacilitator()))
        effects.append(SetGate(p.participant_id, audio=False, video=p.camera_on))
        effects += roster.to_room(ParticipantUpdated(p.info()))
    return effects


def camera_off(roster: Roster, p: Participant) -> list[Effect]:
    if not p.camera_on:
        return []
    p.camera_on = False
    effects: list[Effect] = []
    if p.conn is not None:
        effects.append(Send(p.conn, CameraOffByFacilitator()))
    effects.append(SetGate(p.participant_id, audio=not p.audio_muted, video=False))
    return effects + roster.to_room(ParticipantUpdated(p.info()))


def update_self(
    roster: Roster,
    p: Participant,
    *,
    audio_muted: bool | None = None,
    camera_on: bool | None = None,
    hand_raised: bool | None = None,
) -> list[Effect]:
    if not p.in_room:
        raise CommandRefused(ErrorCode.WRONG_STATE, "only possible in the room")
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
    return effects + roster.to_room(ParticipantUpdated(p.info()))
