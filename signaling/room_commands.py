"""The room's commands by name (``room.knock(conn, now)``...), for callers and tests that do
not hold a client message: each builds the message and hands it to ``handle``."""

from __future__ import annotations

from signaling.effects import ConnId, Effect
from signaling.protocol import (
    AcceptAgreement,
    Admit,
    AdmitAll,
    CameraOff,
    Deny,
    End,
    Knock,
    Leave,
    Lock,
    Mute,
    MuteAll,
    Remove,
    RoomCommand,
    SendToWaiting,
    Unlock,
)


class CommandShortcuts:
    """One method per room command; :class:`~signaling.room.Room` supplies ``handle``."""

    def handle(self, conn: ConnId, command: RoomCommand, now: float) -> list[Effect]:
        raise NotImplementedError

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
