"""arq jobs. Each takes ids or nothing, never objects; ``ctx`` carries what the worker owns.

ctx: ``db`` (Database), ``settings``, ``mailer`` (workers.mail), ``links`` (LinkMaker) and arq's
``redis`` pool. Logs carry outbox row ids and reasons, never names or addresses.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from dropin.config import Settings
from dropin.jobs import SWEEP_OUTBOX, sweep_job_id
from dropin.services import erasure, handoff, rota
from dropin.services.feeds import LinkMaker
from dropin.services.outbox import claims, producers, retention
from dropin.services.outbox.compose import Outgoing, compose_row
from dropin.services.series import extend_horizons
from dropin.store.db import Database
from workers.mail import Mailer, MailError, backoff

log = logging.getLogger("dropin.worker")
# Rows claimed at a time: small, so a dead worker strands few and others share the work.
BATCH = 20
# Messages composed ahead of the one being sent.
COMPOSE_AHEAD = 4
# A sweep hands over to a fresh job after this long, so a backlog never blocks the cron.
SWEEP_SECONDS = 60.0


def _now() -> datetime:
    return datetime.now(UTC)


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """Deliver every due outbox row, batch after batch, until none is due or time is up.

    Runs every few seconds from cron and right after a request wrote outbox rows (so nothing
    waits on a lost enqueue). Several sweeps may run at once, here or on other workers:
    each claims its own rows. Returns how many rows were finished.
    """
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    stale = timedelta(seconds=settings.outbox_claim_timeout)
    finished = 0
    deadline = time.monotonic() + SWEEP_SECONDS
    while time.monotonic() < deadline:
        claimed_at = _now()
        batch = await claims.claim_batch(db, now=claimed_at, limit=BATCH, stale=stale)
        if not batch:
            break
        finished += await _deliver_batch(ctx, batch, claimed_at)
    else:
        # Out of time with rows left: hand over to a fresh sweep rather than hog a job slot.
        await ctx["redis"].enqueue_job(SWEEP_OUTBOX, _job_id=f"{sweep_job_id(_now())}-more")
    return finished


async def _deliver_batch(ctx: dict[str, Any], batch: list[int], claimed_at: datetime) -> int:
    """Compose messages ahead while earlier ones are on the wire (one SMTP connection).

    Composing waits on the database and sending on the SMTP server, so a few compositions run
    ahead of the sender. Sends stay one at a time, in order, each marked as it is sent, so a
    kill can repeat at most the one message in flight.
    """
    ahead = asyncio.Semaphore(COMPOSE_AHEAD)

    async def prepare(row_id: int) -> Outgoing | None:
        async with ahead:
            return await _compose(ctx, row_id)

    composing = [asyncio.create_task(prepare(row_id)) for row_id in batch]
    finished = 0
    try:
        for row_id, task in zip(batch, composing, strict=True):
            if await _send(ctx, row_id, claimed_at, await task):
                finished += 1
    finally:
        for task in composing:
            task.cancel()
        await asyncio.gather(*composing, return_exceptions=True)
    return finished


async def _compose(ctx: dict[str, Any], row_id: int) -> Outgoing | None:
    settings: Settings = ctx["settings"]
    try:
        return await compose_row(ctx["db"], ctx["links"], settings.mail_from, row_id, now=_now())
    except Exception as exc:  # a bug must not lose the message: retry later, loudly
        log.error("outbox %d: could not compose (%s); will retry", row_id, type(exc).__name__)
        return None


async def _send(
    ctx: dict[str, Any], row_id: int, claimed_at: datetime, outgoing: Outgoing | None
) -> bool:
    """Send one claimed row; True when it is finished, False when it will be retried."""
    db: Database = ctx["db"]
    mailer: Mailer = ctx["mailer"]
    now = _now()
    claim: datetime | None = claimed_at
    # Renew only once the claim is half-way to stale (sends are bounded well below that):
    # a batch sent in a second costs no extra write, a slow one never loses its rows.
    half_life = timedelta(seconds=ctx["settings"].outbox_claim_timeout / 2)
    if now - claimed_at >= half_life:
        claim = await claims.renew(db, row_id, claimed_at, now=now)
    if claim is None:
        # Our claim went stale and another worker took the row: it is theirs to send.
        log.warning("outbox %d: claim lost; left to the worker that holds it", row_id)
        return False
    if outgoing is None:
        await _retry(db, row_id, claim, "compose error", now)
        return False
    if outgoing.message is None:
        await claims.mark_skipped(db, row_id, claim, outgoing.skip_reason or "not owed")
        log.info("outbox %d: skipped (%s)", row_id, outgoing.skip_reason)
        return True
    try:
        await mailer.send(outgoing.message)
    except MailError as exc:
        if exc.transient or exc.connection_level:
            # A connection-level refusal (bad SMTP password) is the server's problem, not the
            # message's: keep retrying so fixing the setting delivers everything.
            await _retry(db, row_id, claim, exc.reason, now)
            log.warning("outbox %d: will retry (%s)", row_id, exc.reason)
            return False
        await claims.mark_failed(db, row_id, claim, exc.reason)
        log.error("outbox %d: failed permanently (%s)", row_id, exc.reason)
        return True
    except Exception as exc:
        await _retry(db, row_id, claim, f"send error: {type(exc).__name__}", now)
        log.warning("outbox %d: will retry (%s)", row_id, type(exc).__name__)
        return False
    # Marked as it is sent, never per batch: a kill can repeat at most this one message.
    await claims.mark_sent(db, row_id, claim, now=_now())
    log.info("outbox %d: sent", row_id)
    return True


async def _retry(db: Database, row_id: int, claim: datetime, reason: str, now: datetime) -> None:
    tries = await claims.attempts(db, row_id)
    delay = backoff(max(1, tries), rand=random.random)
    await claims.mark_retry(db, row_id, claim, reason, at=now + timedelta(seconds=delay))


async def queue_reminders(ctx: dict[str, Any]) -> int:
    """Owe 24 h and 1 h reminders for sessions starting soon (each once, ever)."""
    created = await producers.queue_reminders(ctx["db"], now=_now())
    if created:
        log.info("reminders queued: %d", created)
        await sweep_outbox(ctx)
    return created


async def rotate_facilitators(ctx: dict[str, Any]) -> int:
    """Give every upcoming session without a lead a fair lead and co; returns sessions filled."""
    filled = await rota.rotate_all(ctx["db"], now=_now())
    if filled:
        log.info("rotation: %d sessions filled", filled)
        await sweep_outbox(ctx)
    return filled


async def run_handoffs(ctx: dict[str, Any]) -> int:
    """Lead notices 14 days ahead, hand-over to the co at 72 h, organizer alert at 48 h."""
    taken = await handoff.run_handoffs(ctx["db"], now=_now())
    if taken:
        log.info("handoff steps taken: %d", taken)
        await sweep_outbox(ctx)
    return taken


async def purge_old_data(ctx: dict[str, Any]) -> int:
    """Delete bookings and mail records of sessions past the retention period, then erase
    the members left with no booking and no activity for that long."""
    settings: Settings = ctx["settings"]
    days, now = settings.retention_days, _now()
    purged = await retention.purge(ctx["db"], now=now, retention_days=days)
    erased = await erasure.erase_inactive(ctx["db"], now=now, retention_days=days)
    await ctx["db"].forget_freed_pages()  # also finishes any erasure a reader held up
    log.info(
        "purged %d bookings and %d mail records; erased %d inactive members",
        purged.bookings,
        purged.messages,
        erased,
    )
    return purged.bookings + purged.messages + erased


async def extend_horizon(ctx: dict[str, Any]) -> int:
    """Materialize every series' sessions up to the configured horizon; returns rows created."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    created = await extend_horizons(db, now=_now(), horizon_days=settings.horizon_days)
    log.info("horizon extended: %d sessions created", created)
    return created


def links_for(settings: Settings) -> LinkMaker:
    return LinkMaker(settings.secret_key, settings.public_url)
