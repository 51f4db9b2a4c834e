"""Helpers shared by the use cases: ids and lookups that raise NotFound."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.errors import NotFound
from dropin.store.tables import groups, members, sessions


def new_id() -> str:
    """A random, unguessable 32-hex-character id."""
    return uuid.uuid4().hex


async def group_row(conn: AsyncConnection, group_id: str) -> Row[Any]:
    row = (await conn.execute(select(groups).where(groups.c.id == group_id))).first()
    if row is None:
        raise NotFound("no such group", code="group_not_found")
    return row


async def member_row(conn: AsyncConnection, member_id: str) -> Row[Any]:
    row = (await conn.execute(select(members).where(members.c.id == member_id))).first()
    if row is None:
        raise NotFound("no such member", code="member_not_found")
    return row


async def session_row(conn: AsyncConnection, session_id: str, *, lock: bool = False) -> Row[Any]:
    query = select(sessions).where(sessions.c.id == session_id)
    if lock:
        # PostgreSQL: serialize every decision about this session's seats on its row.
        # SQLite ignores FOR UPDATE; its write transactions are already serialized.
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound("no such session", code="session_not_found")
    return row
