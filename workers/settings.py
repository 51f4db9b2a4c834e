"""arq ``WorkerSettings``: the functions, cron jobs, and the start-up that owns the pools.

Run with ``dropin worker`` (``dropin dev`` runs one in-process). Jobs keep no results, so a
sweep's job id can be used again once it has finished.
"""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import func

from dropin.config import Settings
from dropin.jobs import HEALTH_KEY, SWEEP_OUTBOX
from dropin.store.db import Database
from workers.jobs import (
    extend_horizon,
    links_for,
    purge_old_data,
    queue_reminders,
    rotate_facilitators,
    run_handoffs,
    sweep_outbox,
)
from workers.mail import mailer_from_settings

FUNCTIONS = [func(sweep_outbox, name=SWEEP_OUTBOX, keep_result=0, timeout=300)]
CRON_JOBS = [
    # The sweep is what guarantees delivery when an enqueue was lost (Redis down, a crash).
    cron(sweep_outbox, second=set(range(0, 60, 5)), run_at_startup=True, keep_result=0),
    cron(queue_reminders, second={30}, keep_result=0),
    cron(rotate_facilitators, minute={5}, second={0}, run_at_startup=True, keep_result=0),
    # After the rotation, so a session filled this hour gets its notice this hour.
    cron(run_handoffs, minute={10}, second={0}, run_at_startup=True, keep_result=0),
    cron(extend_horizon, hour={3}, minute={17}, second={0}, run_at_startup=True, keep_result=0),
    cron(purge_old_data, hour={3}, minute={47}, second={0}, keep_result=0),
]


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or Settings.from_env()
    ctx["settings"] = settings
    ctx["db"] = Database(settings.database_url)
    ctx["mailer"] = mailer_from_settings(settings.smtp_url, settings.outbox_dir)
    ctx["links"] = links_for(settings)


async def shutdown(ctx: dict[str, Any]) -> None:
    mailer = ctx.get("mailer")
    if mailer is not None:
        await mailer.close()
    db: Database | None = ctx.get("db")
    if db is not None:
        await db.dispose()


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def worker_options(settings: Settings, redis_url: str) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``: shared by ``dropin worker`` and ``dropin dev``."""
    return {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(redis_url),
        "health_check_key": HEALTH_KEY,
        "health_check_interval": 10,
        "max_jobs": 20,
        "ctx": {"settings": settings},
    }


class WorkerSettings:
    """For the plain ``arq`` command line (``dropin worker`` is the usual way in)."""

    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    on_startup = startup
    on_shutdown = shutdown
    health_check_key = HEALTH_KEY
