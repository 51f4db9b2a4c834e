"""The member's own page ("my drop-ins") and one-click RSVP links from emails.

Both work without an account: the page through the member's page token, RSVP links through
signed, expiring tokens naming one session, one member and one action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select

from dropin import link_paths
from dropin.domain import tokens
from dropin.domain.states import BookingStatus, SessionStatus
from dropin.errors import Conflict, NotFound
from dropin.services import bookings as booking_service
from dropin.services.feeds import LinkMaker, member_by_token
from dropin.services.links import link_subject
from dropin.services.sessions import list_sessions
from dropin.services.views import BookingView, SessionView
from dropin.store.db import Database
from dropin.store.tables import bookings

RSVP = "rsvp"
RsvpAnswer = Literal["accept", "decline"]
# The join link shows on the page from this long before the start (the room opens then).
JOIN_OPENS = timedelta(minutes=15)
# The page lists every session the member has a place in, and the next few others to book.
PAGE_DAYS = 730
BOOKABLE_SHOWN = 6


@dataclass(frozen=True)
class PageEntry:
    session: SessionView
    relation: str | None  # confirmed, waitlisted, lead, co, or None (no place)
    waitlist_position: int | None
    join_url: str | None


@dataclass(frozen=True)
class MemberPage:
    member_id: str
    display_name: str
    group_name: str
    timezone: str
    feed_url: str
    page_url: str
    entries: tuple[PageEntry, ...]


async def load_page(db: Database, links: LinkMaker, token: str, *, now: datetime) -> MemberPage:
    """Upcoming sessions of the member's group with the member's place in each."""
    async with db.read() as conn:
        member = await member_by_token(conn, links.secret, tokens.PAGE, token)
        mine = {
            r.session_id: r
            for r in (
                await conn.execute(
                    select(bookings.c.session_id, bookings.c.status, bookings.c.waitlist_seq).where(
                        bookings.c.member_id == member.id,
                        bookings.c.status != BookingStatus.CANCELLED.value,
                    )
                )
            ).all()
        }
    upcoming = await list_sessions(
        db,
        member.group_id,
        start=now - timedelta(hours=3),
        end=now + timedelta(days=PAGE_DAYS),
        now=now,
    )
    entries = []
    others = 0
    for s in upcoming:
        if s.ends_at <= now:
            continue
        relation: str | None = None
        position = None
        if s.lead and s.lead.member_id == member.id:
            relation = "lead"
        elif s.co and s.co.member_id == member.id:
            relation = "co"
        elif s.id in mine:
            relation = mine[s.id].status
            if relation == BookingStatus.WAITLISTED:
                position = await _position(db, s.id, mine[s.id].waitlist_seq)
        if relation is None:
            others += 1
            if others > BOOKABLE_SHOWN or s.status != SessionStatus.SCHEDULED:
                continue
        near = s.starts_at - JOIN_OPENS <= now < s.ends_at
        join = (
            links.join(s.id, member.id, s.ends_at)
            if near
            and s.status == SessionStatus.SCHEDULED
            and relation in ("confirmed", "lead", "co")
            else None
        )
        entries.append(PageEntry(s, relation, position, join))
    return MemberPage(
        member_id=member.id,
        display_name=member.display_name,
        group_name=member.group_name,
        timezone=member.timezone or member.group_timezone,
        feed_url=links.feed(member.id, member.link_nonce),
        page_url=links.page(member.id, member.link_nonce),
        entries=tuple(entries),
    )


async def _position(db: Database, session_id: str, seq: int | None) -> int | None:
    if seq is None:
        return None
    return await booking_service.position_in_waitlist(db, session_id, seq)


async def page_member_id(db: Database, links: LinkMaker, token: str) -> str:
    async with db.read() as conn:
        member = await member_by_token(conn, links.secret, tokens.PAGE, token)
    return str(member.id)


async def book_from_page(
    db: Database, links: LinkMaker, token: str, session_id: str, *, now: datetime
) -> BookingView:
    """Book a place (or the waitlist) for the page's member."""
    member_id = await page_member_id(db, links, token)
    return await booking_service.book_seat(db, session_id, member_id, now=now)


async def cancel_from_page(
    db: Database, links: LinkMaker, token: str, session_id: str, *, now: datetime
) -> BookingView | None:
    """Cancel the page's member's place or waitlist entry; None when there was none."""
    member_id = await page_member_id(db, links, token)
    return await _cancel_for(db, session_id, member_id, now)


async def _cancel_for(
    db: Database, session_id: str, member_id: str, now: datetime
) -> BookingView | None:
    async with db.read() as conn:
        found = (
            await conn.execute(
                select(bookings.c.id, bookings.c.status).where(
                    bookings.c.session_id == session_id, bookings.c.member_id == member_id
                )
            )
        ).first()
    if found is None or found.status == BookingStatus.CANCELLED:
        return None
    return await booking_service.cancel_booking(db, found.id, now=now)


# RSVP links --------------------------------------------------------------------------------


def rsvp_url(
    links: LinkMaker, session_id: str, member_id: str, action: RsvpAnswer, expires_at: datetime
) -> str:
    """A signed link that books (accept) or cancels (decline) one member's place."""
    token = tokens.sign(
        links.secret, RSVP, {"s": session_id, "m": member_id, "a": action}, expires_at
    )
    return link_paths.RSVP.url(links.public_url, token=token)


@dataclass(frozen=True)
class Rsvp:
    session_id: str
    member_id: str
    action: RsvpAnswer


def read_rsvp(secret: str, token: str, now: datetime) -> Rsvp:
    """The RSVP in ``token``, or NotFound (tampered) / Gone (expired)."""
    subject = link_subject(secret, RSVP, token, now)
    s, m, a = (subject.get(k) for k in ("s", "m", "a"))
    if not isinstance(s, str) or not isinstance(m, str) or a not in ("accept", "decline"):
        raise NotFound("this link is not valid", code="link_invalid")
    return Rsvp(s, m, "accept" if a == "accept" else "decline")


PageOutcome = Literal["booked", "waitlisted", "already_booked", "cancelled", "nothing_to_cancel"]


async def apply_rsvp(db: Database, rsvp: Rsvp, *, now: datetime) -> PageOutcome:
    """Carry out an RSVP. Safe to repeat: the second click reports the state it finds."""
    if rsvp.action == "accept":
        try:
            view = await booking_service.book_seat(db, rsvp.session_id, rsvp.member_id, now=now)
        except Conflict as exc:
            if exc.code == "already_booked":
                return "already_booked"
            raise
        return "booked" if view.status == BookingStatus.CONFIRMED else "waitlisted"
    cancelled = await _cancel_for(db, rsvp.session_id, rsvp.member_id, now)
    return "cancelled" if cancelled is not None else "nothing_to_cancel"
