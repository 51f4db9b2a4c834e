"""Booking under load, over HTTP to a running server, on SQLite and PostgreSQL.

    python bench/booking.py [--seconds 10] [--backends sqlite,postgres]

1. Burst: 500 concurrent booking requests at one 10-place session: overbooked must be 0,
   every request answered (no 5xx, no timeout).
2. Sustained: 50 concurrent clients booking across many sessions for --seconds: bookings/s
   and latency percentiles (floors: >= 500/s, p99 <= 200 ms).
3. Listing a year of a weekly group's sessions (52): p50 latency (floor: <= 10 ms).
4. Baseline: a trivial Starlette endpoint served the same way in the same run, for a ratio.

Prints a table and writes it to docs/benchmarks.md. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench import httpload  # noqa: E402
from bench.report import write_section  # noqa: E402
from dropin.services import groups, keys, series, sessions  # noqa: E402
from dropin.store.db import Database  # noqa: E402
from dropin.store.migrate import upgrade  # noqa: E402
from dropin.store.tables import bookings  # noqa: E402
from dropin.store.tables import sessions as sessions_table  # noqa: E402
from tests.servers import serve  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
PG_ADMIN = os.environ.get(
    "DROPIN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BURST = 500
CONCURRENCY = 50
SESSIONS = 200
PEOPLE = 120  # SESSIONS x PEOPLE distinct (session, member) pairs to book


async def seed(url: str) -> dict[str, object]:
    db = Database(url)
    now = datetime.now(UTC)
    try:
        key = (await keys.create_key(db, "bench", now=now)).key
        burst_group = await groups.create_group(db, name="Burst", timezone="Europe/London", now=now)
        burst_people = await groups.add_members(
            db,
            burst_group.id,
            [groups.NewMember(f"B{i}", f"b{i}@example.org") for i in range(BURST)],
            now=now,
        )
        local = (now + timedelta(days=3)).replace(tzinfo=None, microsecond=0)
        await series.create_series(
            db,
            burst_group.id,
            series.SeriesInput("Burst", "FREQ=DAILY;COUNT=1", local, 60, 10),
            now=now,
            horizon_days=30,
        )
        [burst_session] = await sessions.list_sessions(
            db, burst_group.id, start=now, end=now + timedelta(days=10), now=now
        )
        load_group = await groups.create_group(
            db, name="Load", timezone="America/New_York", now=now
        )
        load_people = await groups.add_members(
            db,
            load_group.id,
            [groups.NewMember(f"L{i}", f"l{i}@example.org") for i in range(PEOPLE)],
            now=now,
        )
        await series.create_series(
            db,
            load_group.id,
            series.SeriesInput("Load", "FREQ=DAILY", local, 60, 10),
            now=now,
            horizon_days=SESSIONS,
        )
        load_sessions = await sessions.list_sessions(
            db, load_group.id, start=now, end=now + timedelta(days=SESSIONS + 5), now=now
        )
        year_group = await groups.create_group(
            db, name="Year", timezone="Australia/Sydney", now=now
        )
        await series.create_series(
            db,
            year_group.id,
            series.SeriesInput("Weekly", "FREQ=WEEKLY", local, 75, 10),
            now=now,
            horizon_days=400,
        )
        return {
            "key": key,
            "burst_session": burst_session.id,
            "burst_people": [m.id for m in burst_people],
            "load_sessions": [s.id for s in load_sessions],
            "load_people": [m.id for m in load_people],
            "year_group": year_group.id,
        }
    finally:
        await db.dispose()


async def count_confirmed(url: str, session_id: str) -> tuple[int, int]:
    db = Database(url)
    try:
        async with db.read() as conn:
            confirmed = (
                await conn.execute(
                    select(func.count())
                    .select_from(bookings)
                    .where(bookings.c.session_id == session_id, bookings.c.status == "confirmed")
                )
            ).scalar_one()
            capacity = (
                await conn.execute(
                    select(sessions_table.c.capacity).where(sessions_table.c.id == session_id)
                )
            ).scalar_one()
        return int(confirmed), int(capacity)
    finally:
        await db.dispose()


async def measure(url: str, seconds: float) -> dict[str, object]:
    data = await seed(url)
    headers = {"Authorization": f"Bearer {data['key']}"}
    env = {"DROPIN_DATABASE_URL": url, "DROPIN_SECRET_KEY": SECRET}
    out: dict[str, object] = {}
    with serve(env) as [base]:
        port = urlsplit(base).port
        assert port is not None
        people = data["burst_people"]
        assert isinstance(people, list)
        burst = await httpload.run(
            port,
            lambda i: (
                "POST",
                f"/api/v1/sessions/{data['burst_session']}/bookings",
                json.dumps({"member_id": people[i]}).encode(),
            ),
            concurrency=BURST,
            total=BURST,
            seconds=120,
            headers=headers,
        )
        confirmed, capacity = await count_confirmed(url, str(data["burst_session"]))
        out["burst"] = burst
        out["overbooked"] = max(0, confirmed - capacity)
        out["burst_confirmed"] = confirmed

        load_sessions, load_people = data["load_sessions"], data["load_people"]
        assert isinstance(load_sessions, list) and isinstance(load_people, list)
        pairs = len(load_sessions) * len(load_people)

        def booking(i: int) -> tuple[str, str, bytes] | None:
            if i >= pairs:
                return None
            s, m = load_sessions[i % len(load_sessions)], load_people[i // len(load_sessions)]
            return ("POST", f"/api/v1/sessions/{s}/bookings", json.dumps({"member_id": m}).encode())

        # A short warm-up, then the measured run.
        await httpload.run(
            port, lambda i: ("GET", "/healthz", b""), concurrency=10, total=200, seconds=5
        )
        out["sustained"] = await httpload.run(
            port, booking, concurrency=CONCURRENCY, total=pairs, seconds=seconds, headers=headers
        )
        out["listing"] = await httpload.run(
            port,
            lambda i: (
                "GET",
                f"/api/v1/groups/{data['year_group']}/sessions?from="
                f"{datetime.now(UTC).date()}&to={(datetime.now(UTC) + timedelta(days=365)).date()}",
                b"",
            ),
            concurrency=1,
            total=300,
            seconds=30,
            headers=headers,
            keep_bodies=True,
        )
        listing = out["listing"]
        assert isinstance(listing, httpload.Result)
        out["listed_sessions"] = len(json.loads(listing.bodies[-1])["sessions"])
    with serve({}, app="bench.trivial:app") as [trivial]:
        tport = urlsplit(trivial).port
        assert tport is not None
        await httpload.run(
            tport, lambda i: ("GET", "/healthz", b""), concurrency=10, total=200, seconds=5
        )
        out["trivial"] = await httpload.run(
            tport,
            lambda i: ("POST", "/echo", b'{"member_id": "x"}'),
            concurrency=CONCURRENCY,
            total=10**7,
            seconds=seconds,
        )
    return out


def _pg_reachable() -> bool:
    parts = urlsplit(PG_ADMIN.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


async def pg_database() -> tuple[str, str]:
    import asyncpg

    name = f"dropin_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, name


async def drop_pg(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    notes = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            tmp = tempfile.TemporaryDirectory()
            url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
            upgrade(url)
            result = asyncio.run(measure(url, args.seconds))
            tmp.cleanup()
        elif backend == "postgres":
            if not _pg_reachable():
                notes.append("PostgreSQL skipped: no server reachable.")
                continue
            url, name = asyncio.run(pg_database())
            try:
                upgrade(url)
                result = asyncio.run(measure(url, args.seconds))
            finally:
                asyncio.run(drop_pg(name))
        else:
            raise SystemExit(f"unknown backend {backend}")
        rows.append((backend, result))

    lines = [
        "| backend | burst: requests / answered / 5xx / errors | overbooked | sustained bookings/s "
        "| p50 ms | p99 ms | trivial endpoint req/s | ratio | year listing p50 ms (sessions) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in rows:
        burst, sus, lst, triv = r["burst"], r["sustained"], r["listing"], r["trivial"]
        fivexx = sum(v for k, v in burst.statuses.items() if k >= 500)  # type: ignore[attr-defined]
        lines.append(
            f"| {backend} | {BURST} / {burst.count} / {fivexx} / {burst.errors} "  # type: ignore[attr-defined]
            f"| {r['overbooked']} | {sus.rps():.0f} | {sus.pct(0.5):.1f} | {sus.pct(0.99):.1f} "  # type: ignore[attr-defined]
            f"| {triv.rps():.0f} | {sus.rps() / triv.rps():.2f} "  # type: ignore[attr-defined]
            f"| {lst.pct(0.5):.2f} ({r['listed_sessions']}) |"  # type: ignore[attr-defined]
        )
        other = {k: v for k, v in sus.statuses.items() if k != 201}  # type: ignore[attr-defined]
        if other or sus.errors:  # type: ignore[attr-defined]
            notes.append(f"{backend}: sustained run non-201 statuses {other}, errors {sus.errors}")  # type: ignore[attr-defined]
    table = "\n".join(lines)
    body = (
        "## Booking (issue 2): `python bench/booking.py`\n\n"
        f"One uvicorn process, {CONCURRENCY} concurrent keep-alive clients for the sustained run "
        f"({SESSIONS} sessions x {PEOPLE} members), a {BURST}-request burst at one 10-place "
        "session, and a trivial Starlette endpoint (JSON echo) served the same way as the "
        "baseline. Floors: 0 overbooked, no 5xx or timeouts, >= 500 bookings/s, p99 <= 200 ms, "
        "year listing p50 <= 10 ms.\n\n"
        + table
        + "\n"
        + ("".join(f"\n- {n}" for n in notes) + "\n" if notes else "")
    )
    print(table)
    for n in notes:
        print(n)
    if not args.no_write:
        write_section("booking", body)


if __name__ == "__main__":
    main()
