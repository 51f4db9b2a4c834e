"""arq jobs. Each takes ids or nothing, never objects; ``ctx`` carries what the worker owns.

ctx: ``db`` (Database), ``settings``, ``mailer`` (workers.mail), ``links`` (LinkMaker) and arq's
``redis`` pool. Logs carry outbox row ids and reasons, never names or addresses.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from dropin.config import Settings
from dropin.services import outbox
from dropin.services.feeds import LinkMaker
from dropin.services.series import extend_horizons
from dropin.store.db import Database
from workers.mail import Mailer, MailError, backoff

log = logging.getLogger("dropin.worker")
# One job follows a member's queue for a session this far before handing back.
CHAIN_LIMIT = 50
SWEEP_BATCH = 500


def _now() -> datetime:
    return datetime.now(UTC)


def sweep_job_id(now: datetime) -> str:
    """Kicks within one second share one sweep; the next second gets a fresh one."""
    return f"outbox-sweep-{int(now.timestamp())}"


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """Enqueue a delivery job for every due row (first in line per session and member).

    Runs every few seconds from cron and right after a request wrote outbox rows, so nothing
    waits on a lost enqueue. Job ids are per row and attempt: a row already queued is not
    queued twice, and a row a dead worker left behind gets a fresh job.
    """
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    stale = timedelta(seconds=settings.outbox_claim_timeout)
    due = await outbox.due_rows(db, now=_now(), limit=SWEEP_BATCH, stale=stale)
    for row_id, tries in due:
        await ctx["redis"].enqueue_job("deliver_outbox", row_id, _job_id=job_id(row_id, tries))
    return len(due)


def job_id(row_id: int, tries: int) -> str:
    """One job per row and attempt: queued once, and queued anew when the row is retried."""
    return f"outbox-{row_id}-{tries}"


async def deliver_outbox(ctx: dict[str, Any], row_id: int) -> int:
    """Deliver outbox row ``row_id``, then the later rows for the same session and member.

    Returns how many rows were finished (sent, skipped or failed).
    """
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    stale = timedelta(seconds=settings.outbox_claim_timeout)
    finished = 0
    current: int | None = row_id
    while current is not None and finished < CHAIN_LIMIT:
        if not await outbox.claim(db, current, now=_now(), stale=stale):
            break
        if not await _deliver_claimed(ctx, current):
            break
        finished += 1
        current = await outbox.next_in_line(db, current)
    if current is not None and finished == CHAIN_LIMIT:
        tries = await outbox.attempts(db, current)
        await ctx["redis"].enqueue_job("deliver_outbox", current, _job_id=job_id(current, tries))
    return finished


async def _deliver_claimed(ctx: dict[str, Any], row_id: int) -> bool:
    """Send one claimed row; True when it is finished, False when it will be retried."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    mailer: Mailer = ctx["mailer"]
    now = _now()
    try:
        outgoing = await outbox.compose_row(db, ctx["links"], settings.mail_from, row_id, now=now)
    except Exception as exc:  # a bug must not lose the message: retry later, loudly
        log.error("outbox %d: could not compose (%s); will retry", row_id, type(exc).__name__)
        await _retry(db, row_id, f"compose error: {type(exc).__name__}", now)
        return False
    if outgoing.message is None:
        await outbox.mark_skipped(db, row_id, outgoing.skip_reason or "not owed")
        log.info("outbox %d: skipped (%s)", row_id, outgoing.skip_reason)
        return True
    try:
        await mailer.send(outgoing.message)
    except MailError as exc:
        if exc.transient or exc.connection_level:
            # A connection-level refusal (bad SMTP password) is the server's problem, not the
            # message's: keep retrying so fixing the setting delivers everything.
            await _retry(db, row_id, exc.reason, now)
            log.warning("outbox %d: will retry (%s)", row_id, exc.reason)
            return False
        await outbox.mark_failed(db, row_id, exc.reason)
        log.error("outbox %d: failed permanently (%s)", row_id, exc.reason)
        return True
    except Exception as exc:
        await _retry(db, row_id, f"send error: {type(exc).__name__}", now)
        log.warning("outbox %d: will retry (%s)", row_id, type(exc).__name__)
        return False
    # Marked as it is sent, never per batch: a kill can repeat at most this one message.
    await outbox.mark_sent(db, row_id, now=_now())
    log.info("outbox %d: sent", row_id)
    return True


async def _retry(db: Database, row_id: int, reason: str, now: datetime) -> None:
    tries = await outbox.attempts(db, row_id)
    delay = backoff(max(1, tries), rand=random.random)
    await outbox.mark_retry(db, row_id, reason, at=now + timedelta(seconds=delay))


async def queue_reminders(ctx: dict[str, Any]) -> int:
    """Owe 24 h and 1 h reminders for sessions starting soon (each once, ever)."""
    created = await outbox.queue_reminders(ctx["db"], now=_now())
    if created:
        log.info("reminders queued: %d", created)
        await sweep_outbox(ctx)
    return created


async def extend_horizon(ctx: dict[str, Any]) -> int:
    """Materialize every series' sessions up to the configured horizon; returns rows created."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    created = await extend_horizons(db, now=_now(), horizon_days=settings.horizon_days)
    log.info("horizon extended: %d sessions created", created)
    return created


def links_for(settings: Settings) -> LinkMaker:
    return LinkMaker(settings.secret_key, settings.public_url)
