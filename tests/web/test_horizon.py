"""The rolling horizon: series are materialized ahead, extended idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dropin.services import groups, series
from dropin.services.series import extend_horizons
from dropin.store.db import Database
from dropin.store.tables import sessions

pytestmark = pytest.mark.asyncio


async def test_extend_horizon_adds_only_new_sessions(db: Database) -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    group = await groups.create_group(db, name="G", timezone="Europe/London", now=start)
    made = await series.create_series(
        db,
        group.id,
        series.SeriesInput("Weekly", "FREQ=WEEKLY;BYDAY=TU", datetime(2027, 1, 1, 19, 30), 60, 8),
        now=start,
        horizon_days=28,
    )
    assert made.sessions_created == 4

    async def count() -> int:
        async with db.read() as conn:
            result = await conn.execute(select(func.count()).select_from(sessions))
            return int(result.scalar_one())

    later = start + timedelta(days=14)
    assert await extend_horizons(db, now=later, horizon_days=28) == 2
    assert await count() == 6
    # Running again (or concurrently from another worker) creates nothing twice.
    assert await extend_horizons(db, now=later, horizon_days=28) == 0
    assert await count() == 6
