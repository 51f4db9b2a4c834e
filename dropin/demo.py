"""The demo that ``dropin dev`` sets up: a group, three people and a session starting now."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dropin.config import Settings
from dropin.services import bookings, groups, keys, links, series, sessions
from dropin.store.db import Database
from dropin.store.tables import groups as groups_table

DEMO_GROUP = "Demo: NVR parents circle"
DEMO_PEOPLE = (
    ("Alex", "alex@example.org", "facilitator"),
    ("Sam", "sam@example.org", "parent"),
    ("Priya", "priya@example.org", "parent"),
)


@dataclass(frozen=True)
class DemoInfo:
    admin_key: str
    group_id: str
    session_id: str
    starts_local: str
    links: list[tuple[str, str, str]]


async def _admin_key(db: Database, settings: Settings, now: datetime) -> str:
    """The dev admin key, kept in the data folder so it survives restarts."""
    path = settings.data_dir / "organizer_key"
    if path.exists():
        key = path.read_text().strip()
        if await keys.holder_of(db, key):
            return key
        path.unlink()
    new = await keys.create_key(db, "dev", now=now)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _write_private(path, new.key)
    return new.key


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


async def ensure_demo(db: Database, settings: Settings, *, now: datetime) -> DemoInfo:
    """Create (or reuse) the demo group and add a one-off session starting now."""
    key = await _admin_key(db, settings, now)
    async with db.read() as conn:
        row = (
            await conn.execute(select(groups_table.c.id).where(groups_table.c.name == DEMO_GROUP))
        ).first()
    if row is None:
        group = await groups.create_group(
            db, name=DEMO_GROUP, timezone=settings.default_timezone, now=now
        )
        people = await groups.add_members(
            db, group.id, [groups.NewMember(n, e, r) for n, e, r in DEMO_PEOPLE], now=now
        )
    else:
        group = await groups.get_group(db, row.id)
        people = await groups.list_members(db, group.id)
    group_id = group.id
    # The group's own zone: it may differ from today's default if that was changed since.
    tz = ZoneInfo(group.timezone)
    local_now = now.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    made = await series.create_series(
        db,
        group_id,
        series.SeriesInput(
            title="Demo drop-in",
            # Today's (starting now) and tomorrow's: the second is due its 24 h reminder.
            rrule="FREQ=DAILY;COUNT=2",
            first_start=local_now,
            duration_minutes=75,
            capacity=10,
        ),
        now=now,
        horizon_days=settings.horizon_days,
    )
    session, tomorrow = [
        s
        for s in await sessions.list_sessions(
            db, group_id, start=now - timedelta(hours=2), end=now + timedelta(days=2), now=now
        )
        if s.series_id == made.id
    ]
    lead = next(p for p in people if p.role == "facilitator")
    for demo in (session, tomorrow):
        await sessions.set_facilitators(
            db, demo.id, lead_member_id=lead.id, co_member_id=None, now=now
        )
    found: list[tuple[str, str, str]] = []
    for person in people:
        if person.role == "parent":
            await bookings.book_seat(db, session.id, person.id, now=now)
            await bookings.book_seat(db, tomorrow.id, person.id, now=now)
        link = await links.issue_join_link(
            db,
            secret=settings.secret_key,
            public_url=settings.public_url,
            session_id=session.id,
            member_id=person.id,
            now=now,
        )
        found.append((person.display_name, link.role, link.url))
    return DemoInfo(
        admin_key=key,
        group_id=group_id,
        session_id=session.id,
        starts_local=f"{session.local_start:%H:%M} {session.timezone}",
        links=found,
    )
