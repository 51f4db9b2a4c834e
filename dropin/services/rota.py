"""The facilitator rota: fill upcoming sessions fairly, show the rota, record availability.

The rules are pure (:mod:`dropin.domain.rotation`); this module reads their inputs, writes
their answers and owes the notices. Sessions an organizer assigned by hand are never changed;
the rotation only fills sessions that have no lead, up to :data:`AHEAD`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain.rotation import (
    Assignment,
    Facilitator,
    RotaEntry,
    RotationPolicy,
    Slot,
    plan_rotation,
    reassign,
)
from dropin.domain.session import Known
from dropin.domain.states import BookingStatus, MemberRole, SessionStatus
from dropin.errors import Invalid
from dropin.services.common import group_row, member_row
from dropin.store.db import Database
from dropin.store.tables import bookings, groups, members, sessions, unavailability
from dropin.store.uow import UnitOfWork

# How far ahead the rotation fills sessions (facilitators hear about them from then on).
AHEAD = timedelta(days=90)
POLICY = RotationPolicy()
MAX_UNAVAILABLE_DAYS = 400


@dataclass(frozen=True)
class RotaLine:
    """One upcoming session in the rota."""

    session_id: str
    starts_at: datetime
    local_start: str
    status: str
    lead_member_id: str | None
    lead_name: str | None
    co_member_id: str | None
    co_name: str | None
    assigned_by: str | None
    note: str | None


async def rotate_group(db: Database, group_id: str, *, now: datetime) -> list[Assignment]:
    """Fill the group's upcoming sessions that have no lead; returns the rotation's answers.

    One write transaction per group, so two workers never fill the same session twice.
    """
    async with db.write() as conn:
        group = (
            await conn.execute(select(groups).where(groups.c.id == group_id).with_for_update())
        ).first()
        if group is None:
            return []
        tz = ZoneInfo(group.timezone)
        facilitators = await _facilitators(conn, group_id)
        rows = (
            await conn.execute(
                select(
                    sessions.c.id,
                    sessions.c.starts_at,
                    sessions.c.status,
                    sessions.c.lead_member_id,
                    sessions.c.co_member_id,
                ).where(
                    sessions.c.group_id == group_id,
                    sessions.c.starts_at >= now - POLICY.window,
                    sessions.c.starts_at <= now + AHEAD,
                )
            )
        ).all()
        history = [
            RotaEntry(r.id, r.starts_at, r.lead_member_id, r.co_member_id)
            for r in rows
            if r.lead_member_id is not None and r.status == SessionStatus.SCHEDULED
        ]
        slots = [
            Slot(r.id, r.starts_at)
            for r in rows
            if r.lead_member_id is None
            and r.status == SessionStatus.SCHEDULED
            and r.starts_at > now
        ]
        if not slots:
            return []
        booked = await booked_facilitators(conn, [s.session_id for s in slots])
        policy = policy_for(facilitators, history)
        plan: list[Assignment] = []
        # Slot by slot, in order, each answer joining the history: the same as planning them
        # at once, except that a facilitator who holds a place in a session as a participant
        # is never chosen to facilitate it.
        for slot in sorted(slots, key=lambda x: (x.starts_at, x.session_id)):
            taken = booked.get(slot.session_id, set())
            a = (
                reassign(slot, facilitators, history, policy, now=now, tz=tz, exclude=taken)
                if taken
                else plan_rotation(facilitators, history, [slot], policy, now=now, tz=tz)[0]
            )
            history.append(RotaEntry(slot.session_id, slot.starts_at, a.lead, a.co))
            plan.append(a)
            await _write(conn, a, now)
        return plan


def policy_for(facilitators: list[Facilitator], history: list[RotaEntry]) -> RotationPolicy:
    """The rotation policy for a group: the default, unless nobody is experienced yet.

    New facilitators are paired with an experienced one; a group where *everyone* is new
    (a new group, or one upgraded without ``led_before``) would otherwise never get a lead,
    so there everyone counts as experienced until some have led.
    """
    led: dict[str, int] = {}
    for entry in history:
        if entry.lead:
            led[entry.lead] = led.get(entry.lead, 0) + 1
    if any(f.led_before + led.get(f.member_id, 0) >= POLICY.new_threshold for f in facilitators):
        return POLICY
    return replace(POLICY, new_threshold=0)


async def booked_facilitators(conn: AsyncConnection, session_ids: list[str]) -> dict[str, set[str]]:
    """Per session, the members holding a place (confirmed or waitlisted) in it."""
    if not session_ids:
        return {}
    rows = (
        await conn.execute(
            select(bookings.c.session_id, bookings.c.member_id).where(
                bookings.c.session_id.in_(session_ids),
                bookings.c.status != BookingStatus.CANCELLED.value,
            )
        )
    ).all()
    found: dict[str, set[str]] = {}
    for r in rows:
        found.setdefault(r.session_id, set()).add(r.member_id)
    return found


async def _write(conn: AsyncConnection, a: Assignment, now: datetime) -> None:
    await conn.run_sync(_fill, a, now)


def _fill(conn: Connection, a: Assignment, now: datetime) -> None:
    uow = UnitOfWork(conn)
    uow.save(uow.session(a.session_id, known=Known.NONE).fill(a.lead, a.co, note=a.reason), now)


async def _facilitators(conn: AsyncConnection, group_id: str) -> list[Facilitator]:
    found = (
        await conn.execute(
            select(members).where(
                members.c.group_id == group_id, members.c.role == MemberRole.FACILITATOR.value
            )
        )
    ).all()
    days: dict[str, set[date]] = {}
    if found:
        for member_id, day in (
            await conn.execute(
                select(unavailability.c.member_id, unavailability.c.day).where(
                    unavailability.c.member_id.in_([m.id for m in found])
                )
            )
        ).all():
            days.setdefault(member_id, set()).add(day)
    return [
        Facilitator(
            member_id=m.id,
            joined_at=m.created_at,
            weight=m.weight,
            unavailable=frozenset(days.get(m.id, ())),
            led_before=m.led_before,
            max_per_quarter=m.max_per_quarter,
        )
        for m in found
    ]


async def rotate_all(db: Database, *, now: datetime) -> int:
    """Run the rotation for every group; returns how many sessions got a lead."""
    async with db.read() as conn:
        ids = (await conn.execute(select(groups.c.id))).scalars().all()
    filled = 0
    for group_id in ids:
        plan = await rotate_group(db, group_id, now=now)
        filled += sum(1 for a in plan if a.lead is not None)
    return filled


async def rota(db: Database, group_id: str, *, now: datetime, days: int = 180) -> list[RotaLine]:
    """The group's upcoming sessions with who leads, who co-facilitates, and who decided."""
    if not 1 <= days <= 800:
        raise Invalid("days must be 1 to 800", code="invalid_query")
    lead = members.alias("lead")
    co = members.alias("co")
    async with db.read() as conn:
        group = await group_row(conn, group_id)
        rows = (
            await conn.execute(
                select(
                    sessions,
                    lead.c.display_name.label("lead_name"),
                    co.c.display_name.label("co_name"),
                )
                .outerjoin(lead, lead.c.id == sessions.c.lead_member_id)
                .outerjoin(co, co.c.id == sessions.c.co_member_id)
                .where(
                    sessions.c.group_id == group_id,
                    sessions.c.ends_at > now,
                    sessions.c.starts_at <= now + timedelta(days=days),
                )
                .order_by(sessions.c.starts_at)
            )
        ).all()
    tz = ZoneInfo(group.timezone)
    return [_line(r, tz) for r in rows]


def _line(r: Any, tz: ZoneInfo) -> RotaLine:
    return RotaLine(
        session_id=r.id,
        starts_at=r.starts_at,
        local_start=r.starts_at.astimezone(tz).isoformat(),
        status=r.status,
        lead_member_id=r.lead_member_id,
        lead_name=r.lead_name,
        co_member_id=r.co_member_id,
        co_name=r.co_name,
        assigned_by=r.facilitators_by,
        note=r.rotation_note,
    )


async def set_unavailable(
    db: Database, member_id: str, days: list[date], *, today: date
) -> list[date]:
    """Replace a member's unavailable days from ``today`` on (past ones are kept as history)."""
    wanted = sorted(set(days))
    if len(wanted) > MAX_UNAVAILABLE_DAYS:
        raise Invalid(f"at most {MAX_UNAVAILABLE_DAYS} days", code="invalid_fields")
    if any(d < today or d > today + timedelta(days=3 * 366) for d in wanted):
        raise Invalid("days must be between today and three years ahead", code="invalid_fields")
    async with db.write() as conn:
        await member_row(conn, member_id)
        await conn.execute(
            unavailability.delete().where(
                unavailability.c.member_id == member_id, unavailability.c.day >= today
            )
        )
        if wanted:
            await conn.execute(
                unavailability.insert(), [{"member_id": member_id, "day": d} for d in wanted]
            )
    return await unavailable(db, member_id, today=today)


async def unavailable(db: Database, member_id: str, *, today: date) -> list[date]:
    """A member's unavailable days from ``today`` on."""
    async with db.read() as conn:
        await member_row(conn, member_id)
        found = (
            (
                await conn.execute(
                    select(unavailability.c.day)
                    .where(unavailability.c.member_id == member_id, unavailability.c.day >= today)
                    .order_by(unavailability.c.day)
                )
            )
            .scalars()
            .all()
        )
    return list(found)
