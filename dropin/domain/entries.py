"""What one member sees of one session in a calendar (feed entry or invite). Pure.

The member's relation to the session decides the entry: a confirmed place, a waitlist place, a
cancelled booking, or leading / co-facilitating. Only this member's own links are included;
no other member is ever named. Discreet entries (per group, or the member's own preference)
read "Drop-in" and are CLASS:PRIVATE, with no group name or topic anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from dropin.domain.ical import CalendarEvent, EventStatus, discreet
from dropin.domain.states import SessionStatus

# A member's relation to a session: their booking's status, their facilitator role, "public"
# (neither) or "invited" (an invitation, not yet a place).
Relation = Literal["confirmed", "waitlisted", "cancelled", "lead", "co", "public", "invited"]
# The relations that hold a place in the session, and so a join link.
ACTIVE: frozenset[Relation] = frozenset({"confirmed", "lead", "co"})
UID_DOMAIN = "dropin"


@dataclass(frozen=True)
class SessionFacts:
    """The session as calendars need it."""

    id: str
    title: str
    group_name: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    status: SessionStatus
    sequence: int
    updated_at: datetime


@dataclass(frozen=True)
class Seat:
    """This member's relation to the session, and their links (None where not allowed)."""

    relation: Relation
    revision: int = 0
    waitlist_position: int | None = None
    updated_at: datetime | None = None
    join_url: str | None = None
    page_url: str | None = None


def session_uid(session_id: str) -> str:
    """The iCalendar UID of a session: the same in every feed and invite, for its whole life."""
    return f"session-{session_id}@{UID_DOMAIN}"


def _summary(facts: SessionFacts, seat: Seat, quiet: bool) -> str:
    base = "Drop-in" if quiet else facts.title
    if seat.relation == "lead":
        return f"{base} (leading)"
    if seat.relation == "co":
        return f"{base} (co-facilitating)"
    if seat.relation == "waitlisted":
        where = f" #{seat.waitlist_position}" if seat.waitlist_position else ""
        return f"{base} (waitlist{where})"
    return base


def _status(facts: SessionFacts, seat: Seat) -> EventStatus:
    if facts.status == SessionStatus.CANCELLED or seat.relation == "cancelled":
        return "CANCELLED"
    if seat.relation in ("waitlisted", "invited"):
        return "TENTATIVE"
    return "CONFIRMED"


def _description(facts: SessionFacts, seat: Seat) -> str:
    lines: list[str] = []
    if facts.status == SessionStatus.CANCELLED:
        lines.append("This session has been cancelled.")
    elif seat.relation == "cancelled":
        lines.append("You cancelled your place in this session.")
    elif seat.relation == "waitlisted":
        lines.append(
            "You are on the waitlist. If a place frees up it is yours and we will email you."
        )
    elif seat.relation in ("lead", "co"):
        role = "leading" if seat.relation == "lead" else "co-facilitating"
        lines.append(f"You are {role} this drop-in ({facts.group_name}).")
    elif seat.relation == "confirmed":
        lines.append(f"Your place in {facts.group_name} is booked.")
    elif seat.relation == "invited":
        lines.append(f"You are invited to this drop-in of {facts.group_name}.")
    elif seat.relation == "public":
        lines.append(f"A drop-in of {facts.group_name}. Ask the organizer for a place.")
    if seat.join_url and facts.status != SessionStatus.CANCELLED and seat.relation != "cancelled":
        lines.append(f"Join: {seat.join_url}")
    if seat.page_url:
        lines.append(f"Your drop-ins (book, cancel): {seat.page_url}")
    lines.append("Nothing is recorded. What is said in the group stays in the group.")
    return "\n".join(lines)


def entry(facts: SessionFacts, seat: Seat, *, quiet: bool) -> CalendarEvent:
    """The calendar entry of ``facts`` for a member whose relation is ``seat``.

    ``quiet`` is the discreet setting in force for this member.
    """
    active = facts.status != SessionStatus.CANCELLED and seat.relation != "cancelled"
    join = seat.join_url if active else None
    last = max(facts.updated_at, seat.updated_at or facts.updated_at)
    event = CalendarEvent(
        uid=session_uid(facts.id),
        sequence=facts.sequence + seat.revision,
        starts_at=facts.starts_at,
        ends_at=facts.ends_at,
        timezone=facts.timezone,
        summary=_summary(facts, seat, quiet),
        last_modified=last,
        description=_description(facts, seat),
        url=join or seat.page_url,
        location=join,
        status=_status(facts, seat),
    )
    if not quiet:
        return event
    if join:
        return discreet(event, summary=event.summary)
    # No join link (waitlisted, cancelled, public): keep only the member's own page link.
    text = f"Your drop-ins: {seat.page_url}" if seat.page_url else ""
    return replace(discreet(event, summary=event.summary), description=text, location=None)
