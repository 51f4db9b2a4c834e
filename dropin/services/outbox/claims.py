"""Claiming outbox rows for delivery, keeping the claim, and marking how each one ended.

1. **claim** — rows are taken in batches, only if due (pending, or left "sending" by a worker
   that died more than :data:`STALE_CLAIM` ago) *and* first undelivered for their session and
   member, so one person's messages about one session go out in the order written (an
   invite never arrives after its cancellation);
2. **renew** — just before a row is sent, so only a row actually on the wire can go stale;
3. **mark** — sent (each row as it is sent, never per batch), skipped, retry later with
   backoff, or failed with a reason that names no address.

A worker killed between the SMTP server's acceptance and step 3 leaves the row "sending"; it
is sent again after :data:`STALE_CLAIM`, with the same Message-ID, so mail clients drop the
duplicate. That is the only way a message can go out twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.engine import Connection

from dropin.domain.states import OutboxStatus
from dropin.store.db import Database
from dropin.store.tables import outbox

STALE_CLAIM = timedelta(minutes=5)
UNDELIVERED = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# A finished row's columns: its status, and the reason or time that goes with it.
Finish = dict[str, object]


def _due(now: datetime, stale: timedelta = STALE_CLAIM) -> ColumnElement[bool]:
    return or_(
        and_(
            outbox.c.status == OutboxStatus.PENDING,
            or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
        ),
        and_(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_at < now - stale),
    )


async def claim_batch(
    db: Database, *, now: datetime, limit: int = 20, stale: timedelta = STALE_CLAIM
) -> list[int]:
    """Take up to ``limit`` due rows for delivery, at most one per session and member.

    The claim is ``claimed_at = now``: the caller keeps ``now`` as its claim token.

    Candidates are the first undelivered row of each pair, so a pair's second message is
    never in flight while its first is; the conditional update (with RETURNING) makes sure
    that of two workers racing for a row exactly one gets it. Ids come back in write order.
    """
    earlier = outbox.alias("earlier")
    first_in_line = ~exists(
        select(earlier.c.id).where(
            # Plain equality (every row has a session; only organizer alerts lack a member):
            # IS NOT DISTINCT FROM would keep PostgreSQL from using the index.
            earlier.c.session_id == outbox.c.session_id,
            func.coalesce(earlier.c.member_id, "") == func.coalesce(outbox.c.member_id, ""),
            earlier.c.id < outbox.c.id,
            earlier.c.status.in_(UNDELIVERED),
        )
    )
    async with db.write() as conn:
        # Due rows that are first in line for their pair, however many rows wait in backoff
        # ahead of them (a window over the oldest rows would starve new mail behind retries).
        wanted = list(
            (
                await conn.execute(
                    select(outbox.c.id)
                    .where(outbox.c.status.in_(UNDELIVERED), _due(now, stale), first_in_line)
                    .order_by(outbox.c.id)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        if not wanted:
            return []
        taken = await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(wanted), _due(now, stale))
            .values(status=OutboxStatus.SENDING, claimed_at=now, attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id)
        )
        return sorted(int(i) for i in taken.scalars().all())


async def renew(db: Database, row_id: int, claim: datetime, *, now: datetime) -> datetime | None:
    """Refresh this worker's claim on a row just before sending it.

    ``claim`` is the ``claimed_at`` this worker wrote. Returns the new claim, or None when the
    row is no longer ours (another worker took it after our claim went stale): then we must
    not send it. Rows wait in a batch while earlier ones are sent; renewing each one as its
    turn comes means only a row actually on the wire can ever go stale.
    """
    done: bool = await db.run_write(_update_claimed, row_id, claim, {"claimed_at": now})
    return now if done else None


def _update_claimed(conn: Connection, row_id: int, claim: datetime, values: Finish) -> bool:
    """Set ``values`` on a row only while this worker's claim on it holds."""
    result = conn.execute(
        update(outbox)
        .where(
            outbox.c.id == row_id,
            outbox.c.status == OutboxStatus.SENDING,
            outbox.c.claimed_at == claim,
        )
        .values(**values)
    )
    return bool(result.rowcount == 1)


async def _finish(db: Database, row_id: int, claim: datetime, values: Finish) -> None:
    # On the hot path of every send: one synchronous statement in the writer (no loop hops).
    await db.run_write(_update_claimed, row_id, claim, values)


async def mark_sent(db: Database, row_id: int, claim: datetime, *, now: datetime) -> None:
    await _finish(
        db, row_id, claim, {"status": OutboxStatus.SENT, "sent_at": now, "last_error": None}
    )


async def mark_skipped(db: Database, row_id: int, claim: datetime, reason: str) -> None:
    await _finish(db, row_id, claim, {"status": OutboxStatus.SKIPPED, "last_error": reason})


async def mark_failed(db: Database, row_id: int, claim: datetime, reason: str) -> None:
    await _finish(db, row_id, claim, {"status": OutboxStatus.FAILED, "last_error": reason})


async def mark_retry(
    db: Database, row_id: int, claim: datetime, reason: str, *, at: datetime
) -> None:
    values: Finish = {"status": OutboxStatus.PENDING, "last_error": reason, "next_attempt_at": at}
    await _finish(db, row_id, claim, values)


async def attempts(db: Database, row_id: int) -> int:
    async with db.read() as conn:
        value = (
            await conn.execute(select(outbox.c.attempts).where(outbox.c.id == row_id))
        ).scalar_one_or_none()
    return int(value or 0)
