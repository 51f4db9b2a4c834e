"""Delivering the transactional outbox: which rows are due, claiming one, what it says.

Every change that owes someone a message wrote an outbox row in its own transaction
(:func:`dropin.services.common.outbox_insert`). Workers deliver rows one at a time:

1. **claim** — rows are taken in batches, only if due (pending, or left "sending" by a worker
   that died more than :data:`STALE_CLAIM` ago) *and* first undelivered for their session and
   member, so one person's messages about one session go out in the order written (an
   invite never arrives after its cancellation);
2. **compose** — from the current state of the session, member and booking; a message that
   is no longer true when its turn comes (a reminder for a cancelled place) is skipped;
3. **mark** — sent (each row as it is sent, never per batch), retry later with backoff, or
   failed with a reason that names no address.

A worker killed between the SMTP server's acceptance and step 3 leaves the row "sending"; it
is sent again after :data:`STALE_CLAIM`, with the same Message-ID, so mail clients drop the
duplicate. That is the only way a message can go out twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dropin.domain.entries import Seat
from dropin.domain.imip import RenderedMail, render_imip, render_notice, rendered
from dropin.domain.messages import Kind, MemberLinks, Recipient, Sender, compose
from dropin.domain.states import MessageKind
from dropin.errors import Conflict, Invalid, NotFound
from dropin.services.common import outbox_insert
from dropin.services.feeds import LinkMaker, session_facts
from dropin.services.handoff import handoff_url, swap_url
from dropin.services.member_page import rsvp_url
from dropin.store.db import Database
from dropin.store.tables import bookings, groups, members, outbox, room_removals, series, sessions

STALE_CLAIM = timedelta(minutes=5)
# Reminders go out this long before the start (and not at all once it is too late to help).
REMINDERS: tuple[tuple[Kind, timedelta, timedelta], ...] = (
    (MessageKind.REMINDER_24H, timedelta(hours=24), timedelta(hours=2)),
    (MessageKind.REMINDER_1H, timedelta(hours=1), timedelta(minutes=5)),
)
UNDELIVERED = ("pending", "sending")


def _due(now: datetime, stale: timedelta = STALE_CLAIM) -> Any:
    return or_(
        and_(
            outbox.c.status == "pending",
            or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
        ),
        and_(outbox.c.status == "sending", outbox.c.claimed_at < now - stale),
    )


async def claim_batch(
    db: Database, *, now: datetime, limit: int = 20, stale: timedelta = STALE_CLAIM
) -> list[int]:
    """Take up to ``limit`` due rows for delivery, at most one per session and member.

    The claim is ``claimed_at = now``: the caller keeps ``now`` as its claim token.

    Candidates are the first undelivered row of each pair, so a pair's second message is
    never in flight while its first is; the conditional update (with RETURNING) makes sure
    that of two workers racing for a row exactly one gets it. Ids come back in write order.
    """
    earlier = outbox.alias("earlier")
    first_in_line = ~exists(
        select(earlier.c.id).where(
            # Plain equality (every row has a session; only organizer alerts lack a member):
            # IS NOT DISTINCT FROM would keep PostgreSQL from using the index.
            earlier.c.session_id == outbox.c.session_id,
            func.coalesce(earlier.c.member_id, "") == func.coalesce(outbox.c.member_id, ""),
            earlier.c.id < outbox.c.id,
            earlier.c.status.in_(UNDELIVERED),
        )
    )
    async with db.write() as conn:
        # Due rows that are first in line for their pair, however many rows wait in backoff
        # ahead of them (a window over the oldest rows would starve new mail behind retries).
        wanted = list(
            (
                await conn.execute(
                    select(outbox.c.id)
                    .where(outbox.c.status.in_(UNDELIVERED), _due(now, stale), first_in_line)
                    .order_by(outbox.c.id)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        if not wanted:
            return []
        taken = await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(wanted), _due(now, stale))
            .values(status="sending", claimed_at=now, attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id)
        )
        return sorted(int(i) for i in taken.scalars().all())


async def renew(db: Database, row_id: int, claim: datetime, *, now: datetime) -> datetime | None:
    """Refresh this worker's claim on a row just before sending it.

    ``claim`` is the ``claimed_at`` this worker wrote. Returns the new claim, or None when the
    row is no longer ours (another worker took it after our claim went stale): then we must
    not send it. Rows wait in a batch while earlier ones are sent; renewing each one as its
    turn comes means only a row actually on the wire can ever go stale.
    """
    done: bool = await db.run_write(_renew_body, row_id, claim, now)
    return now if done else None


def _renew_body(conn: Connection, row_id: int, claim: datetime, now: datetime) -> bool:
    result = conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.status == "sending", outbox.c.claimed_at == claim)
        .values(claimed_at=now)
    )
    return bool(result.rowcount == 1)


async def _finish(db: Database, row_id: int, claim: datetime, **values: Any) -> None:
    # On the hot path of every send: one synchronous statement in the writer (no loop hops).
    await db.run_write(_finish_body, row_id, claim, values)


def _finish_body(conn: Connection, row_id: int, claim: datetime, values: dict[str, Any]) -> None:
    conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.status == "sending", outbox.c.claimed_at == claim)
        .values(**values)
    )


async def mark_sent(db: Database, row_id: int, claim: datetime, *, now: datetime) -> None:
    await _finish(db, row_id, claim, status="sent", sent_at=now, last_error=None)


async def mark_skipped(db: Database, row_id: int, claim: datetime, reason: str) -> None:
    await _finish(db, row_id, claim, status="skipped", last_error=reason)


async def mark_failed(db: Database, row_id: int, claim: datetime, reason: str) -> None:
    await _finish(db, row_id, claim, status="failed", last_error=reason)


async def mark_retry(
    db: Database, row_id: int, claim: datetime, reason: str, *, at: datetime
) -> None:
    await _finish(db, row_id, claim, status="pending", last_error=reason, next_attempt_at=at)


async def attempts(db: Database, row_id: int) -> int:
    async with db.read() as conn:
        value = (
            await conn.execute(select(outbox.c.attempts).where(outbox.c.id == row_id))
        ).scalar_one_or_none()
    return int(value or 0)


# Composing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """A composed message (bytes and envelope), or the reason it is no longer owed."""

    message: RenderedMail | None
    skip_reason: str | None = None


def message_id(row_id: int, mail_from: str) -> str:
    """The Message-ID of an outbox row: fixed, so a resend is recognised as the same mail."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "dropin.invalid"
    return f"outbox-{row_id}@{domain}"


async def compose_row(
    db: Database, links: LinkMaker, mail_from: str, row_id: int, *, now: datetime
) -> Outgoing:
    """The message row ``row_id`` owes, composed from the current state."""
    # One query for the row, its session, series, group, member and booking: this runs for
    # every message a worker sends.
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(
                    outbox.c.kind,
                    outbox.c.other_member_id,
                    outbox.c.session_id.label("row_session_id"),
                    sessions,
                    series.c.title,
                    groups.c.name.label("group_name"),
                    groups.c.timezone.label("group_timezone"),
                    groups.c.discreet.label("group_discreet"),
                    *(c.label(f"m_{c.name}") for c in members.c),
                    *(c.label(f"b_{c.name}") for c in bookings.c),
                )
                .select_from(
                    outbox.outerjoin(sessions, sessions.c.id == outbox.c.session_id)
                    .outerjoin(series, series.c.id == sessions.c.series_id)
                    .outerjoin(groups, groups.c.id == sessions.c.group_id)
                    .outerjoin(members, members.c.id == outbox.c.member_id)
                    .outerjoin(
                        bookings,
                        and_(
                            bookings.c.session_id == outbox.c.session_id,
                            bookings.c.member_id == outbox.c.member_id,
                        ),
                    )
                )
                .where(outbox.c.id == row_id)
            )
        ).one()
        position = None
        if row.b_status == "waitlisted":
            position = 1 + int(
                (
                    await conn.execute(
                        select(func.count()).where(
                            bookings.c.session_id == row.row_session_id,
                            bookings.c.status == "waitlisted",
                            bookings.c.waitlist_seq < row.b_waitlist_seq,
                        )
                    )
                ).scalar_one()
            )
    found = row if row.id is not None else None
    member = _prefixed(row, "m_") if row.m_id is not None else None
    booking = _prefixed(row, "b_") if row.b_id is not None else None
    if found is None:
        return Outgoing(None, "session no longer exists")
    kind = cast(Kind, row.kind)
    if kind == "organizer_alert":
        return await _organizer_alert(db, mail_from, row_id, found, now)
    if member is None:
        return Outgoing(None, "member no longer exists")
    relation = _relation(found, member.id, booking)
    skip = _stale(kind, found.status, relation, now, found.starts_at)
    extra = ""
    if not skip and kind == "swap_request":
        if row.other_member_id not in (found.lead_member_id, found.co_member_id):
            skip = "the colleague asking is no longer in the session"
        else:
            extra = await _display_name(db, row.other_member_id)
    if skip:
        return Outgoing(None, skip)
    facts = session_facts(found, found.group_name, found.group_timezone)
    seat = Seat(
        relation=relation if relation != "none" else "public",  # type: ignore[arg-type]
        revision=booking.revision if booking is not None else 0,
        waitlist_position=position,
        updated_at=booking.updated_at if booking is not None else None,
    )
    active = relation in ("confirmed", "lead", "co") and found.status == "scheduled"
    member_links = MemberLinks(
        page_url=links.page(member.id, member.link_nonce),
        feed_url=links.feed(member.id, member.link_nonce),
        join_url=links.join(found.id, member.id, found.ends_at) if active else None,
        accept_url=(
            rsvp_url(links, found.id, member.id, "accept", found.ends_at)
            if kind == "session_invitation"
            else None
        ),
        decline_url=(
            rsvp_url(links, found.id, member.id, "decline", found.ends_at)
            if relation in ("confirmed", "waitlisted") or kind == "session_invitation"
            else None
        ),
        confirm_url=(
            handoff_url(links, found.id, member.id, "confirm", found.ends_at)
            if relation == "lead"
            else None
        ),
        release_url=(
            handoff_url(links, found.id, member.id, "release", found.ends_at)
            if relation in ("lead", "co")
            else None
        ),
        swap_url=(
            swap_url(links, found.id, row.other_member_id, member.id, found.ends_at)
            if kind == "swap_request" and row.other_member_id
            else None
        ),
    )
    quiet = found.group_discreet if member.discreet is None else member.discreet
    recipient = Recipient(
        display_name=member.display_name,
        email=member.email,
        timezone=member.timezone or found.group_timezone,
        quiet=quiet,
    )
    sender_name, sender_email = parseaddr(mail_from)
    composed = compose(
        kind,
        facts,
        seat,
        recipient,
        member_links,
        Sender(sender_email, found.group_name if not quiet else sender_name or "Drop-in"),
        now=now,
        extra=extra,
    )
    local, _, domain = sender_email.rpartition("@")
    sender = Address(composed.from_name, local, domain)
    to = _address(member.display_name, member.email)
    mid = message_id(row_id, mail_from)
    if composed.calendar is not None and composed.method is not None:
        data = render_imip(
            subject=composed.subject,
            sender=sender,
            recipient=to,
            text=composed.text,
            html=composed.html,
            calendar=composed.calendar,
            method=composed.method,
            message_id=mid,
            date=now,
        )
    else:
        data = render_notice(
            subject=composed.subject,
            sender=sender,
            recipient=to,
            text=composed.text,
            html=composed.html,
            message_id=mid,
            date=now,
        )
    return Outgoing(rendered(data, sender=sender, recipient=to, message_id=mid, date=now))


def _prefixed(row: Any, prefix: str) -> SimpleNamespace:
    """The columns of ``row`` labelled ``prefix<name>``, as attributes ``<name>``."""
    return SimpleNamespace(
        **{k[len(prefix) :]: v for k, v in row._mapping.items() if k.startswith(prefix)}
    )


async def _display_name(db: Database, member_id: str | None) -> str:
    async with db.read() as conn:
        name = (
            await conn.execute(select(members.c.display_name).where(members.c.id == member_id))
        ).scalar_one_or_none()
    return str(name or "A colleague")


async def _organizer_alert(
    db: Database, mail_from: str, row_id: int, session: Any, now: datetime
) -> Outgoing:
    if session.lead_member_id is not None:
        return Outgoing(None, "a lead was found since")
    if session.status != "scheduled":
        return Outgoing(None, "session cancelled since")
    async with db.read() as conn:
        to = (
            await conn.execute(
                select(groups.c.organizer_email).where(groups.c.id == session.group_id)
            )
        ).scalar_one_or_none()
    if not to:
        return Outgoing(None, "the group has no organizer_email")
    facts = session_facts(session, session.group_name, session.group_timezone)
    composed = compose(
        MessageKind.ORGANIZER_ALERT,
        facts,
        Seat("public"),
        Recipient("organizer", to, session.group_timezone, quiet=False),
        MemberLinks(page_url="", feed_url=""),
        Sender(parseaddr(mail_from)[1], session.group_name),
        now=now,
        extra=session.rotation_note or "",
    )
    sender_email = parseaddr(mail_from)[1]
    local, _, domain = sender_email.rpartition("@")
    sender = Address(composed.from_name, local, domain)
    recipient = _address("Organizer", to)
    mid = message_id(row_id, mail_from)
    data = render_notice(
        subject=composed.subject,
        sender=sender,
        recipient=recipient,
        text=composed.text.replace("<id>", session.id),
        html=composed.html.replace("&lt;id&gt;", session.id),
        message_id=mid,
        date=now,
    )
    return Outgoing(rendered(data, sender=sender, recipient=recipient, message_id=mid, date=now))


def _address(name: str, email: str) -> Address:
    local, _, domain = email.rpartition("@")
    return Address(name, local, domain)


def _relation(session: Any, member_id: str, booking: Any) -> str:
    if member_id == session.lead_member_id:
        return "lead"
    if member_id == session.co_member_id:
        return "co"
    if booking is None:
        return "none"
    return str(booking.status)


# What each kind needs to still be true when its turn comes.
_NEEDS: dict[str, set[str]] = {
    "booking_confirmed": {"confirmed"},
    "booking_promoted": {"confirmed"},
    "booking_waitlisted": {"waitlisted"},
    "session_rescheduled": {"confirmed", "waitlisted", "lead", "co"},
    "facilitator_assigned": {"lead", "co"},
    # Invited members who booked or declined meanwhile need no invitation any more.
    "session_invitation": {"none", "cancelled"},
    "lead_notice": {"lead"},
    "swap_request": {"none", "cancelled"},
    "reminder_24h": {"confirmed", "lead", "co"},
    "reminder_1h": {"confirmed", "lead", "co"},
}


def _stale(kind: str, status: str, relation: str, now: datetime, starts_at: datetime) -> str:
    """Why a message is no longer owed ("" if it is). Cancellations are always sent."""
    if kind in ("booking_cancelled", "session_cancelled", "facilitator_released"):
        return ""
    if status == "cancelled":
        return "session cancelled since"
    if relation not in _NEEDS.get(kind, set()):
        return "no longer true for this member"
    for reminder, before, too_late in REMINDERS:
        # A reminder is only true while the session is that far away (it may have moved).
        if kind == reminder and not (now + too_late < starts_at <= now + before):
            return "session no longer due for this reminder"
    return ""


# Scheduled messages and housekeeping ------------------------------------------------------------


async def invite_group(db: Database, session_id: str, *, now: datetime) -> int:
    """Owe an invitation to every parent of the session's group without a place in it.

    Each member is invited to a session once, however often this is called.
    """
    async with db.read() as conn:
        session = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
        if session is None:
            raise NotFound("no such session", code="session_not_found")
        if session.status != "scheduled" or now >= session.starts_at:
            raise Conflict(
                "only upcoming scheduled sessions can be announced", code="session_not_open"
            )
        booked = select(bookings.c.member_id).where(
            bookings.c.session_id == session_id, bookings.c.status != "cancelled"
        )
        parents = (
            (
                await conn.execute(
                    select(members.c.id).where(
                        members.c.group_id == session.group_id,
                        members.c.role == "parent",
                        members.c.id.not_in(booked),
                    )
                )
            )
            .scalars()
            .all()
        )
    created = 0
    for member_id in parents:
        if await _owe_once(db, "session_invitation", session_id, member_id, None, now):
            created += 1
    return created


async def _owe_once(
    db: Database,
    kind: str,
    session_id: str,
    member_id: str,
    booking_id: str | None,
    now: datetime,
    occasion: str = "",
) -> bool:
    """Write an outbox row keyed by (kind, session, member[, occasion]) unless one exists."""
    key = f"{kind}:{session_id}:{member_id}" + (f":{occasion}" if occasion else "")
    try:
        async with db.write() as conn:
            exists = (
                await conn.execute(select(outbox.c.id).where(outbox.c.dedup_key == key))
            ).first()
            if exists is not None:
                return False
            await conn.execute(
                outbox_insert(
                    kind, now, session_id=session_id, member_id=member_id, booking_id=booking_id
                ).values(dedup_key=key)
            )
    except IntegrityError:
        return False  # another worker wrote it first
    return True


async def queue_reminders(db: Database, *, now: datetime) -> int:
    """Owe a reminder to everyone in sessions starting soon.

    Each is owed once per start time: a session moved after its reminder went out is
    reminded of again for its new time.
    """
    created = 0
    for kind, before, too_late in REMINDERS:
        async with db.read() as conn:
            due = (
                await conn.execute(
                    select(
                        sessions.c.id,
                        sessions.c.starts_at,
                        sessions.c.lead_member_id,
                        sessions.c.co_member_id,
                    ).where(
                        sessions.c.status == "scheduled",
                        sessions.c.starts_at <= now + before,
                        sessions.c.starts_at > now + too_late,
                    )
                )
            ).all()
            people: list[tuple[str, str, str | None, str]] = []
            for s in due:
                booked = (
                    await conn.execute(
                        select(bookings.c.member_id, bookings.c.id).where(
                            bookings.c.session_id == s.id, bookings.c.status == "confirmed"
                        )
                    )
                ).all()
                at = s.starts_at.strftime("%Y%m%dT%H%M")
                people += [(s.id, b.member_id, b.id, at) for b in booked]
                people += [(s.id, m, None, at) for m in (s.lead_member_id, s.co_member_id) if m]
        for session_id, member_id, booking_id, at in people:
            if await _owe_once(db, kind, session_id, member_id, booking_id, now, occasion=at):
                created += 1
    return created


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    sending: int
    failed: int
    oldest_pending_seconds: float | None


async def stats(db: Database, *, now: datetime) -> OutboxStats:
    """Queue depth for /healthz and `dropin worker --check`."""
    async with db.read() as conn:
        grouped = await conn.execute(
            select(outbox.c.status, func.count())
            .where(outbox.c.status.in_(("pending", "sending", "failed")))
            .group_by(outbox.c.status)
        )
        counts: dict[str, int] = {str(r[0]): int(r[1]) for r in grouped.all()}
        oldest = (
            await conn.execute(
                select(func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
            )
        ).scalar_one_or_none()
    age = None if oldest is None else (now - oldest).total_seconds()
    return OutboxStats(
        int(counts.get("pending", 0)),
        int(counts.get("sending", 0)),
        int(counts.get("failed", 0)),
        age,
    )


@dataclass(frozen=True)
class Purged:
    bookings: int
    messages: int


async def purge(db: Database, *, now: datetime, retention_days: int) -> Purged:
    """Delete bookings and finished outbox rows of sessions that ended long enough ago.

    Sessions themselves stay (times and facilitators, which the rota's fairness looks back
    on); who booked them, who was removed from their rooms, and the record of what was mailed
    to whom, go.
    """
    cutoff = now - timedelta(days=retention_days)
    old = select(sessions.c.id).where(sessions.c.ends_at < cutoff)
    async with db.write() as conn:
        gone_bookings = await conn.execute(bookings.delete().where(bookings.c.session_id.in_(old)))
        gone_messages = await conn.execute(
            outbox.delete().where(outbox.c.session_id.in_(old), outbox.c.status.not_in(UNDELIVERED))
        )
        await conn.execute(room_removals.delete().where(room_removals.c.session_id.in_(old)))
    return Purged(int(gone_bookings.rowcount or 0), int(gone_messages.rowcount or 0))


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    session_id: str | None
    member_id: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None


STATUSES = ("pending", "sending", "sent", "failed", "skipped")


async def list_rows(db: Database, *, status: str, limit: int = 100) -> list[OutboxRow]:
    """Outbox rows in ``status``, newest first: ids and reasons, never addresses."""
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", code="invalid_query")
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    outbox.c.id,
                    outbox.c.kind,
                    outbox.c.session_id,
                    outbox.c.member_id,
                    outbox.c.status,
                    outbox.c.attempts,
                    outbox.c.last_error,
                    outbox.c.created_at,
                    outbox.c.next_attempt_at,
                    outbox.c.sent_at,
                )
                .where(outbox.c.status == status)
                .order_by(outbox.c.id.desc())
                .limit(max(1, min(limit, 500)))
            )
        ).all()
    return [OutboxRow(**r._mapping) for r in rows]


async def retry_row(db: Database, row_id: int) -> None:
    """Send a failed row again (after fixing the address, say): it goes back in line."""
    async with db.write() as conn:
        done = await conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.status == "failed")
            .values(status="pending", next_attempt_at=None)
        )
        if done.rowcount != 1:
            raise NotFound("no failed message with that id", code="message_not_found")
