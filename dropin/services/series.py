"""Use cases for recurring series: create, edit (re-plan future sessions), extend horizons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain import validate
from dropin.domain.recurrence import (
    Occurrence,
    RecurrenceError,
    SeriesRule,
    first_occurrence,
    normalize_rrule,
    occurrences,
)
from dropin.domain.schedule import Existing, new_occurrences, occurrence_key, replan
from dropin.errors import Invalid, NotFound
from dropin.services.bookings import promote_waitlist
from dropin.services.common import emit, group_row, new_id
from dropin.services.views import SeriesView
from dropin.store.db import Database
from dropin.store.tables import bookings, series, sessions

MAX_CAPACITY = 500
MAX_DURATION_MINUTES = 24 * 60


@dataclass(frozen=True)
class SeriesInput:
    """A series as the organizer describes it. ``first_start`` is naive local wall-clock."""

    title: str
    rrule: str
    first_start: datetime
    duration_minutes: int
    capacity: int


def check_series(value: SeriesInput, timezone: str) -> SeriesInput:
    """``value`` with a canonical RRULE, or :class:`Invalid` saying what is wrong."""
    try:
        title = validate.text(value.title, field="title", max_len=200)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if value.first_start.tzinfo is not None:
        raise Invalid(
            "first_start is local wall-clock time in the group's zone: give it without an offset",
            code="invalid_first_start",
        )
    if not 1 <= value.duration_minutes <= MAX_DURATION_MINUTES:
        raise Invalid(f"duration_minutes must be 1 to {MAX_DURATION_MINUTES}")
    if not 1 <= value.capacity <= MAX_CAPACITY:
        raise Invalid(f"capacity must be 1 to {MAX_CAPACITY}")
    try:
        rrule = normalize_rrule(value.rrule)
        rule = SeriesRule(
            rrule,
            value.first_start.replace(second=0, microsecond=0),
            timedelta(minutes=value.duration_minutes),
            timezone,
        )
        if first_occurrence(rule) is None:
            raise Invalid(
                "this rule has no occurrence in the next five years", code="invalid_rrule"
            )
    except RecurrenceError as exc:
        raise Invalid(str(exc), code="invalid_rrule") from None
    return SeriesInput(title, rrule, rule.first_start, value.duration_minutes, value.capacity)


def _rule(row: Row[Any], timezone: str) -> SeriesRule:
    return SeriesRule(row.rrule, row.first_start, timedelta(minutes=row.duration_minutes), timezone)


def series_view(row: Row[Any], timezone: str, created: int = 0) -> SeriesView:
    return SeriesView(
        id=row.id,
        group_id=row.group_id,
        title=row.title,
        rrule=row.rrule,
        first_start=row.first_start,
        duration_minutes=row.duration_minutes,
        capacity=row.capacity,
        timezone=timezone,
        materialized_until=row.materialized_until,
        sessions_created=created,
    )


async def create_series(
    db: Database, group_id: str, value: SeriesInput, *, now: datetime, horizon_days: int
) -> SeriesView:
    """Create a series and materialize its sessions from now to the horizon."""
    async with db.write() as conn:
        group = await group_row(conn, group_id)
        checked = check_series(value, group.timezone)
        horizon = now + timedelta(days=horizon_days)
        series_id = new_id()
        await conn.execute(
            series.insert().values(
                id=series_id,
                group_id=group_id,
                title=checked.title,
                rrule=checked.rrule,
                first_start=checked.first_start,
                duration_minutes=checked.duration_minutes,
                capacity=checked.capacity,
                materialized_until=horizon,
                created_at=now,
                updated_at=now,
            )
        )
        rule = SeriesRule(
            checked.rrule,
            checked.first_start,
            timedelta(minutes=checked.duration_minutes),
            group.timezone,
        )
        # A session already under way still counts: start the window one duration back.
        found = occurrences(rule, now - rule.duration, horizon)
        await _insert_sessions(conn, group_id, series_id, found, checked.capacity, now)
        row = (await conn.execute(select(series).where(series.c.id == series_id))).one()
    return series_view(row, group.timezone, created=len(found))


async def _insert_sessions(
    conn: AsyncConnection,
    group_id: str,
    series_id: str,
    found: list[Occurrence],
    capacity: int,
    now: datetime,
) -> None:
    if not found:
        return
    await conn.execute(
        sessions.insert(),
        [
            {
                "id": new_id(),
                "group_id": group_id,
                "series_id": series_id,
                "occurrence_key": occurrence_key(o.local_start),
                "starts_at": o.starts_at,
                "ends_at": o.ends_at,
                "status": "scheduled",
                "capacity": capacity,
                "rescheduled": False,
                "sequence": 0,
                "confirmed_count": 0,
                "waitlist_count": 0,
                "next_waitlist_seq": 1,
                "created_at": now,
                "updated_at": now,
            }
            for o in found
        ],
    )


async def _series_row(conn: AsyncConnection, series_id: str) -> Row[Any]:
    row = (
        await conn.execute(select(series).where(series.c.id == series_id).with_for_update())
    ).first()
    if row is None:
        raise NotFound("no such series", code="series_not_found")
    return row


async def get_series(db: Database, series_id: str) -> SeriesView:
    async with db.read() as conn:
        row = await _series_row(conn, series_id)
        group = await group_row(conn, row.group_id)
    return series_view(row, group.timezone)


async def list_series(db: Database, group_id: str) -> list[SeriesView]:
    async with db.read() as conn:
        group = await group_row(conn, group_id)
        rows = (
            await conn.execute(
                select(series).where(series.c.group_id == group_id).order_by(series.c.created_at)
            )
        ).all()
    return [series_view(r, group.timezone) for r in rows]


async def update_series(
    db: Database,
    series_id: str,
    changes: dict[str, Any],
    *,
    now: datetime,
    horizon_days: int,
) -> SeriesView:
    """Edit a series; its future sessions are re-planned and keep their bookings.

    ``changes`` holds any of the :class:`SeriesInput` fields. Sessions that have started are
    never touched. See :mod:`dropin.domain.schedule` for how sessions are paired.
    """
    async with db.write() as conn:
        row = await _series_row(conn, series_id)
        group = await group_row(conn, row.group_id)
        merged = SeriesInput(
            title=changes.get("title", row.title),
            rrule=changes.get("rrule", row.rrule),
            first_start=changes.get("first_start", row.first_start),
            duration_minutes=changes.get("duration_minutes", row.duration_minutes),
            capacity=changes.get("capacity", row.capacity),
        )
        checked = check_series(merged, group.timezone)
        horizon = max(row.materialized_until, now + timedelta(days=horizon_days))
        await conn.execute(
            series.update()
            .where(series.c.id == series_id)
            .values(
                title=checked.title,
                rrule=checked.rrule,
                first_start=checked.first_start,
                duration_minutes=checked.duration_minutes,
                capacity=checked.capacity,
                materialized_until=horizon,
                updated_at=now,
            )
        )
        timing_changed = (checked.rrule, checked.first_start, checked.duration_minutes) != (
            row.rrule,
            row.first_start,
            row.duration_minutes,
        )
        if timing_changed or checked.capacity != row.capacity:
            rule = SeriesRule(
                checked.rrule,
                checked.first_start,
                timedelta(minutes=checked.duration_minutes),
                group.timezone,
            )
            await _replan(conn, row, rule, checked.capacity, now, horizon, timing_changed)
        updated = (await conn.execute(select(series).where(series.c.id == series_id))).one()
    return series_view(updated, group.timezone)


async def _replan(
    conn: AsyncConnection,
    row: Row[Any],
    rule: SeriesRule,
    capacity: int,
    now: datetime,
    horizon: datetime,
    timing_changed: bool,
) -> None:
    future = (
        await conn.execute(
            select(sessions)
            .where(sessions.c.series_id == row.id, sessions.c.starts_at > now)
            .with_for_update()
        )
    ).all()
    by_id = {s.id: s for s in future}
    if timing_changed:
        wanted = occurrences(rule, now, horizon)
        existing = [Existing(s.id, s.occurrence_key, s.starts_at, s.rescheduled) for s in future]
        plan = replan(existing, wanted)
    else:
        plan = replan([], [])
    # Keys move between rows: park them first so the unique (series, key) never clashes.
    for move in plan.move:
        await conn.execute(
            sessions.update()
            .where(sessions.c.id == move.session_id)
            .values(occurrence_key=f"~{move.session_id[:18]}")
        )
    moved: set[str] = set()
    for move in plan.move:
        old = by_id[move.session_id]
        values: dict[str, Any] = {"occurrence_key": occurrence_key(move.occurrence.local_start)}
        if move.retime and (old.starts_at, old.ends_at) != (
            move.occurrence.starts_at,
            move.occurrence.ends_at,
        ):
            values.update(
                starts_at=move.occurrence.starts_at,
                ends_at=move.occurrence.ends_at,
                sequence=old.sequence + 1,
                updated_at=now,
            )
            moved.add(old.id)
        await conn.execute(sessions.update().where(sessions.c.id == old.id).values(**values))
    for session_id in plan.retire:
        old = by_id[session_id]
        if old.status != "cancelled":
            await conn.execute(
                sessions.update()
                .where(sessions.c.id == session_id)
                .values(status="cancelled", sequence=old.sequence + 1, updated_at=now)
            )
            await _tell_booked(conn, session_id, "session_cancelled", now)
    taken = {
        r.occurrence_key
        for r in (
            await conn.execute(
                select(sessions.c.occurrence_key).where(sessions.c.series_id == row.id)
            )
        ).all()
    }
    await _insert_sessions(
        conn, row.group_id, row.id, new_occurrences(plan.create, taken), capacity, now
    )
    for session_id in moved:
        await _tell_booked(conn, session_id, "session_rescheduled", now)
    if capacity != row.capacity:
        retired = set(plan.retire)
        for s in future:
            if s.id in retired:
                continue
            await conn.execute(
                sessions.update().where(sessions.c.id == s.id).values(capacity=capacity)
            )
            if capacity > s.capacity:
                await conn.run_sync(promote_waitlist, s.id, now)


async def _tell_booked(conn: AsyncConnection, session_id: str, kind: str, now: datetime) -> None:
    rows = (
        await conn.execute(
            select(bookings.c.id, bookings.c.member_id).where(
                bookings.c.session_id == session_id, bookings.c.status != "cancelled"
            )
        )
    ).all()
    for b in rows:
        await emit(conn, kind, now, session_id=session_id, member_id=b.member_id, booking_id=b.id)


async def extend_horizons(db: Database, *, now: datetime, horizon_days: int) -> int:
    """Materialize every series up to ``now + horizon_days``; returns sessions created.

    Safe to run concurrently and repeatedly: existing occurrence keys are skipped.
    """
    horizon = now + timedelta(days=horizon_days)
    created = 0
    async with db.read() as conn:
        due = (
            await conn.execute(select(series.c.id).where(series.c.materialized_until < horizon))
        ).all()
    for (series_id,) in due:
        async with db.write() as conn:
            row = await _series_row(conn, series_id)
            if row.materialized_until >= horizon:
                continue
            group = await group_row(conn, row.group_id)
            found = occurrences(_rule(row, group.timezone), row.materialized_until, horizon)
            taken = {
                r.occurrence_key
                for r in (
                    await conn.execute(
                        select(sessions.c.occurrence_key).where(sessions.c.series_id == row.id)
                    )
                ).all()
            }
            fresh = new_occurrences(found, taken)
            await _insert_sessions(conn, row.group_id, row.id, fresh, row.capacity, now)
            await conn.execute(
                series.update().where(series.c.id == row.id).values(materialized_until=horizon)
            )
            created += len(fresh)
    return created
