"""Forgetting who booked and what was mailed, once sessions are long over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from dropin.services.outbox.claims import UNDELIVERED
from dropin.store.db import Database
from dropin.store.tables import bookings, outbox, room_removals, sessions


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
