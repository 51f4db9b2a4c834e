"""What the scheduling core knows about a session's room: who may be in it and for how long.

The live room (``signaling``) keeps its state in memory; the only room fact kept in the
database is a removal, so that it sticks for the session across reconnects, new tokens and
server restarts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.store.db import Database
from dropin.store.tables import room_removals

# The room opens this long before the session starts, and stays open this long after it ends
# (drop-ins overrun; people who drop out then can still come back).
OPENS_BEFORE = timedelta(minutes=15)
CLOSES_AFTER = timedelta(minutes=10)


def _removal(session_id: str, member_id: str) -> Select[Any]:
    return select(room_removals.c.member_id).where(
        room_removals.c.session_id == session_id, room_removals.c.member_id == member_id
    )


async def record_removal(db: Database, session_id: str, member_id: str, now: datetime) -> None:
    """Keep ``member_id`` out of ``session_id``'s room for good (idempotent)."""
    async with db.write() as conn:
        if (await conn.execute(_removal(session_id, member_id))).first() is None:
            await conn.execute(
                room_removals.insert().values(
                    session_id=session_id, member_id=member_id, removed_at=now
                )
            )


async def is_removed(db: Database, session_id: str, member_id: str) -> bool:
    """Whether a facilitator removed ``member_id`` from ``session_id``'s room."""
    async with db.read() as conn:
        return await removed_in(conn, session_id, member_id)


async def removed_in(conn: AsyncConnection, session_id: str, member_id: str) -> bool:
    """:func:`is_removed` on an open connection."""
    return (await conn.execute(_removal(session_id, member_id))).first() is not None
