"""Fixtures for the worker tests: a private Redis, a recording SMTP server, live settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from dropin.config import Settings
from dropin.devredis import PrivateRedis
from dropin.jobs import SWEEP_OUTBOX
from tests.workers.mailkit import cert, mailer, server  # noqa: F401 (fixtures of test_mail*.py)
from tests.workers.smtp import SmtpServer
from workers.settings import worker_options


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    private = PrivateRedis().start()
    yield private
    private.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    recording = SmtpServer()
    recording.start()
    yield recording
    recording.stop()


@pytest.fixture
def live(settings: Settings, database_url: str, redis: PrivateRedis, smtp: SmtpServer) -> Settings:
    return replace(
        settings,
        database_url=database_url,
        redis_url=redis.url,
        smtp_url=smtp.url,
        mail_from="Drop-ins <dropin@example.net>",
    )


async def drain(settings: Settings, seconds: float = 20) -> None:
    """Do what the cron sweep does, then run a real arq worker until its queue is empty."""
    assert settings.redis_url
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        await pool.enqueue_job(SWEEP_OUTBOX, _job_id=f"test-sweep-{time.monotonic_ns()}")
    finally:
        await pool.aclose()
    worker = Worker(
        **worker_options(settings, settings.redis_url),
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
    )
    try:
        await asyncio.wait_for(worker.async_run(), seconds)
    finally:
        await worker.close()
