"""The facilitator failsafe: while no admitted facilitator is connected, parents get no media
and everyone is told; the room ends at the deadline unless a facilitator comes back.

:class:`~signaling.room.Room` calls :meth:`Failsafe.pause` when a facilitator drops or leaves
and :meth:`Failsafe.resume` when one is back, and ends the room in ``tick`` once the deadline
has passed. Pure: ``now`` passed in.
"""

from __future__ import annotations

from signaling.effects import Effect, PauseMedia, ResumeMedia
from signaling.protocol import FacilitatorBack, FacilitatorLost
from signaling.roster import Roster


class Failsafe:
    """The pause: None while a facilitator is present, else when the room ends without one."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline: float | None = None

    def pause(self, roster: Roster, now: float) -> list[Effect]:
        """Start the countdown if no facilitator is left (and it is not running already)."""
        if self.deadline is not None or roster.facilitator_present():
            return []
        self.deadline = now + self.timeout
        lost = FacilitatorLost(seconds_left=self.timeout)
        paused: list[Effect] = [PauseMedia(q.participant_id) for q in roster.parents_in_media()]
        return paused + roster.to_connected(lost)

    def resume(self, roster: Roster) -> list[Effect]:
        """Stop the countdown if a facilitator is back."""
        if self.deadline is None or not roster.facilitator_present():
            return []
        self.deadline = None
        resumed: list[Effect] = [ResumeMedia(q.participant_id) for q in roster.parents_in_media()]
        return resumed + roster.to_connected(FacilitatorBack())
