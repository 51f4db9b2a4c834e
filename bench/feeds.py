"""Member feed speed (issue 3): a 200-session feed built, served and revalidated in-process.

    python bench/feeds.py [--rounds 200]

Measures, on SQLite, the real app called in-process as an ASGI application (no network, no
HTTP client in the timing):
- naive: every request builds the feed from scratch (all caches cleared first);
- built: a request that builds the feed (feed cache cleared, per-entry encodings warm);
- rebuilt after one session changed: the realistic case (one entry re-encoded);
- cached: an unconditional request answered from the feed cache;
- 304: a conditional request (If-None-Match) answered from the version query alone.
Floors: built <= 20 ms, 304 <= 2 ms (medians). Prints a table, writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from dropin.config import Settings  # noqa: E402
from dropin.domain import ical  # noqa: E402
from dropin.domain.session import SessionEdit  # noqa: E402
from dropin.services import bookings, groups, series, sessions  # noqa: E402
from dropin.store.db import Database  # noqa: E402
from dropin.store.migrate import upgrade  # noqa: E402
from tests.helpers import Api  # noqa: E402

SESSIONS = 200


async def timed(
    fn: Callable[[], Awaitable[None]],
    rounds: int,
    before: Callable[[], Awaitable[None]] | None = None,
) -> float:
    """Median milliseconds of ``fn``; ``before`` runs untimed ahead of each round."""
    samples = []
    for _ in range(rounds):
        if before is not None:
            await before()
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


async def main(rounds: int) -> str:
    tmp = tempfile.TemporaryDirectory()
    url = f"sqlite+aiosqlite:///{tmp.name}/feeds.db"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    now = datetime.now(UTC)
    settings = Settings(secret_key="b" * 48, data_dir=Path(tmp.name), horizon_days=400)
    group = await groups.create_group(db, name="Bench", timezone="Europe/London", now=now)
    [member] = await groups.add_members(
        db, group.id, [groups.NewMember("Ann", "ann@example.org")], now=now
    )
    local = (now + timedelta(days=1)).replace(tzinfo=None, second=0, microsecond=0)
    await series.create_series(
        db,
        group.id,
        series.SeriesInput("Daily", "FREQ=DAILY", local, 60, 10),
        now=now,
        horizon_days=SESSIONS,
    )
    found = await sessions.list_sessions(
        db, group.id, start=now, end=now + timedelta(days=SESSIONS + 2), now=now
    )
    for s in found[:SESSIONS]:
        await bookings.book_seat(db, s.id, member.id, now=now)
    async with Api.start(settings, db) as api:
        m = await api.ok("GET", f"/api/v1/members/{member.id}")
        path = m["feed_url"].removeprefix(settings.public_url)
        first = await api.client.get(path)
        assert first.status_code == 200 and first.text.count("BEGIN:VEVENT") == SESSIONS
        etag = first.headers["etag"]
        cache = _feed_cache()

        call = api.asgi_get  # the app called directly: no HTTP client in the timing

        async def naive() -> None:
            cache.entries.clear()
            # The "no caching" baseline: the ical module's per-event and zone memos too.
            ical._vevent_ical.cache_clear()
            ical._vtimezone_ical.cache_clear()
            assert await call(path) == 200

        async def built() -> None:
            cache.entries.clear()
            assert await call(path) == 200

        async def cached() -> None:
            assert await call(path) == 200

        async def not_modified() -> None:
            assert await call(path, {"if-none-match": etag}) == 304

        capacity = [10]

        async def change_one() -> None:
            capacity[0] = 21 - capacity[0]  # 10 <-> 11: one entry changes
            edit = SessionEdit(capacity=capacity[0])
            await sessions.update_session(db, found[0].id, edit, now=datetime.now(UTC))

        async def after_change() -> None:
            assert await call(path) == 200

        rows = [
            (
                "naive: no caches (first build after a restart)",
                await timed(naive, max(10, rounds // 10)),
            ),
            ("built (feed cache cleared)", await timed(built, rounds)),
            ("cached (200 from feed cache)", await timed(cached, rounds)),
            ("conditional (304)", await timed(not_modified, rounds)),
            # Last: it changes the feed (and so its ETag) every round.
            (
                "rebuilt after one session changed",
                await timed(after_change, rounds, before=change_one),
            ),
        ]
    await db.dispose()
    tmp.cleanup()
    naive_ms = rows[0][1]
    lines = ["| request | median ms | vs naive |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.2f} | {naive_ms / ms:.1f}x faster |" for name, ms in rows]
    return "\n".join(lines)


def _feed_cache():  # type: ignore[no-untyped-def]
    # The app under test keeps its FeedCache in lifespan state; the Api helper exposes it.
    return Api.last_state.feed_cache  # type: ignore[attr-defined]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    table = asyncio.run(main(args.rounds))
    print(table)
    if not args.no_write:
        write_section(
            "feeds",
            "## Calendar feeds (issue 3): `python bench/feeds.py`\n\n"
            f"A member feed of {SESSIONS} sessions on SQLite, requested through the app "
            "in-process. Floors: built <= 20 ms, 304 <= 2 ms (medians).\n\n" + table,
        )
