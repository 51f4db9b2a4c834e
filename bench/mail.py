"""Outbox throughput (issue 4): one worker process draining a backlog of invite emails.

    python bench/mail.py [--messages 1000]

Owes ``--messages`` booking invites (each with its iCalendar built), starts one `dropin worker`
process against a private Redis and a loopback aiosmtpd, and measures how fast the backlog
drains and whether anything arrives twice. Baseline in the same run: the same number of
pre-rendered messages pushed through one SMTP connection by a bare aiosmtplib client (the
transport's ceiling). Floors: >= 200 invites/s, zero duplicates. Writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from dropin.devredis import PrivateRedis  # noqa: E402
from dropin.services import bookings, groups, series, sessions  # noqa: E402
from dropin.services.feeds import LinkMaker  # noqa: E402
from dropin.services.outbox.compose import compose_row  # noqa: E402
from dropin.store.db import Database  # noqa: E402
from dropin.store.migrate import upgrade  # noqa: E402
from tests.workers.smtp import SmtpServer  # noqa: E402
from workers.mail import SmtpMailer  # noqa: E402

SECRET = "m" * 48
MAIL_FROM = "Drop-ins <dropin@example.net>"


async def owe(db: Database, count: int) -> None:
    now = datetime.now(UTC)
    g = await groups.create_group(db, name="Bench circle", timezone="Europe/London", now=now)
    people = await groups.add_members(
        db, g.id, [groups.NewMember(f"P{i}", f"p{i}@example.org") for i in range(count)], now=now
    )
    local = (now + timedelta(days=3)).replace(tzinfo=None, second=0, microsecond=0)
    # Ten sessions, so each invite is one of many a group sends (and capacity stays small).
    await series.create_series(
        db,
        g.id,
        series.SeriesInput("Evening drop-in", "FREQ=DAILY;COUNT=10", local, 75, 200),
        now=now,
        horizon_days=30,
    )
    found = await sessions.list_sessions(db, g.id, start=now, end=now + timedelta(days=20), now=now)
    for i, p in enumerate(people):
        await bookings.book_seat(db, found[i % len(found)].id, p.id, now=now)


async def baseline(db: Database, smtp: SmtpServer, count: int) -> float:
    """Compose every owed message, then time pushing them through one bare connection."""
    links = LinkMaker(SECRET, "http://127.0.0.1:8000")
    messages = []
    for row_id in range(1, count + 1):
        out = await compose_row(db, links, MAIL_FROM, row_id, now=datetime.now(UTC))
        assert out.message is not None
        messages.append(out.message)
    mailer = SmtpMailer(smtp.url, max_messages=10**6)
    start = time.perf_counter()
    for m in messages:
        await mailer.send(m)
    elapsed = time.perf_counter() - start
    await mailer.close()
    return count / elapsed


def measure(count: int) -> tuple[int, int, float, float]:
    """One run: (delivered, duplicates, worker rate, bare-client rate)."""
    tmp = tempfile.TemporaryDirectory()
    url = f"sqlite+aiosqlite:///{tmp.name}/mail.db"
    upgrade(url)
    db = Database(url)
    asyncio.run(owe(db, count))
    smtp = SmtpServer(parse=False)  # count Message-IDs only: keep the server cheap
    smtp.start()
    redis = PrivateRedis().start()
    try:
        env = {
            **os.environ,
            "DROPIN_DATABASE_URL": url,
            "DROPIN_REDIS_URL": redis.url,
            "DROPIN_SMTP_URL": smtp.url,
            "DROPIN_SECRET_KEY": SECRET,
            "DROPIN_MAIL_FROM": MAIL_FROM,
            "DROPIN_LOG_LEVEL": "WARNING",
        }
        proc = subprocess.Popen([sys.executable, "-m", "dropin", "worker"], env=env, cwd=tmp.name)
        first: float | None = None
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if smtp.recorder.received_ids and first is None:
                    first = time.perf_counter()
                if smtp.recorder.unique() >= count:
                    break
                time.sleep(0.02)
            last = time.perf_counter()
            time.sleep(1.0)  # anything more that would arrive, arrives
        finally:
            proc.terminate()
            proc.wait(20)
        counts = Counter(smtp.recorder.ids())
        assert first is not None, "nothing was delivered"
        smtp.recorder.received_ids.clear()
        ceiling = asyncio.run(baseline(db, smtp, count))
    finally:
        # Whatever happened, stop what this run started.
        asyncio.run(db.dispose())
        smtp.stop()
        redis.stop()
        tmp.cleanup()
    return len(counts), sum(n - 1 for n in counts.values()), len(counts) / (last - first), ceiling


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lines = [
        "| run | messages | delivered | duplicates | worker invites/s | bare client msgs/s "
        "| ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in range(1, args.runs + 1):
        delivered, duplicates, rate, ceiling = measure(args.messages)
        lines.append(
            f"| {run} | {args.messages} | {delivered} | {duplicates} | {rate:.0f} "
            f"| {ceiling:.0f} | {rate / ceiling:.2f} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section(
            "mail",
            "## Outbox delivery (issue 4): `python bench/mail.py`\n\n"
            "A backlog of booking invites (each composed with its iCalendar at send time, "
            "claimed, sent and marked one by one) drained by one `dropin worker` process "
            "(SQLite, private Redis, loopback aiosmtpd counting Message-IDs). Baseline in the "
            "same run: the same messages, pre-rendered, pushed through one connection by a "
            "bare aiosmtplib client. Floors: >= 200 invites/s, zero duplicates.\n\n" + table,
        )


if __name__ == "__main__":
    main()
