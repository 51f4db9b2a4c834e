"""Use cases for single sessions: list, reschedule or cancel one, assign facilitators."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain.recurrence import local_day_bounds, resolve_local
from dropin.errors import Conflict, Invalid, NotFound
from dropin.services.bookings import promote_waitlist
from dropin.services.common import emit, group_row, member_row, notify_session, session_row
from dropin.services.series import HANDOFF_RESET, MAX_CAPACITY, MAX_DURATION_MINUTES
from dropin.services.views import AttendeeView, Facilitator, SessionView
from dropin.store.db import Database
from dropin.store.tables import bookings, groups, members, series, sessions

_lead = members.alias("lead")
_co = members.alias("co")
MAX_LIST_DAYS = 800
MAX_AHEAD = timedelta(days=3660)
DEFAULT_LIST_DAYS = 180


def _session_query() -> Select[Any]:
    return (
        select(
            sessions,
            series.c.title,
            groups.c.timezone,
            _lead.c.display_name.label("lead_name"),
            _co.c.display_name.label("co_name"),
        )
        .join(series, series.c.id == sessions.c.series_id)
        .join(groups, groups.c.id == sessions.c.group_id)
        .outerjoin(_lead, _lead.c.id == sessions.c.lead_member_id)
        .outerjoin(_co, _co.c.id == sessions.c.co_member_id)
    )


def session_view(row: Row[Any]) -> SessionView:
    tz = ZoneInfo(row.timezone)
    return SessionView(
        id=row.id,
        group_id=row.group_id,
        series_id=row.series_id,
        title=row.title,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        timezone=row.timezone,
        local_start=row.starts_at.astimezone(tz),
        status=row.status,
        capacity=row.capacity,
        confirmed_count=row.confirmed_count,
        waitlist_count=row.waitlist_count,
        lead=Facilitator(row.lead_member_id, row.lead_name) if row.lead_member_id else None,
        co=Facilitator(row.co_member_id, row.co_name) if row.co_member_id else None,
        rescheduled=row.rescheduled,
        sequence=row.sequence,
    )


async def list_sessions(
    db: Database,
    group_id: str,
    *,
    start: datetime | date | None,
    end: datetime | date | None,
    now: datetime,
) -> list[SessionView]:
    """A group's sessions starting in ``[start, end)``, cancelled ones included, in order.

    Dates are whole days in the group's zone (``end`` inclusive). By default: from the start
    of today, for 180 days.
    """
    async with db.read() as conn:
        group = await group_row(conn, group_id)
        tz = ZoneInfo(group.timezone)
        lo = (
            _bound(start, tz, end_of_day=False)
            or local_day_bounds(now.astimezone(tz).date(), tz)[0]
        )
        hi = _bound(end, tz, end_of_day=True) or lo + timedelta(days=DEFAULT_LIST_DAYS)
        if hi <= lo:
            raise Invalid("'to' must be after 'from'", code="invalid_range")
        if hi - lo > timedelta(days=MAX_LIST_DAYS):
            raise Invalid(f"a listing spans at most {MAX_LIST_DAYS} days", code="invalid_range")
        rows = (
            await conn.execute(
                _session_query()
                .where(
                    sessions.c.group_id == group_id,
                    sessions.c.starts_at >= lo,
                    sessions.c.starts_at < hi,
                )
                .order_by(sessions.c.starts_at, sessions.c.id)
            )
        ).all()
    return [session_view(r) for r in rows]


def _bound(value: datetime | date | None, tz: ZoneInfo, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            return resolve_local(value, tz) if value.tzinfo is None else value
        day_start, next_day = local_day_bounds(value, tz)
    except OverflowError:
        raise Invalid("that date is out of range", code="invalid_range") from None
    return next_day if end_of_day else day_start


async def _load(conn: AsyncConnection, session_id: str) -> SessionView:
    row = (await conn.execute(_session_query().where(sessions.c.id == session_id))).first()
    if row is None:
        raise NotFound("no such session", code="session_not_found")
    return session_view(row)


async def get_session(db: Database, session_id: str) -> SessionView:
    async with db.read() as conn:
        return await _load(conn, session_id)


async def update_session(
    db: Database, session_id: str, changes: dict[str, Any], *, now: datetime
) -> SessionView:
    """Reschedule, resize, cancel or reinstate one session; the series is untouched.

    ``changes`` may hold ``starts_at`` (aware) or ``local_start`` (naive, the group's zone),
    ``duration_minutes``, ``capacity`` and ``status`` (``cancelled`` / ``scheduled``).
    Every change a calendar shows raises the session's ``sequence``.
    """
    async with db.write() as conn:
        row = await session_row(conn, session_id, lock=True)
        group = await group_row(conn, row.group_id)
        if now >= row.ends_at:
            raise Conflict("this session is over and cannot be changed", code="session_over")
        values: dict[str, Any] = {}
        duration = row.ends_at - row.starts_at
        if "duration_minutes" in changes:
            minutes = changes["duration_minutes"]
            if not 1 <= minutes <= MAX_DURATION_MINUTES:
                raise Invalid(f"duration_minutes must be 1 to {MAX_DURATION_MINUTES}")
            duration = timedelta(minutes=minutes)
        starts_at = row.starts_at
        if "starts_at" in changes and "local_start" in changes:
            raise Invalid("give starts_at or local_start, not both")
        if "starts_at" in changes:
            starts_at = changes["starts_at"]
            if starts_at.tzinfo is None:
                raise Invalid("starts_at needs an offset or Z; use local_start for wall-clock")
        elif "local_start" in changes:
            local = changes["local_start"]
            if local.tzinfo is not None:
                raise Invalid("local_start is wall-clock time: give it without an offset")
            try:
                starts_at = resolve_local(local, ZoneInfo(group.timezone))
            except OverflowError:
                raise Invalid("that date is out of range", code="too_far_ahead") from None
        if starts_at > now + MAX_AHEAD:
            raise Invalid("a session cannot be moved that far ahead", code="too_far_ahead")
        if (starts_at, duration) != (row.starts_at, row.ends_at - row.starts_at):
            if starts_at + duration <= now:
                raise Invalid("a session cannot be moved into the past", code="in_the_past")
            # Timing set by hand (start or length): later series edits leave it alone.
            values.update(starts_at=starts_at, ends_at=starts_at + duration, rescheduled=True)
            if starts_at != row.starts_at:
                values.update(HANDOFF_RESET)
        status = changes.get("status", row.status)
        if status not in ("scheduled", "cancelled"):
            raise Invalid("status must be 'scheduled' or 'cancelled'")
        if status != row.status:
            values["status"] = status
            if status == "scheduled":
                values.update(HANDOFF_RESET)
        capacity = changes.get("capacity", row.capacity)
        if not 1 <= capacity <= MAX_CAPACITY:
            raise Invalid(f"capacity must be 1 to {MAX_CAPACITY}")
        if capacity != row.capacity:
            values["capacity"] = capacity
        if not values:
            return await _load(conn, session_id)
        if {"starts_at", "ends_at", "status"} & values.keys():
            values["sequence"] = row.sequence + 1
        values["updated_at"] = now
        await conn.execute(sessions.update().where(sessions.c.id == session_id).values(**values))
        kind = None
        if values.get("status") == "cancelled":
            kind = "session_cancelled"
        elif "starts_at" in values or values.get("status") == "scheduled":
            kind = "session_rescheduled"
        if kind is not None:
            await notify_session(conn, row, kind, now)
        if capacity > row.capacity or values.get("status") == "scheduled":
            await conn.run_sync(promote_waitlist, session_id, now)
        return await _load(conn, session_id)


async def set_facilitators(
    db: Database,
    session_id: str,
    *,
    lead_member_id: str | None,
    co_member_id: str | None,
    now: datetime,
) -> SessionView:
    """Assign (or clear, with None) a session's lead and co-facilitator.

    Both must be facilitators of the session's group and different people; a co-facilitator
    needs a lead. Newly assigned facilitators are told (outbox).
    """
    if co_member_id is not None and lead_member_id is None:
        raise Invalid("a co-facilitator needs a lead", code="co_without_lead")
    if lead_member_id is not None and lead_member_id == co_member_id:
        raise Invalid("lead and co-facilitator must be different people", code="same_facilitator")
    async with db.write() as conn:
        row = await session_row(conn, session_id, lock=True)
        if now >= row.ends_at:
            raise Conflict("this session is over and cannot be changed", code="session_over")
        for member_id in (lead_member_id, co_member_id):
            if member_id is None:
                continue
            member = await member_row(conn, member_id)
            if member.group_id != row.group_id:
                raise NotFound("no such member in this session's group", code="member_not_found")
            if member.role != "facilitator":
                raise Invalid("only facilitators can lead a session", code="not_a_facilitator")
            booked = (
                await conn.execute(
                    select(bookings.c.id).where(
                        bookings.c.session_id == session_id,
                        bookings.c.member_id == member_id,
                        bookings.c.status != "cancelled",
                    )
                )
            ).first()
            if booked is not None:
                raise Conflict(
                    "this member has a booking for this session; cancel it first",
                    code="member_booked",
                )
        await conn.execute(
            sessions.update()
            .where(sessions.c.id == session_id)
            .values(
                lead_member_id=lead_member_id,
                co_member_id=co_member_id,
                # Hand-picked facilitators are never changed by the rotation; cleared ones are
                # filled by it again.
                facilitators_by="organizer" if lead_member_id else None,
                rotation_note=None,
                # An organizer who picks a lead has arranged it with them: no "please confirm"
                # and no hand-over for them (dropin/domain/handoff.py).
                lead_confirmed_at=now if lead_member_id else None,
                handed_over_at=None,
                # Facilitators' calendar entries must rise with every change of facilitator.
                sequence=row.sequence + 1,
                updated_at=now,
            )
        )
        before = {m: r for m, r in ((row.lead_member_id, "lead"), (row.co_member_id, "co")) if m}
        after = {m: r for m, r in ((lead_member_id, "lead"), (co_member_id, "co")) if m}
        # Whoever leaves hears so; whoever joins, or changes role, gets an updated invite.
        for member_id in sorted(set(before) - set(after)):
            await emit(
                conn, "facilitator_released", now, session_id=session_id, member_id=member_id
            )
        for member_id in sorted(after):
            if before.get(member_id) != after[member_id]:
                await emit(
                    conn, "facilitator_assigned", now, session_id=session_id, member_id=member_id
                )
        return await _load(conn, session_id)


async def attendees(db: Database, session_id: str) -> list[AttendeeView]:
    """A session's active bookings, confirmed first then the waitlist in order."""
    async with db.read() as conn:
        await session_row(conn, session_id)
        rows = (
            await conn.execute(
                select(bookings, members.c.display_name)
                .join(members, members.c.id == bookings.c.member_id)
                .where(bookings.c.session_id == session_id, bookings.c.status != "cancelled")
                .order_by(bookings.c.status, bookings.c.waitlist_seq, bookings.c.created_at)
            )
        ).all()
    found: list[AttendeeView] = []
    position = 0
    for r in rows:
        pos = None
        if r.status == "waitlisted":
            position += 1
            pos = position
        found.append(AttendeeView(r.id, r.member_id, r.display_name, r.status, pos))
    return found
