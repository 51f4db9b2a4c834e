"""What operators see of the outbox and do with it: queue depth, rows by status, retry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from dropin.domain.states import OutboxStatus
from dropin.errors import Invalid, NotFound
from dropin.store.db import Database
from dropin.store.tables import members, outbox, sessions


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    sending: int
    failed: int
    oldest_pending_seconds: float | None


async def stats(db: Database, *, now: datetime) -> OutboxStats:
    """Queue depth for /healthz and `dropin worker --check`."""
    counted = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED)
    async with db.read() as conn:
        grouped = await conn.execute(
            select(outbox.c.status, func.count())
            .where(outbox.c.status.in_(counted))
            .group_by(outbox.c.status)
        )
        counts: dict[str, int] = {str(r[0]): int(r[1]) for r in grouped.all()}
        oldest = (
            await conn.execute(
                select(func.min(outbox.c.created_at)).where(outbox.c.status == OutboxStatus.PENDING)
            )
        ).scalar_one_or_none()
    age = None if oldest is None else (now - oldest).total_seconds()
    pending, sending, failed = (int(counts.get(status, 0)) for status in counted)
    return OutboxStats(pending, sending, failed, age)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    session_id: str | None
    member_id: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None


STATUSES = tuple(OutboxStatus)


async def list_rows(
    db: Database, *, status: str, group_ids: list[str] | None = None, limit: int = 100
) -> list[OutboxRow]:
    """Outbox rows in ``status``, newest first: ids and reasons, never addresses.

    ``group_ids``: only the mail owed for these groups' sessions, and to their members about
    themselves (new links: no session); None: all mail.
    """
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", code="invalid_query")
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    outbox.c.id,
                    outbox.c.kind,
                    outbox.c.session_id,
                    outbox.c.member_id,
                    outbox.c.status,
                    outbox.c.attempts,
                    outbox.c.last_error,
                    outbox.c.created_at,
                    outbox.c.next_attempt_at,
                    outbox.c.sent_at,
                )
                .where(outbox.c.status == status, *_in_groups(group_ids))
                .order_by(outbox.c.id.desc())
                .limit(max(1, min(limit, 500)))
            )
        ).all()
    return [OutboxRow(**r._mapping) for r in rows]


def _in_groups(group_ids: list[str] | None) -> list[Any]:
    if group_ids is None:
        return []
    mine = select(sessions.c.id).where(sessions.c.group_id.in_(group_ids))
    theirs = select(members.c.id).where(members.c.group_id.in_(group_ids))
    about_a_member = and_(outbox.c.session_id.is_(None), outbox.c.member_id.in_(theirs))
    return [or_(outbox.c.session_id.in_(mine), about_a_member)]


async def retry_row(db: Database, row_id: int) -> None:
    """Send a failed row again (after fixing the address, say): it goes back in line."""
    async with db.write() as conn:
        done = await conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.status == OutboxStatus.FAILED)
            .values(status=OutboxStatus.PENDING, next_attempt_at=None)
        )
        if done.rowcount != 1:
            raise NotFound("no failed message with that id", code="message_not_found")
