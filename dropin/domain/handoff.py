"""Facilitator handoffs: what is due for a session as it approaches. Pure.

* **Notice** — the lead is emailed :attr:`HandoffPolicy.notice` ahead (default 14 days) with a
  one-click confirm and a "can't make it" link.
* **Hand over** — still unconfirmed :attr:`HandoffPolicy.confirm_by` before (default 72 h), and
  at least :attr:`HandoffPolicy.grace` after the notice (someone assigned late gets a day to
  answer): the co-facilitator is asked to lead and a new co is chosen
  (:func:`dropin.domain.rotation.promote_co_to_lead`). A lead the organizer picked by hand
  counts as confirmed.
* **Alert** — no lead :attr:`HandoffPolicy.alert_at` before (default 48 h): the organizer is
  emailed. A session is never silently left without a lead.

Each step happens once; the caller records when it did (``*_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

HandoffStep = Literal["notify_lead", "hand_over", "alert_organizer"]


@dataclass(frozen=True)
class HandoffPolicy:
    notice: timedelta = timedelta(days=14)
    confirm_by: timedelta = timedelta(hours=72)
    alert_at: timedelta = timedelta(hours=48)
    grace: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class HandoffState:
    """A session's facilitation as the handoff rules see it."""

    starts_at: datetime
    status: str
    lead: str | None
    lead_notified_at: datetime | None = None
    lead_confirmed_at: datetime | None = None
    handed_over_at: datetime | None = None
    alerted_at: datetime | None = None


def due(state: HandoffState, policy: HandoffPolicy, now: datetime) -> list[HandoffStep]:
    """The handoff steps due for ``state`` at ``now``, in the order to take them."""
    if state.status != "scheduled" or now >= state.starts_at:
        return []
    left = state.starts_at - now
    if state.lead is None:
        if state.alerted_at is None and left <= policy.alert_at:
            return ["alert_organizer"]
        return []
    if state.lead_confirmed_at is not None:
        return []
    if state.lead_notified_at is None:
        return ["notify_lead"] if left <= policy.notice else []
    if (
        state.handed_over_at is None
        and left <= policy.confirm_by
        and now - state.lead_notified_at >= policy.grace
    ):
        return ["hand_over"]
    return []
