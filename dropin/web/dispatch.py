"""Enqueue after commit: nudge the workers when a transaction has written outbox rows.

The app's :class:`~dropin.store.db.Database` reports, after each commit, how many outbox rows
the transaction wrote (:mod:`dropin.store.uow`); the lifespan points that report at
:meth:`OutboxNudger.nudge`, which asks for an outbox sweep. Nudges are coalesced by one
background task that the lifespan owns, so a burst of bookings costs a handful of Redis
writes, and a Redis that is down costs nothing but a log line: the rows wait in the database
and the workers' periodic sweep sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings

from dropin.jobs import HEALTH_KEY, SWEEP_OUTBOX, sweep_job_id

log = logging.getLogger("dropin.dispatch")
COALESCE_SECONDS = 0.05
RETRY_SECONDS = 2.0


class OutboxNudger:
    """Owns a lazy arq pool and the one task that turns nudges into sweep jobs."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: ArqRedis | None = None
        # Nudges asked for, and sweeps enqueued (several nudges coalesce into one sweep).
        self.nudges = 0
        self.sent = 0

    def nudge(self, outbox_rows: int = 1) -> None:
        """Ask for a sweep soon (called after a commit that wrote ``outbox_rows`` rows)."""
        self.nudges += 1
        self._wanted.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dropin-outbox-nudger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def worker_health(self) -> dict[str, object]:
        """The workers' last heartbeat (arq's health record), if Redis answers."""
        try:
            if self._pool is None:
                settings = RedisSettings.from_dsn(self.redis_url)
                settings.conn_retries = 0
                settings.conn_timeout = 1
                self._pool = await create_pool(settings)
            record = await self._pool.get(HEALTH_KEY)
        except Exception as exc:  # Redis down is what this reports
            return {"redis": "down", "error": type(exc).__name__}
        if record is None:
            return {"redis": "ok", "heartbeat": None}
        text = record.decode() if isinstance(record, bytes) else str(record)
        return {"redis": "ok", "heartbeat": text}

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            self._wanted.clear()
            try:
                if self._pool is None:
                    settings = RedisSettings.from_dsn(self.redis_url)
                    settings.conn_retries = 0
                    settings.conn_timeout = 1
                    self._pool = await create_pool(settings)
                now = datetime.now(UTC)
                await self._pool.enqueue_job(SWEEP_OUTBOX, _job_id=sweep_job_id(now))
                self.sent += 1
            except (TimeoutError, OSError, ConnectionError) as exc:
                # Redis down: the rows are safe in the database; the workers' cron sweep
                # delivers them once it is back. Try again on the next nudge.
                log.warning("could not nudge the workers (%s); rows wait", type(exc).__name__)
                if self._pool is not None:
                    with contextlib.suppress(Exception):
                        await self._pool.aclose()
                    self._pool = None
                await asyncio.sleep(RETRY_SECONDS)
            except Exception as exc:  # redis-py raises its own errors too
                log.warning("could not nudge the workers (%s); rows wait", type(exc).__name__)
                self._pool = None
                await asyncio.sleep(RETRY_SECONDS)
