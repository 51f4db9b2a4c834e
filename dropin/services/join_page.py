"""What the join page shows before anyone connects: the session, the member, whether the
room is open, and where to go next if it is not.

The page (``signaling/static/join.html``) fetches this once from ``/j/{token}/info``. Every
state a join link can be in is a ``status`` here rather than an error, so the page can always
say something calm and useful: too early (with a countdown), ended or cancelled (with the next
session), removed, no place. Only a link that is not genuine or has expired is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from dropin.domain.states import SessionStatus
from dropin.services.common import group_row, member_row
from dropin.services.feeds import LinkMaker
from dropin.services.links import RoomPlace, read_join_token, room_place
from dropin.services.rooms import CLOSES_AFTER, OPENS_BEFORE
from dropin.services.sessions import get_session, list_sessions
from dropin.services.views import SessionView
from dropin.store.db import Database

# How far ahead the page looks for "the next drop-in".
NEXT_WITHIN = timedelta(days=400)

JoinStatus = Literal["open", "too_early", "ended", "cancelled", "removed", "no_place"]


@dataclass(frozen=True)
class NextSession:
    title: str
    starts_at: datetime
    when: str


@dataclass(frozen=True)
class JoinInfo:
    status: JoinStatus
    session_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    opens_at: datetime
    # Whole seconds until the room opens (0 once open): the page counts down from this, so
    # the member's own clock does not matter.
    seconds_until_open: int
    timezone: str
    # e.g. "Tuesday 14 March 2028, 19:30 to 20:45", in the member's zone.
    when: str
    # The member's first name, to prefill the name others will see.
    display_name: str
    role: str | None
    # Keep the browser tab's title neutral (someone may glance at the screen).
    discreet: bool
    next_session: NextSession | None
    page_url: str
    feed_url: str


def describe(start: datetime, end: datetime, zone: str) -> str:
    """A session's local day and times, e.g. ``Tuesday 14 March 2028, 19:30 to 20:45``."""
    tz = ZoneInfo(zone)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    day = f"{local_start:%A} {local_start.day} {local_start:%B %Y}"
    return f"{day}, {local_start:%H:%M} to {local_end:%H:%M}"


def first_name(display_name: str) -> str:
    """What the room calls a member by default: the first word of their name, at most 40."""
    words = display_name.split()
    return (words[0] if words else display_name)[:40]


def room_status(session: SessionView, place: RoomPlace, now: datetime) -> JoinStatus:
    """What the join page shows for this member and session at ``now``."""
    if session.status == SessionStatus.CANCELLED:
        return "cancelled"
    if now >= session.ends_at + CLOSES_AFTER:
        # (Until then the room is still open: a drop-in that overruns can be rejoined.)
        return "ended"
    if place.role is None:
        return "no_place"
    if place.removed:
        return "removed"
    if now < session.starts_at - OPENS_BEFORE:
        return "too_early"
    return "open"


async def _next_session(db: Database, session: SessionView, now: datetime) -> SessionView | None:
    """The group's next session after this one that is still ahead and not cancelled."""
    upcoming = await list_sessions(
        db,
        session.group_id,
        start=session.starts_at,
        end=max(session.starts_at, now) + NEXT_WITHIN,
        now=now,
    )
    return next(
        (
            s
            for s in upcoming
            if s.starts_at > session.starts_at
            and s.starts_at > now
            and s.status != SessionStatus.CANCELLED
        ),
        None,
    )


async def join_info(db: Database, links: LinkMaker, token: str, *, now: datetime) -> JoinInfo:
    """Everything the join page needs (NotFound / Gone only for a bad or expired link)."""
    claim = read_join_token(links.secret, token, now)
    session = await get_session(db, claim.session_id)
    async with db.read() as conn:
        member = await member_row(conn, claim.member_id)
        group = await group_row(conn, session.group_id)
    zone = member.timezone or group.timezone
    place = await room_place(db, session.id, member.id)
    role = place.role
    opens_at = session.starts_at - OPENS_BEFORE
    status = room_status(session, place, now)
    following = await _next_session(db, session, now)
    quiet = group.discreet if member.discreet is None else member.discreet
    return JoinInfo(
        status=status,
        session_id=session.id,
        title=session.title,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        opens_at=opens_at,
        seconds_until_open=max(0, int((opens_at - now).total_seconds() + 0.999)),
        timezone=zone,
        when=describe(session.starts_at, session.ends_at, zone),
        display_name=first_name(member.display_name),
        role=role,
        discreet=bool(quiet),
        next_session=None
        if following is None
        else NextSession(
            following.title,
            following.starts_at,
            describe(following.starts_at, following.ends_at, zone),
        ),
        page_url=links.page(member.id, member.link_nonce),
        feed_url=links.feed(member.id, member.link_nonce),
    )


__all__ = ["JoinInfo", "NextSession", "describe", "first_name", "join_info"]
