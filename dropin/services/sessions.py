"""Use cases for single sessions: list, reschedule or cancel one, assign facilitators."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain.recurrence import local_day_bounds, resolve_local
from dropin.domain.session import SessionEdit, check_pair
from dropin.domain.states import BookingStatus, MemberRole, SessionStatus
from dropin.errors import Invalid, NotFound
from dropin.services.common import group_row, session_row
from dropin.services.views import AttendeeView, FacilitatorView, SessionView
from dropin.store.db import Database
from dropin.store.tables import bookings, groups, members, series, sessions
from dropin.store.uow import UnitOfWork

_lead = members.alias("lead")
_co = members.alias("co")
MAX_LIST_DAYS = 800
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
        status=SessionStatus(row.status),
        capacity=row.capacity,
        confirmed_count=row.confirmed_count,
        waitlist_count=row.waitlist_count,
        lead=FacilitatorView(row.lead_member_id, row.lead_name) if row.lead_member_id else None,
        co=FacilitatorView(row.co_member_id, row.co_name) if row.co_member_id else None,
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
    db: Database, session_id: str, edit: SessionEdit, *, now: datetime
) -> SessionView:
    """Reschedule, resize, cancel or reinstate one session; the series is untouched.

    Every change a calendar shows raises the session's ``sequence`` and owes everyone in it a
    notice; more places promote from the waitlist (:meth:`Session.edit`).
    Raises NotFound, Conflict (``session_over``), Invalid (``too_far_ahead``,
    ``in_the_past``, out-of-range values).
    """
    await db.run_write(_edit, session_id, edit, now)
    return await get_session(db, session_id)


def _edit(conn: Connection, session_id: str, edit: SessionEdit, now: datetime) -> None:
    uow = UnitOfWork(conn)
    session = uow.session(session_id)
    timezone = conn.execute(
        select(groups.c.timezone).where(groups.c.id == session.group_id)
    ).scalar_one()
    uow.save(session.edit(edit, ZoneInfo(timezone), now), now)


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
    needs a lead. Whoever leaves is told, whoever joins gets an invitation (outbox).
    """
    await db.run_write(_assign, session_id, lead_member_id, co_member_id, now)
    return await get_session(db, session_id)


def _assign(
    conn: Connection, session_id: str, lead: str | None, co: str | None, now: datetime
) -> None:
    check_pair(lead, co)  # before any lookup, as a request that cannot be right
    uow = UnitOfWork(conn)
    session = uow.session(session_id)
    named = [m for m in (lead, co) if m is not None]
    roles = {
        r.id: MemberRole(r.role)
        for r in conn.execute(
            select(members.c.id, members.c.role).where(
                members.c.id.in_(named), members.c.group_id == session.group_id
            )
        )
    }
    uow.save(session.assign_facilitators(lead, co, roles=roles, now=now), now)


async def attendees(db: Database, session_id: str) -> list[AttendeeView]:
    """A session's active bookings, confirmed first then the waitlist in order."""
    async with db.read() as conn:
        await session_row(conn, session_id)
        rows = (
            await conn.execute(
                select(bookings, members.c.display_name)
                .join(members, members.c.id == bookings.c.member_id)
                .where(
                    bookings.c.session_id == session_id,
                    bookings.c.status != BookingStatus.CANCELLED.value,
                )
                .order_by(bookings.c.status, bookings.c.waitlist_seq, bookings.c.created_at)
            )
        ).all()
    found: list[AttendeeView] = []
    position = 0
    for r in rows:
        pos = None
        if r.status == BookingStatus.WAITLISTED:
            position += 1
            pos = position
        found.append(AttendeeView(r.id, r.member_id, r.display_name, BookingStatus(r.status), pos))
    return found
