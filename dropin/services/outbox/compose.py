"""What an outbox row says, composed from the state when its turn comes.

:func:`compose_row` reads everything a message needs in one query (:class:`RowContext`), asks
the pure rules whether it is still owed (:mod:`dropin.domain.owed`), and has the pure wording
(:func:`dropin.domain.messages.compose`) written out as an email (:mod:`dropin.domain.imip`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from email.headerregistry import Address
from email.utils import parseaddr

from sqlalchemy import and_, bindparam, case, func, select
from sqlalchemy.engine import Row

from dropin.domain import owed
from dropin.domain.entries import ACTIVE, Relation, Seat, SessionFacts
from dropin.domain.imip import RenderedMail, render_imip, render_notice, rendered
from dropin.domain.messages import (
    Composed,
    MemberLinks,
    Recipient,
    Sender,
    compose,
    compose_about_member,
)
from dropin.domain.states import BookingStatus, MessageKind, SessionStatus
from dropin.services.feeds import LinkMaker, session_facts
from dropin.services.handoff import handoff_url, swap_url
from dropin.services.member_page import rsvp_url
from dropin.store.db import Database
from dropin.store.tables import bookings, groups, members, outbox, series, sessions


@dataclass(frozen=True)
class Outgoing:
    """A composed message (bytes and envelope), or the reason it is no longer owed."""

    message: RenderedMail | None
    skip_reason: str | None = None


@dataclass(frozen=True)
class SessionContext:
    facts: SessionFacts
    lead_member_id: str | None
    co_member_id: str | None
    rotation_note: str | None
    group_discreet: bool
    organizer_email: str | None


@dataclass(frozen=True)
class MemberContext:
    id: str
    display_name: str
    email: str
    timezone: str | None
    discreet: bool | None  # None: the group's setting
    link_nonce: str
    group_name: str  # the member's own group (for a message about them, without a session)
    group_discreet: bool


@dataclass(frozen=True)
class BookingContext:
    status: BookingStatus
    revision: int
    updated_at: datetime
    waitlist_position: int | None


@dataclass(frozen=True)
class RowContext:
    """Everything one outbox row's message depends on, as it is now."""

    row_id: int
    kind: MessageKind
    session: SessionContext | None  # None: deleted since, or a message about the member only
    member: MemberContext | None  # None: deleted since, or an organizer alert
    booking: BookingContext | None  # None: the member never booked this session
    asker_id: str | None  # swap requests: the colleague asking
    asker_name: str | None


def message_id(row_id: int, mail_from: str) -> str:
    """The Message-ID of an outbox row: fixed, so a resend is recognised as the same mail."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "dropin.invalid"
    return f"outbox-{row_id}@{domain}"


async def compose_row(
    db: Database, links: LinkMaker, mail_from: str, row_id: int, *, now: datetime
) -> Outgoing:
    """The message row ``row_id`` owes, composed from the current state."""
    ctx = await load_context(db, row_id)
    session, member = ctx.session, ctx.member
    if ctx.kind in owed.ABOUT_THE_MEMBER:
        if member is None:
            return Outgoing(None, "member no longer exists")
        return _about_member(ctx, member, links, mail_from, now)
    if session is None:
        return Outgoing(None, "session no longer exists")
    if ctx.kind == MessageKind.ORGANIZER_ALERT:
        return _organizer_alert(ctx, session, mail_from, now)
    if member is None:
        return Outgoing(None, "member no longer exists")
    facts, booking = session.facts, ctx.booking
    relation = owed.relation(
        member.id,
        session.lead_member_id,
        session.co_member_id,
        booking.status if booking is not None else None,
    )
    skip = owed.why_not_owed(ctx.kind, facts.status, relation, now, facts.starts_at)
    asking = ctx.kind == MessageKind.SWAP_REQUEST
    if not skip and asking and ctx.asker_id not in (session.lead_member_id, session.co_member_id):
        skip = "the colleague asking is no longer in the session"
    if skip:
        return Outgoing(None, skip)
    seat = Seat(
        relation=relation,
        revision=booking.revision if booking is not None else 0,
        waitlist_position=booking.waitlist_position if booking is not None else None,
        updated_at=booking.updated_at if booking is not None else None,
    )
    quiet = session.group_discreet if member.discreet is None else member.discreet
    recipient = Recipient(
        display_name=member.display_name,
        email=member.email,
        timezone=member.timezone or facts.timezone,
        quiet=quiet,
    )
    sender_name, sender_email = parseaddr(mail_from)
    composed = compose(
        ctx.kind,
        facts,
        seat,
        recipient,
        _member_links(links, ctx, facts, member, relation),
        Sender(sender_email, facts.group_name if not quiet else sender_name or "Drop-in"),
        now=now,
        extra=(ctx.asker_name or "A colleague") if asking else "",
    )
    to = _address(member.display_name, member.email)
    return Outgoing(_render(composed, to, mail_from, row_id, now))


def _member_links(
    links: LinkMaker, ctx: RowContext, facts: SessionFacts, member: MemberContext, rel: Relation
) -> MemberLinks:
    """The recipient's own links that this message may carry (None where not allowed)."""
    sid, mid, ends, kind = facts.id, member.id, facts.ends_at, ctx.kind
    active = rel in ACTIVE and facts.status == SessionStatus.SCHEDULED
    invited = kind == MessageKind.SESSION_INVITATION
    return MemberLinks(
        page_url=links.page(mid, member.link_nonce),
        feed_url=links.feed(mid, member.link_nonce),
        join_url=links.join(sid, mid, ends) if active else None,
        accept_url=rsvp_url(links, sid, mid, "accept", ends) if invited else None,
        decline_url=(
            rsvp_url(links, sid, mid, "decline", ends)
            if rel in ("confirmed", "waitlisted") or invited
            else None
        ),
        confirm_url=handoff_url(links, sid, mid, "confirm", ends) if rel == "lead" else None,
        release_url=(
            handoff_url(links, sid, mid, "release", ends) if rel in ("lead", "co") else None
        ),
        swap_url=(
            swap_url(links, sid, ctx.asker_id, mid, ends)
            if kind == MessageKind.SWAP_REQUEST and ctx.asker_id
            else None
        ),
    )


def _about_member(
    ctx: RowContext, member: MemberContext, links: LinkMaker, mail_from: str, now: datetime
) -> Outgoing:
    """A message about the member, not a session (new links): to their address as it is now."""
    quiet = member.group_discreet if member.discreet is None else member.discreet
    composed = compose_about_member(
        ctx.kind,
        Recipient(member.display_name, member.email, member.timezone or "UTC", quiet=quiet),
        MemberLinks(
            page_url=links.page(member.id, member.link_nonce),
            feed_url=links.feed(member.id, member.link_nonce),
        ),
        Sender(parseaddr(mail_from)[1], member.group_name),
    )
    to = _address(member.display_name, member.email)
    return Outgoing(_render(composed, to, mail_from, ctx.row_id, now))


def _organizer_alert(
    ctx: RowContext, session: SessionContext, mail_from: str, now: datetime
) -> Outgoing:
    facts = session.facts
    if session.lead_member_id is not None:
        return Outgoing(None, "a lead was found since")
    if facts.status != SessionStatus.SCHEDULED:
        return Outgoing(None, "session cancelled since")
    if not session.organizer_email:
        return Outgoing(None, "the group has no organizer_email")
    composed = compose(
        MessageKind.ORGANIZER_ALERT,
        facts,
        Seat("public"),
        Recipient("organizer", session.organizer_email, facts.timezone, quiet=False),
        MemberLinks(page_url="", feed_url=""),
        Sender(parseaddr(mail_from)[1], facts.group_name),
        now=now,
        extra=session.rotation_note or "",
    )
    composed = replace(
        composed,
        text=composed.text.replace("<id>", facts.id),
        html=composed.html.replace("&lt;id&gt;", facts.id),
    )
    to = _address("Organizer", session.organizer_email)
    return Outgoing(_render(composed, to, mail_from, ctx.row_id, now))


def _render(
    composed: Composed, to: Address, mail_from: str, row_id: int, now: datetime
) -> RenderedMail:
    """The email's bytes and envelope: an iMIP invite when it carries a calendar."""
    sender = _address(composed.from_name, parseaddr(mail_from)[1])
    mid = message_id(row_id, mail_from)
    body = {"subject": composed.subject, "text": composed.text, "html": composed.html}
    if composed.calendar is not None and composed.method is not None:
        data = render_imip(
            **body,
            sender=sender,
            recipient=to,
            calendar=composed.calendar,
            method=composed.method,
            message_id=mid,
            date=now,
        )
    else:
        data = render_notice(**body, sender=sender, recipient=to, message_id=mid, date=now)
    return rendered(data, sender=sender, recipient=to, message_id=mid, date=now)


def _address(name: str, email: str) -> Address:
    local, _, domain = email.rpartition("@")
    return Address(name, local, domain)


# Loading ---------------------------------------------------------------------------------------

_asker = members.alias("asker")
_member_group = groups.alias("member_group")
_ahead = bookings.alias("ahead")


# Built once (a worker runs it for every message it sends).
# Waitlisted: 1 + how many wait ahead (evaluated only for a waitlisted booking).
position = case(
    (
        bookings.c.status == BookingStatus.WAITLISTED,
        1
        + select(func.count())
        .where(
            _ahead.c.session_id == outbox.c.session_id,
            _ahead.c.status == BookingStatus.WAITLISTED,
            _ahead.c.waitlist_seq < bookings.c.waitlist_seq,
        )
        .scalar_subquery(),
    ),
    else_=None,
)
_CONTEXT_QUERY = (
    select(
        outbox.c.id.label("row_id"),
        outbox.c.kind,
        outbox.c.other_member_id,
        _asker.c.display_name.label("asker_name"),
        sessions,
        series.c.title,
        groups.c.name.label("group_name"),
        groups.c.timezone.label("group_timezone"),
        groups.c.discreet.label("group_discreet"),
        groups.c.organizer_email,
        *(c.label(f"m_{c.name}") for c in members.c),
        _member_group.c.name.label("mg_name"),
        _member_group.c.discreet.label("mg_discreet"),
        bookings.c.id.label("b_id"),
        bookings.c.status.label("b_status"),
        bookings.c.revision.label("b_revision"),
        bookings.c.updated_at.label("b_updated_at"),
        position.label("b_position"),
    )
    .select_from(
        outbox.outerjoin(sessions, sessions.c.id == outbox.c.session_id)
        .outerjoin(series, series.c.id == sessions.c.series_id)
        .outerjoin(groups, groups.c.id == sessions.c.group_id)
        .outerjoin(members, members.c.id == outbox.c.member_id)
        .outerjoin(_member_group, _member_group.c.id == members.c.group_id)
        .outerjoin(_asker, _asker.c.id == outbox.c.other_member_id)
        .outerjoin(
            bookings,
            and_(
                bookings.c.session_id == outbox.c.session_id,
                bookings.c.member_id == outbox.c.member_id,
            ),
        )
    )
    .where(outbox.c.id == bindparam("b_row_id"))
)


async def load_context(db: Database, row_id: int) -> RowContext:
    """Row ``row_id`` with its session, series, group, member, booking and the asker's name.

    One query: this runs for every message a worker sends.
    """
    async with db.read() as conn:
        row = (await conn.execute(_CONTEXT_QUERY, {"b_row_id": row_id})).one()
    return _context(row)


def _context(row: Row[tuple[object, ...]]) -> RowContext:
    r = row._mapping
    return RowContext(
        row_id=r["row_id"],
        kind=MessageKind(r["kind"]),
        session=None if r["id"] is None else _session(row),
        member=(
            None
            if r["m_id"] is None
            else MemberContext(
                id=r["m_id"],
                display_name=r["m_display_name"],
                email=r["m_email"],
                timezone=r["m_timezone"],
                discreet=r["m_discreet"],
                link_nonce=r["m_link_nonce"],
                group_name=r["mg_name"],
                group_discreet=bool(r["mg_discreet"]),
            )
        ),
        booking=(
            None
            if r["b_id"] is None
            else BookingContext(
                status=BookingStatus(r["b_status"]),
                revision=r["b_revision"],
                updated_at=r["b_updated_at"],
                waitlist_position=r["b_position"],
            )
        ),
        asker_id=r["other_member_id"],
        asker_name=r["asker_name"],
    )


def _session(row: Row[tuple[object, ...]]) -> SessionContext:
    r = row._mapping
    facts = session_facts(row, r["group_name"], r["group_timezone"])
    return SessionContext(
        facts=replace(facts, status=SessionStatus(facts.status)),
        lead_member_id=r["lead_member_id"],
        co_member_id=r["co_member_id"],
        rotation_note=r["rotation_note"],
        group_discreet=bool(r["group_discreet"]),
        organizer_email=r["organizer_email"],
    )
