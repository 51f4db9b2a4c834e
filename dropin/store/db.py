"""The database handle: an async engine plus the one rule for write transactions.

Writes that must not race (bookings, cancellations) run in :meth:`Database.write`:

* SQLite: one writer at a time. An in-process lock queues writers without SQLite's sleeping
  busy handler, and ``BEGIN IMMEDIATE`` takes the file's write lock up front so writers in
  *other* processes wait (``busy_timeout``) instead of failing at commit.
* PostgreSQL: a plain transaction; services lock the rows they decide on with
  ``SELECT ... FOR UPDATE``.

Hot paths (booking, cancelling) are written as *synchronous* transaction bodies and run with
:meth:`Database.run_write`: on SQLite the whole transaction runs in one writer thread with the
plain ``sqlite3`` driver, so the write lock is held for the time SQLite needs (a fraction of
a millisecond) instead of one event-loop round trip per statement; on PostgreSQL the same body
runs through ``AsyncConnection.run_sync`` over asyncpg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

_WRITE = "dropin_write"
# Where a write transaction's connection counts the outbox rows written in it.
OUTBOX_ROWS = "dropin.outbox_rows"
P = ParamSpec("P")
R = TypeVar("R")


class Database:
    """Owns the engine. Use :meth:`read` for queries and :meth:`write` for changes."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # hide_parameters: error messages and logs never carry bound values (names, emails).
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
            kwargs["pool_size"] = 8
            kwargs["max_overflow"] = 8
        else:
            kwargs["pool_size"] = 20
            kwargs["max_overflow"] = 10
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock = asyncio.Lock()
        # Told, after each commit that wrote outbox rows, how many (the app nudges its
        # workers with it; a worker process leaves it unset and sweeps on its own schedule).
        self.on_outbox_rows: Callable[[int], None] | None = None
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            # aiosqlite logs every call with its bound values at DEBUG: names and emails.
            # Logs carry ids only, whatever level the rest of the process logs at.
            quiet = logging.getLogger("aiosqlite")
            quiet.setLevel(max(quiet.level, logging.INFO))
            _install_sqlite_hooks(self.engine.sync_engine)
            self._sync_engine = create_engine(
                url.replace("sqlite+aiosqlite", "sqlite+pysqlite", 1),
                connect_args={"timeout": 30, "check_same_thread": False},
                hide_parameters=True,
                pool_size=1,
                max_overflow=0,
            )
            _install_sqlite_hooks(self._sync_engine)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="dropin-sqlite-writer")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a read transaction (rolled back at the end)."""
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction, committed on success, rolled back on error.

        After the commit, the outbox rows the transaction wrote are reported to
        :attr:`on_outbox_rows` (see :func:`count_outbox_rows`).
        """
        async with contextlib.AsyncExitStack() as stack:
            if self.is_sqlite:
                await stack.enter_async_context(self._write_lock)
            conn = await stack.enter_async_context(self.engine.connect())
            if self.is_sqlite:
                conn = await conn.execution_options(**{_WRITE: True})
            conn.info[OUTBOX_ROWS] = 0
            try:
                async with conn.begin():
                    yield conn
                written = conn.info[OUTBOX_ROWS]
            finally:
                conn.info.pop(OUTBOX_ROWS, None)
        self._report(written)

    async def run_write(
        self, body: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run ``body(conn, *args)`` in one write transaction and return its result.

        After the commit, the outbox rows the transaction wrote are reported to
        :attr:`on_outbox_rows`.
        """

        def counted(conn: Connection) -> tuple[R, int]:
            conn.info[OUTBOX_ROWS] = 0
            try:
                return body(conn, *args, **kwargs), conn.info[OUTBOX_ROWS]
            finally:
                conn.info.pop(OUTBOX_ROWS, None)

        if self._sync_engine is None:
            async with self.engine.begin() as aconn:
                result, written = await aconn.run_sync(counted)
        else:
            engine, writer = self._sync_engine, self._writer

            def transaction() -> tuple[R, int]:
                with engine.connect() as conn:
                    conn = conn.execution_options(**{_WRITE: True})
                    with conn.begin():
                        return counted(conn)

            async with self._write_lock:
                loop = asyncio.get_running_loop()
                result, written = await loop.run_in_executor(writer, transaction)
        self._report(written)
        return result

    async def forget_freed_pages(self) -> bool:
        """SQLite: fold the write-ahead log into the database file and empty it, so deleted
        rows survive in neither (with ``secure_delete`` on). False if a reader kept it from
        finishing (the daily purge tries again). PostgreSQL: True; its vacuum reclaims dead
        rows (and its own WAL and backups are the operator's to keep or expire)."""
        if not self.is_sqlite:
            return True
        async with self.engine.connect() as conn:
            # Wait a little for readers, not the 30 s a writer would.
            await conn.exec_driver_sql("PRAGMA busy_timeout=1000")
            try:
                row = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).first()
            finally:
                await conn.exec_driver_sql("PRAGMA busy_timeout=30000")
        done = row is not None and row[0] == 0
        if not done:
            logging.getLogger("dropin.store").warning(
                "write-ahead log not emptied (a reader held it); the daily purge retries"
            )
        return done

    def _report(self, outbox_rows: int) -> None:
        if outbox_rows and self.on_outbox_rows is not None:
            self.on_outbox_rows(outbox_rows)

    async def dispose(self) -> None:
        """Close every pooled connection and the writer thread."""
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self._writer is not None:
            self._writer.shutdown(wait=True)


def count_outbox_rows(conn: Connection | AsyncConnection, rows: int) -> None:
    """Record that ``rows`` outbox rows were written in ``conn``'s write transaction."""
    conn.info[OUTBOX_ROWS] = conn.info.get(OUTBOX_ROWS, 0) + rows


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below: pysqlite would
        # otherwise open transactions lazily and always DEFERRED.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten, not left in free pages: an erased family's name and
        # email must not stay readable in the database file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
