"""Calendar feeds: a private feed per member, a feed per public group.

A feed's version (its ETag) comes from one cheap aggregate query, so a calendar app polling
an unchanged feed gets a 304 without the feed being built; built feeds are kept in a small
in-memory cache keyed by that version. DTSTAMP is the feed's last change, so the bytes (and
the ETag) only change when something a member would see changes.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, case, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin import link_paths
from dropin.domain import tokens
from dropin.domain.entries import Seat, SessionFacts, entry
from dropin.domain.ical import CalendarEvent, build_feed
from dropin.domain.states import BookingStatus, SessionStatus
from dropin.errors import NotFound
from dropin.services.links import join_url
from dropin.store.db import Database
from dropin.store.tables import bookings, groups, members, series, sessions

# Cancelled sessions and bookings stay visible (as STATUS:CANCELLED) this long, so calendar
# apps remove them in place instead of leaving a stale entry behind.
KEEP_CANCELLED = timedelta(days=30)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LinkMaker:
    """Builds a member's personal URLs (join, feed, page) from settings."""

    secret: str
    public_url: str

    def join(self, session_id: str, member_id: str, ends_at: datetime) -> str:
        return join_url(self.secret, self.public_url, session_id, member_id, ends_at)

    def feed(self, member_id: str, nonce: str) -> str:
        token = tokens.member_token(self.secret, tokens.FEED, member_id, nonce)
        return link_paths.MEMBER_FEED.url(self.public_url, token=token)

    def page(self, member_id: str, nonce: str) -> str:
        token = tokens.member_token(self.secret, tokens.PAGE, member_id, nonce)
        return link_paths.MEMBER_PAGE.url(self.public_url, token=token)


@dataclass(frozen=True)
class Feed:
    body: bytes
    etag: str
    last_modified: datetime


@dataclass
class FeedCache:
    """The last built feeds by (owner, version); bounded, least recently used goes first."""

    size: int = 256
    entries: OrderedDict[tuple[str, str], Feed] = field(default_factory=OrderedDict)

    def get(self, key: tuple[str, str]) -> Feed | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, str], feed: Feed) -> None:
        self.entries[key] = feed
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


# What a member's links need to know about their group.
_GROUP_OF_MEMBER = (
    groups.c.name.label("group_name"),
    groups.c.timezone.label("group_timezone"),
    groups.c.discreet.label("group_discreet"),
    groups.c.updated_at.label("group_updated_at"),
)


async def member_by_token(conn: AsyncConnection, secret: str, purpose: str, token: str) -> Row[Any]:
    """The member whose current ``purpose`` token is ``token``, with their group; or NotFound."""
    member_id = tokens.member_token_subject(token)
    row = None
    if member_id is not None:
        row = (
            await conn.execute(
                select(members, *_GROUP_OF_MEMBER)
                .join(groups, groups.c.id == members.c.group_id)
                .where(members.c.id == member_id)
            )
        ).first()
    if row is None or not tokens.member_token_valid(secret, purpose, token, row.id, row.link_nonce):
        # Same answer for unknown, tampered and revoked links: nothing to probe.
        raise NotFound("this link is not valid (it may have been replaced)", code="link_invalid")
    return row


def _version(*parts: object) -> str:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


async def member_feed(
    db: Database, links: LinkMaker, token: str, *, now: datetime, cache: FeedCache
) -> Feed:
    """The private feed behind ``token``: the member's booked, waitlisted and led sessions."""
    since = now - KEEP_CANCELLED
    member_id = tokens.member_token_subject(token) or ""
    async with db.read() as conn:
        # One round trip answers a calendar app's poll: the member, the group, and the two
        # aggregates that make the feed's version.
        member = (await conn.execute(_member_and_version(member_id, since))).first()
        if member is None or not tokens.member_token_valid(
            links.secret, tokens.FEED, token, member.id, member.link_nonce
        ):
            raise NotFound(
                "this link is not valid (it may have been replaced)", code="link_invalid"
            )
        etag, last_modified = _feed_version(member, links.public_url, since)
        cached = cache.get((member.id, etag))
        if cached is not None:
            return cached
        rows = (await conn.execute(_member_query(member.id, since))).all()
    quiet = member.group_discreet if member.discreet is None else member.discreet
    events = _member_events(member, rows, links, since, quiet=quiet)
    name = "Drop-ins" if quiet else f"Drop-ins: {member.group_name}"
    feed = Feed(build_feed(events, calendar_name=name, now=last_modified), etag, last_modified)
    cache.put((member.id, etag), feed)
    return feed


def _member_and_version(member_id: str, since: datetime) -> Select[Any]:
    """The member and group rows, with what changes when any of their entries change."""
    booked_q = (
        select(
            func.count().label("n"),
            func.max(bookings.c.updated_at).label("b"),
            func.max(sessions.c.updated_at).label("s"),
            func.max(series.c.updated_at).label("r"),
            func.sum(bookings.c.revision).label("v"),
        )
        .select_from(bookings)
        .join(sessions, sessions.c.id == bookings.c.session_id)
        .join(series, series.c.id == sessions.c.series_id)
        .where(bookings.c.member_id == member_id, sessions.c.starts_at >= since)
        .subquery()
    )
    led_q = (
        select(
            func.count().label("n"),
            func.max(sessions.c.updated_at).label("s"),
            func.max(series.c.updated_at).label("r"),
        )
        .select_from(sessions)
        .join(series, series.c.id == sessions.c.series_id)
        .where(_leads(member_id), sessions.c.starts_at >= since)
        .subquery()
    )
    return (
        select(
            members,
            *_GROUP_OF_MEMBER,
            booked_q.c.n.label("b_n"),
            booked_q.c.b.label("b_b"),
            booked_q.c.s.label("b_s"),
            booked_q.c.r.label("b_r"),
            booked_q.c.v.label("b_v"),
            led_q.c.n.label("l_n"),
            led_q.c.s.label("l_s"),
            led_q.c.r.label("l_r"),
        )
        .select_from(
            members.join(groups, groups.c.id == members.c.group_id)
            .join(booked_q, true())
            .join(led_q, true())
        )
        .where(members.c.id == member_id)
    )


def _feed_version(member: Row[Any], public_url: str, since: datetime) -> tuple[str, datetime]:
    """The feed's ETag and Last-Modified, from :func:`_member_and_version`'s row."""
    booked = (member.b_n, member.b_b, member.b_s, member.b_r, member.b_v)
    led = (member.l_n, member.l_s, member.l_r)
    stamps = [member.updated_at, member.group_updated_at, *booked[1:4], *led[1:]]
    last_modified = max(s for s in stamps if isinstance(s, datetime))
    # The day is part of the version: entries age out of the 30-day window daily.
    etag = _version(
        member.link_nonce,
        since.date(),
        *booked,
        *led,
        member.updated_at,
        member.group_updated_at,
        public_url,
    )
    return etag, last_modified


def _member_events(
    member: Row[Any], rows: Sequence[Row[Any]], links: LinkMaker, since: datetime, *, quiet: bool
) -> list[CalendarEvent]:
    page = links.page(member.id, member.link_nonce)
    events = []
    for r in _one_per_session(rows):
        if _expired(r, since):
            continue
        relation = r.relation
        seat = Seat(
            relation=relation,
            revision=r.revision or 0,
            updated_at=r.booking_updated_at,
            join_url=(
                links.join(r.id, member.id, r.ends_at)
                if relation in ("confirmed", "lead", "co")
                else None
            ),
            page_url=page,
        )
        events.append(
            entry(session_facts(r, member.group_name, member.group_timezone), seat, quiet=quiet)
        )
    return events


def _leads(member_id: str) -> Any:
    return or_(sessions.c.lead_member_id == member_id, sessions.c.co_member_id == member_id)


# What a feed entry needs of a session (see session_facts).
_ENTRY_COLUMNS = (
    sessions.c.id,
    sessions.c.starts_at,
    sessions.c.ends_at,
    sessions.c.status,
    sessions.c.sequence,
    sessions.c.updated_at,
    series.c.title,
)


def _member_query(member_id: str, since: datetime) -> Any:
    columns = _ENTRY_COLUMNS
    as_parent = (
        select(
            *columns,
            bookings.c.status.label("relation"),
            bookings.c.revision,
            bookings.c.updated_at.label("booking_updated_at"),
        )
        .join(series, series.c.id == sessions.c.series_id)
        .join(bookings, bookings.c.session_id == sessions.c.id)
        .where(bookings.c.member_id == member_id, sessions.c.starts_at >= since)
    )
    as_facilitator = (
        select(
            *columns,
            case(
                (sessions.c.lead_member_id == member_id, literal("lead")), else_=literal("co")
            ).label("relation"),
            literal(0).label("revision"),
            sessions.c.updated_at.label("booking_updated_at"),
        )
        .join(series, series.c.id == sessions.c.series_id)
        .where(_leads(member_id), sessions.c.starts_at >= since)
    )
    return as_parent.union_all(as_facilitator).order_by("starts_at")


def _one_per_session(rows: Sequence[Row[Any]]) -> list[Row[Any]]:
    """One entry per session (one UID): facilitating wins over an old booking of the same
    member, so a lead never sees their own session as cancelled."""
    chosen: dict[str, Row[Any]] = {}
    for r in rows:
        held = chosen.get(r.id)
        if held is None or (r.relation in ("lead", "co") and held.relation not in ("lead", "co")):
            chosen[r.id] = r
    return sorted(chosen.values(), key=lambda r: (r.starts_at, r.id))


def _expired(row: Row[Any], since: datetime) -> bool:
    cancelled = row.status == SessionStatus.CANCELLED or row.relation == BookingStatus.CANCELLED
    changed = row.booking_updated_at if row.relation == BookingStatus.CANCELLED else row.updated_at
    return bool(cancelled and changed < since)


def session_facts(row: Any, group_name: str, timezone: str) -> SessionFacts:
    """A session row (with its series ``title``) as calendars and messages see it."""
    return SessionFacts(
        id=row.id,
        title=row.title,
        group_name=group_name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        timezone=timezone,
        status=row.status,
        sequence=row.sequence,
        updated_at=row.updated_at,
    )


async def group_feed(
    db: Database, group_id: str, *, now: datetime, cache: FeedCache, public_url: str
) -> Feed:
    """The feed of a public group: every session, no personal links. NotFound otherwise."""
    since = now - KEEP_CANCELLED
    async with db.read() as conn:
        group = (await conn.execute(select(groups).where(groups.c.id == group_id))).first()
        if group is None or not group.public:
            raise NotFound("no public calendar for this group", code="feed_not_found")
        agg = (
            await conn.execute(
                select(func.count(), func.max(sessions.c.updated_at), func.max(series.c.updated_at))
                .select_from(sessions)
                .join(series, series.c.id == sessions.c.series_id)
                .where(sessions.c.group_id == group_id, sessions.c.starts_at >= since)
            )
        ).one()
        stamps = [group.updated_at, *agg[1:]]
        last_modified = max(s for s in stamps if isinstance(s, datetime))
        etag = _version(since.date(), *agg, group.updated_at)
        cached = cache.get((group_id, etag))
        if cached is not None:
            return cached
        rows = (
            await conn.execute(
                select(
                    *_ENTRY_COLUMNS,
                    literal("public").label("relation"),
                    literal(None).label("booking_updated_at"),
                )
                .join(series, series.c.id == sessions.c.series_id)
                .where(sessions.c.group_id == group_id, sessions.c.starts_at >= since)
                .order_by(sessions.c.starts_at)
            )
        ).all()
    events = [
        entry(session_facts(r, group.name, group.timezone), Seat("public"), quiet=group.discreet)
        for r in rows
        if not (r.status == SessionStatus.CANCELLED and r.updated_at < since)
    ]
    name = "Drop-ins" if group.discreet else f"Drop-ins: {group.name}"
    feed = Feed(build_feed(events, calendar_name=name, now=last_modified), etag, last_modified)
    cache.put((group_id, etag), feed)
    return feed
