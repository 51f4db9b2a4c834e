"""Who may see and change what: an account reaches only the groups it organizes.

Admins reach everything on the server. Organizers reach the groups they organize and whatever
hangs off them (members, series, sessions, bookings, the mail owed for them); anything else
answers NotFound with the resource's own code, exactly as if it did not exist, so ids of other
organizations are never confirmed. Facilitator accounts organize nothing through the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, select

from dropin.domain.states import AccountRole
from dropin.errors import Forbidden, NotFound
from dropin.store.db import Database
from dropin.store.tables import bookings, group_organizers, members, outbox, series, sessions


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


def _organized_by(actor: Actor, group_column: object) -> object:
    return exists().where(
        group_organizers.c.group_id == group_column,
        group_organizers.c.account_id == actor.account_id,
    )


def _reach(actor: Actor, query: Select[tuple[int]], group_column: object) -> Select[tuple[int]]:
    return query.where(_organized_by(actor, group_column))  # type: ignore[arg-type]


async def _check(db: Database, actor: Actor, query: Select[tuple[int]], error: NotFound) -> None:
    if actor.is_admin:
        return
    async with db.read() as conn:
        if (await conn.execute(query.limit(1))).first() is None:
            raise error


async def group(db: Database, actor: Actor, group_id: str) -> None:
    """NotFound ``group_not_found`` unless ``actor`` reaches the group."""
    query = _reach(actor, select(1), group_id)
    await _check(db, actor, query, NotFound("no such group", code="group_not_found"))


async def member(db: Database, actor: Actor, member_id: str) -> None:
    query = _reach(actor, select(1).where(members.c.id == member_id), members.c.group_id)
    await _check(db, actor, query, NotFound("no such member", code="member_not_found"))


async def series_(db: Database, actor: Actor, series_id: str) -> None:
    query = _reach(actor, select(1).where(series.c.id == series_id), series.c.group_id)
    await _check(db, actor, query, NotFound("no such series", code="series_not_found"))


async def session(db: Database, actor: Actor, session_id: str) -> None:
    query = _reach(actor, select(1).where(sessions.c.id == session_id), sessions.c.group_id)
    await _check(db, actor, query, NotFound("no such session", code="session_not_found"))


async def booking(db: Database, actor: Actor, booking_id: str) -> None:
    query = _reach(
        actor,
        select(1)
        .select_from(bookings.join(sessions, sessions.c.id == bookings.c.session_id))
        .where(bookings.c.id == booking_id),
        sessions.c.group_id,
    )
    await _check(db, actor, query, NotFound("no such booking", code="booking_not_found"))


async def outbox_row(db: Database, actor: Actor, row_id: int) -> None:
    error = NotFound("no failed message with that id", code="message_not_found")
    if not 0 < row_id < 2**31:  # the column is a 32-bit integer
        raise error
    query = _reach(
        actor,
        select(1)
        .select_from(outbox.join(sessions, sessions.c.id == outbox.c.session_id))
        .where(outbox.c.id == row_id),
        sessions.c.group_id,
    )
    await _check(db, actor, query, error)


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
