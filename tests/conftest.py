"""Shared fixtures: real databases (SQLite always, PostgreSQL where reachable), an API client.

PostgreSQL: ``DROPIN_TEST_POSTGRES_URL`` or ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``;
each test run works in a database of its own, created and dropped here. Where no server answers,
the PostgreSQL-specific runs are skipped and the run's summary says so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dropin.config import Settings
from dropin.store.db import Database
from dropin.store.migrate import upgrade
from dropin.store.tables import metadata
from tests.helpers import Api

PG_URL = os.environ.get(
    "DROPIN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
SECRET = "test-secret-" + "x" * 40
_pg_problem: list[str] = []


def _port_open(url: str) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run (dropped at the end), or a skip."""
    if not _port_open(PG_URL):
        _pg_problem.append(f"no PostgreSQL server at {urlsplit(PG_URL).netloc}")
        pytest.skip(f"PostgreSQL-specific run skipped: no server at {urlsplit(PG_URL).netloc}")
    import asyncpg

    name = f"dropin_test_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "dropin.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "dropin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty SQLite database only (for tests about SQLite itself)."""
    target = tmp_path / "dropin.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


def _truncate_postgres(url: str) -> None:
    import asyncpg

    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        secret_key=SECRET,
        data_dir=tmp_path / "data",
        outbox_dir=tmp_path / "outbox",
        public_url="http://127.0.0.1:8000",
        # Tests schedule in 2028-2030 so fixed UTC instants stay in the future.
        horizon_days=1500,
    )


@pytest.fixture
async def api(db: Database, settings: Settings) -> AsyncIterator[Api]:
    """An organizer's HTTP client on the real app (in-process ASGI), with a fresh key."""
    async with Api.start(settings, db) as client:
        yield client


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def soon(days: int = 1) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _pg_problem:
        terminalreporter.write_line(
            f"NOTE: PostgreSQL-specific runs were SKIPPED ({_pg_problem[0]}); "
            "SQLite runs covered the same tests.",
            yellow=True,
        )
