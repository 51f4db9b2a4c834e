"""Who may see and change what: an account reaches only the groups it organizes.

Admins reach everything on the server. Organizers reach the groups they organize and whatever
hangs off them (members, series, sessions, bookings, the mail owed for them); anything else
answers NotFound with the resource's own code, exactly as if it did not exist, so ids of other
organizations are never confirmed. Facilitator accounts organize nothing through the API.

Each check answers the group the resource belongs to (for the audit log), in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select

from dropin.domain.states import AccountRole
from dropin.errors import Forbidden, NotFound
from dropin.store.db import Database
from dropin.store.tables import (
    bookings,
    group_organizers,
    groups,
    members,
    outbox,
    series,
    sessions,
)


@dataclass(frozen=True)
class Actor:
    """The account a request acts as."""

    account_id: str
    role: AccountRole

    @property
    def is_admin(self) -> bool:
        return self.role == AccountRole.ADMIN

    def may_create_groups(self) -> None:
        """Forbidden unless an organizer or admin (a facilitator runs no groups)."""
        if self.role not in (AccountRole.ADMIN, AccountRole.ORGANIZER):
            raise Forbidden("only organizers and admins create groups", code="organizers_only")


async def _group_of(
    db: Database, actor: Actor, query: Select[Any], group: ColumnElement[Any], error: NotFound
) -> str:
    """The group ``query`` finds (its first column), if ``actor`` reaches it; else ``error``."""
    if not actor.is_admin:
        query = query.where(
            exists().where(
                group_organizers.c.group_id == group,
                group_organizers.c.account_id == actor.account_id,
            )
        )
    async with db.read() as conn:
        found = (await conn.execute(query.limit(1))).scalar_one_or_none()
    if found is None:
        raise error
    return str(found)


async def group(db: Database, actor: Actor, group_id: str) -> str:
    """``group_id`` if ``actor`` reaches it, else NotFound ``group_not_found``."""
    query = select(groups.c.id).where(groups.c.id == group_id)
    return await _group_of(
        db, actor, query, groups.c.id, NotFound("no such group", code="group_not_found")
    )


async def member(db: Database, actor: Actor, member_id: str) -> str:
    query = select(members.c.group_id).where(members.c.id == member_id)
    error = NotFound("no such member", code="member_not_found")
    return await _group_of(db, actor, query, members.c.group_id, error)


async def series_(db: Database, actor: Actor, series_id: str) -> str:
    query = select(series.c.group_id).where(series.c.id == series_id)
    error = NotFound("no such series", code="series_not_found")
    return await _group_of(db, actor, query, series.c.group_id, error)


async def session(db: Database, actor: Actor, session_id: str) -> str:
    query = select(sessions.c.group_id).where(sessions.c.id == session_id)
    error = NotFound("no such session", code="session_not_found")
    return await _group_of(db, actor, query, sessions.c.group_id, error)


async def booking(db: Database, actor: Actor, booking_id: str) -> str:
    query = (
        select(sessions.c.group_id)
        .select_from(bookings.join(sessions, sessions.c.id == bookings.c.session_id))
        .where(bookings.c.id == booking_id)
    )
    error = NotFound("no such booking", code="booking_not_found")
    return await _group_of(db, actor, query, sessions.c.group_id, error)


async def outbox_row(db: Database, actor: Actor, row_id: int) -> str:
    error = NotFound("no failed message with that id", code="message_not_found")
    if not 0 < row_id < 2**31:  # the column is a 32-bit integer
        raise error
    # A row is the group's through its session, or (mail about the member alone, such as new
    # links) through its member.
    group_of_row = func.coalesce(sessions.c.group_id, members.c.group_id)
    query = (
        select(group_of_row)
        .select_from(
            outbox.outerjoin(sessions, sessions.c.id == outbox.c.session_id).outerjoin(
                members, members.c.id == outbox.c.member_id
            )
        )
        .where(outbox.c.id == row_id)
    )
    return await _group_of(db, actor, query, group_of_row, error)


async def group_ids(db: Database, actor: Actor) -> list[str] | None:
    """The groups ``actor`` organizes (None for an admin: all of them)."""
    if actor.is_admin:
        return None
    async with db.read() as conn:
        rows = await conn.execute(
            select(group_organizers.c.group_id).where(
                group_organizers.c.account_id == actor.account_id
            )
        )
        return [r.group_id for r in rows]
