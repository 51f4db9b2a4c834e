"""arq ``WorkerSettings``: the functions, cron jobs, and the start-up that owns the pools.

Run with ``dropin worker`` (or ``arq workers.settings.WorkerSettings`` with the same env).
"""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron

from dropin.config import Settings
from dropin.store.db import Database
from workers.jobs import extend_horizon

HEALTH_KEY = "dropin:worker:health"
FUNCTIONS = [extend_horizon]
# Daily at 03:17 UTC, and once when a worker starts.
CRON_JOBS = [cron(extend_horizon, hour={3}, minute={17}, run_at_startup=True)]


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or Settings.from_env()
    ctx["settings"] = settings
    ctx["db"] = Database(settings.database_url)


async def shutdown(ctx: dict[str, Any]) -> None:
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
        "ctx": {"settings": settings},
    }


class WorkerSettings:
    """For the plain ``arq`` command line (``dropin worker`` is the usual way in)."""

    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    on_startup = startup
    on_shutdown = shutdown
    health_check_key = HEALTH_KEY
