"""Use cases for recurring series: create, edit (re-plan future sessions), extend horizons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain import validate
from dropin.domain.recurrence import (
    MAX_OCCURRENCES,
    Occurrence,
    RecurrenceError,
    SeriesRule,
    first_occurrence,
    normalize_rrule,
    occurrences,
    resolve_local,
)
from dropin.domain.schedule import (
    Existing,
    new_occurrences,
    occurrence_key,
    replan,
    tolerance,
)
from dropin.domain.session import MAX_CAPACITY, MAX_DURATION_MINUTES, Known
from dropin.domain.states import SessionStatus
from dropin.errors import Conflict, Invalid, NotFound
from dropin.services.common import group_row, new_id
from dropin.services.edits import SeriesEdit, changed
from dropin.services.views import SeriesView
from dropin.store.db import Database
from dropin.store.tables import series, sessions
from dropin.store.uow import UnitOfWork

FIRST_START_YEARS = 10


@dataclass(frozen=True)
class SeriesInput:
    """A series as the organizer describes it. ``first_start`` is naive local wall-clock."""

    title: str
    rrule: str
    first_start: datetime
    duration_minutes: int
    capacity: int


def check_series(value: SeriesInput, timezone: str, *, now: datetime) -> SeriesInput:
    """``value`` with a canonical RRULE, or :class:`Invalid` saying what is wrong.

    ``first_start`` must lie within :data:`FIRST_START_YEARS` of ``now``.
    """
    try:
        title = validate.text(value.title, field="title", max_len=200)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if value.first_start.tzinfo is not None:
        raise Invalid(
            "first_start is local wall-clock time in the group's zone: give it without an offset",
            code="invalid_first_start",
        )
    span = timedelta(days=366 * FIRST_START_YEARS)
    local_now = now.replace(tzinfo=None)
    if not local_now - span <= value.first_start <= local_now + span:
        raise Invalid(
            f"first_start must be within {FIRST_START_YEARS} years of today",
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


def _rule(row: Row[Any] | SeriesInput, timezone: str) -> SeriesRule:
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
    async with db.read() as conn:
        group = await group_row(conn, group_id)
    # Rule work happens before the write lock is taken (it is bounded, but not free).
    checked = check_series(value, group.timezone, now=now)
    rule = _rule(checked, group.timezone)
    horizon = now + timedelta(days=horizon_days)
    # A session already under way still counts: start the window one duration back.
    found = occurrences(rule, now - rule.duration, horizon)
    series_id = new_id()
    async with db.write() as conn:
        await group_row(conn, group_id)
        await conn.execute(
            series.insert().values(
                id=series_id,
                group_id=group_id,
                title=checked.title,
                rrule=checked.rrule,
                first_start=checked.first_start,
                duration_minutes=checked.duration_minutes,
                capacity=checked.capacity,
                materialized_until=_covered(found, horizon),
                created_at=now,
                updated_at=now,
            )
        )
        await _insert_sessions(conn, group_id, series_id, found, checked.capacity, now)
        row = (await conn.execute(select(series).where(series.c.id == series_id))).one()
    return series_view(row, group.timezone, created=len(found))


def _covered(found: list[Occurrence], horizon: datetime) -> datetime:
    """How far the rows now reach: the horizon, or the last row if the cap was hit."""
    if len(found) >= MAX_OCCURRENCES:
        return found[-1].starts_at
    return horizon


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
                "status": SessionStatus.SCHEDULED.value,
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


async def _series_row(conn: AsyncConnection, series_id: str, *, lock: bool = False) -> Row[Any]:
    query = select(series).where(series.c.id == series_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
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
    edit: SeriesEdit,
    *,
    now: datetime,
    horizon_days: int,
) -> SeriesView:
    """Edit a series; its future sessions are re-planned and keep their bookings.

    ``edit`` gives any of the :class:`SeriesInput` fields. Sessions that have started, and
    sessions the organizer cancelled by hand, are never touched. See
    :mod:`dropin.domain.schedule` for how sessions and occurrences are aligned.
    """
    async with db.read() as conn:
        current = await _series_row(conn, series_id)
        group = await group_row(conn, current.group_id)
    changes = changed(edit)
    merged = SeriesInput(
        title=changes.get("title", current.title),
        rrule=changes.get("rrule", current.rrule),
        first_start=changes.get("first_start", current.first_start),
        duration_minutes=changes.get("duration_minutes", current.duration_minutes),
        capacity=changes.get("capacity", current.capacity),
    )
    checked = check_series(merged, group.timezone, now=now)
    rule = _rule(checked, group.timezone)
    horizon = max(current.materialized_until, now + timedelta(days=horizon_days))
    wanted = occurrences(rule, now, horizon)
    async with db.write() as conn:
        row = await _series_row(conn, series_id, lock=True)
        if row.updated_at != current.updated_at:
            # Another edit landed while this one was being worked out: writing our merge over
            # it would silently undo it.
            raise Conflict(
                "the series was changed meanwhile; reload it and try again", code="edit_conflict"
            )
        await conn.execute(
            series.update()
            .where(series.c.id == series_id)
            .values(
                title=checked.title,
                rrule=checked.rrule,
                first_start=checked.first_start,
                duration_minutes=checked.duration_minutes,
                capacity=checked.capacity,
                materialized_until=_covered(wanted, horizon),
                updated_at=now,
            )
        )
        timing = (checked.rrule, checked.first_start, checked.duration_minutes)
        if timing != (row.rrule, row.first_start, row.duration_minutes):
            await _replan(conn, row, rule, wanted, checked.capacity, now)
        if checked.capacity != row.capacity:
            await _resize(conn, row, checked.capacity, now)
        updated = (await conn.execute(select(series).where(series.c.id == series_id))).one()
    return series_view(updated, group.timezone)


def _parked(session_id: str) -> str:
    """A key no occurrence can have, unique per session (keys are 19 characters)."""
    return f"~{session_id[:18]}"


async def _replan(
    conn: AsyncConnection,
    row: Row[Any],
    rule: SeriesRule,
    wanted: list[Occurrence],
    capacity: int,
    now: datetime,
) -> None:
    all_rows = (
        await conn.execute(select(sessions).where(sessions.c.series_id == row.id).with_for_update())
    ).all()
    tz = ZoneInfo(rule.timezone)
    # In play: every future session. One the organizer cancelled by hand takes part in the
    # alignment (so its occurrence is not created again) but is never moved or reinstated.
    future = [s for s in all_rows if s.starts_at > now]
    in_play = {s.id for s in future}
    held = {s.occurrence_key for s in all_rows if s.id not in in_play}
    wanted = [o for o in wanted if occurrence_key(o.local_start) not in held]
    plan = replan(
        [Existing(s.id, _anchor(s, tz), s.rescheduled) for s in future],
        wanted,
        tolerance(wanted),
    )
    by_id = {s.id: s for s in future}
    # Park every key in play first so that the unique (series, key) never clashes mid-way.
    for s in future:
        await conn.execute(
            sessions.update().where(sessions.c.id == s.id).values(occurrence_key=_parked(s.id))
        )
    for move in plan.move:
        old = by_id[move.session_id]
        occ = move.occurrence
        await conn.execute(
            sessions.update()
            .where(sessions.c.id == old.id)
            .values(occurrence_key=occurrence_key(occ.local_start))
        )
        if not _cancelled_by_hand(old):
            await conn.run_sync(_follow, old.id, occ, move.retime, now)
    for session_id in plan.retire:
        await conn.run_sync(_retire, session_id, now)
    await _insert_sessions(conn, row.group_id, row.id, list(plan.create), capacity, now)


def _follow(
    conn: Connection, session_id: str, occ: Occurrence, retime: bool, now: datetime
) -> None:
    uow = UnitOfWork(conn)
    session = uow.session(session_id, lock=False)  # the caller holds the series' sessions
    uow.save(session.follow_series(occ.starts_at, occ.ends_at, retime=retime, now=now), now)


def _retire(conn: Connection, session_id: str, now: datetime) -> None:
    uow = UnitOfWork(conn)
    uow.save(uow.session(session_id, lock=False).retire(), now)


def _resize_one(conn: Connection, session_id: str, capacity: int, now: datetime) -> None:
    uow = UnitOfWork(conn)
    uow.save(uow.session(session_id, known=Known.WAITLIST).resize(capacity, now), now)


def _cancelled_by_hand(row: Row[Any]) -> bool:
    return bool(row.status == SessionStatus.CANCELLED and not row.retired)


def _anchor(row: Row[Any], tz: ZoneInfo) -> datetime:
    """Where the rule put this session (its key), or its start if the key is parked."""
    try:
        return resolve_local(datetime.fromisoformat(row.occurrence_key), tz)
    except ValueError:
        starts_at: datetime = row.starts_at
        return starts_at


async def _resize(conn: AsyncConnection, row: Row[Any], capacity: int, now: datetime) -> None:
    """Apply a new series capacity to future sessions that still have the old one.

    A capacity the organizer set on one session by hand is left alone.
    """
    resized = (
        await conn.execute(
            select(sessions.c.id).where(
                sessions.c.series_id == row.id,
                sessions.c.starts_at > now,
                sessions.c.capacity == row.capacity,
            )
        )
    ).all()
    for (session_id,) in resized:
        await conn.run_sync(_resize_one, session_id, capacity, now)


async def _taken_keys(conn: AsyncConnection, series_id: str) -> set[str]:
    rows = await conn.execute(
        select(sessions.c.occurrence_key).where(sessions.c.series_id == series_id)
    )
    return {r.occurrence_key for r in rows.all()}


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
            row = await _series_row(conn, series_id, lock=True)
            if row.materialized_until >= horizon:
                continue
            group = await group_row(conn, row.group_id)
            found = occurrences(_rule(row, group.timezone), row.materialized_until, horizon)
            fresh = new_occurrences(found, await _taken_keys(conn, row.id))
            await _insert_sessions(conn, row.group_id, row.id, fresh, row.capacity, now)
            await conn.execute(
                series.update()
                .where(series.c.id == row.id)
                .values(materialized_until=_covered(found, horizon))
            )
            created += len(fresh)
    return created
