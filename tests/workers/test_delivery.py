"""The outbox end to end: API -> outbox row -> arq worker on a real Redis -> real SMTP server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dropin.config import Settings
from dropin.devredis import PrivateRedis
from dropin.services import bookings, groups, keys, series, sessions
from dropin.store.db import Database
from dropin.store.tables import outbox
from tests.helpers import Api
from tests.workers.conftest import drain
from tests.workers.smtp import SmtpServer, calendar_method, wait_for

pytestmark = pytest.mark.asyncio


async def statuses(db: Database) -> Counter[str]:
    async with db.read() as conn:
        rows = (await conn.execute(select(outbox.c.status))).scalars().all()
    return Counter(rows)


async def circle(api: Api, capacity: int = 1) -> dict[str, Any]:
    g = await api.group()
    await api.series(g["id"], first_start="2028-01-01T19:30:00", capacity=capacity)
    ann = await api.member(g["id"], "Ann")
    bea = await api.member(g["id"], "Bea")
    [march] = await api.sessions(g["id"], **{"from": "2028-03-01", "to": "2028-03-31"})
    return {"group": g, "ann": ann, "bea": bea, "march": march}


async def test_book_promote_cancel_reach_the_mailbox(
    live: Settings, db: Database, smtp: SmtpServer
) -> None:
    async with Api.start(live, db) as api:
        c = await circle(api)
        ann = await api.book(c["march"]["id"], c["ann"]["id"])
        await api.book(c["march"]["id"], c["bea"]["id"])  # waitlisted
        await drain(live)
        [invite] = smtp.recorder.to("ann@example.org")
        assert calendar_method(invite) == "REQUEST"
        assert str(invite["Subject"]).strip().startswith("Booked: Evening drop-in")
        assert str(invite["Message-ID"]).endswith("@example.net>")
        [notice] = smtp.recorder.to("bea@example.org")
        assert calendar_method(notice) is None and "waitlist" in str(notice["Subject"])
        # Privacy: each message names only its recipient.
        assert "bea@" not in invite.as_string() and "ann@" not in notice.as_string()

        await api.ok("DELETE", f"/api/v1/bookings/{ann['id']}")
        await drain(live)
        ann_mail = smtp.recorder.to("ann@example.org")
        bea_mail = smtp.recorder.to("bea@example.org")
        assert [calendar_method(m) for m in ann_mail] == ["REQUEST", "CANCEL"]
        assert [calendar_method(m) for m in bea_mail] == [None, "REQUEST"]  # promoted
        assert str(bea_mail[1]["Subject"]).strip().startswith("A place for you")
        assert await statuses(db) == {"sent": 4}
        health = await api.ok("GET", "/healthz")
        assert health["outbox"]["pending"] == 0 and health["worker"]["redis"] == "ok"


async def test_messages_for_one_member_keep_their_order(
    live: Settings, db: Database, smtp: SmtpServer
) -> None:
    async with Api.start(live, db) as api:
        c = await circle(api, capacity=5)
        b = await api.book(c["march"]["id"], c["ann"]["id"])
        await api.ok("DELETE", f"/api/v1/bookings/{b['id']}")
        await api.book(c["march"]["id"], c["ann"]["id"])
        await api.ok(
            "PATCH",
            f"/api/v1/sessions/{c['march']['id']}",
            json={"local_start": "2028-03-15T19:00:00"},
        )
        await drain(live)
    mail = smtp.recorder.to("ann@example.org")
    # Written: booked, cancelled, booked again, moved. Delivered in that order, so the
    # cancellation can never land after (and undo) the later invite.
    assert [calendar_method(m) for m in mail] == ["REQUEST", "CANCEL", "REQUEST", "REQUEST"]
    assert [str(m["Subject"]).strip().split(":")[0] for m in mail] == [
        "Booked",
        "Cancelled",
        "Booked",
        "New time",
    ]


async def test_a_message_no_longer_true_is_skipped(
    live: Settings, db: Database, smtp: SmtpServer
) -> None:
    async with Api.start(live, db) as api:
        c = await circle(api, capacity=5)
        b = await api.book(c["march"]["id"], c["ann"]["id"])
        await api.ok("DELETE", f"/api/v1/bookings/{b['id']}")
        await drain(live)
    # The invite owed for the booking is skipped (the place is gone); the cancellation goes.
    assert [calendar_method(m) for m in smtp.recorder.to("ann@example.org")] == ["CANCEL"]
    assert await statuses(db) == {"sent": 1, "skipped": 1}


async def test_smtp_down_for_a_while(live: Settings, db: Database, smtp: SmtpServer) -> None:
    smtp.stop()
    async with Api.start(live, db) as api:
        c = await circle(api, capacity=5)
        await api.book(c["march"]["id"], c["ann"]["id"])
        await api.book(c["march"]["id"], c["bea"]["id"])
        await drain(live)
        assert await statuses(db) == {"pending": 2}
        async with db.read() as conn:
            errors = (await conn.execute(select(outbox.c.last_error))).scalars().all()
        assert all(e and "@" not in e for e in errors)
        smtp.start()
        deadline = time.monotonic() + 30
        while (await statuses(db)).get("pending") and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            await drain(live)
        assert await statuses(db) == {"sent": 2}
    assert len(smtp.recorder.messages) == 2


async def test_redis_down_during_bookings_loses_nothing(
    live: Settings, db: Database, smtp: SmtpServer, redis: PrivateRedis
) -> None:
    async with Api.start(live, db) as api:
        c = await circle(api, capacity=5)
        redis.stop()
        r = await api.request(
            "POST",
            f"/api/v1/sessions/{c['march']['id']}/bookings",
            json={"member_id": c["ann"]["id"]},
        )
        assert r.status_code == 201
        r = await api.request(
            "POST",
            f"/api/v1/sessions/{c['march']['id']}/bookings",
            json={"member_id": c["bea"]["id"]},
        )
        assert r.status_code == 201
        health = await api.ok("GET", "/healthz")
        assert health["outbox"]["pending"] == 2 and health["worker"]["redis"] == "down"
        redis.start()
        await drain(live)
    assert await statuses(db) == {"sent": 2}
    assert sorted(str(m["To"]) for m in smtp.recorder.messages) == [
        "Ann <ann@example.org>",
        "Bea <bea@example.org>",
    ]


async def test_dev_mode_writes_eml_files(
    settings: Settings, db: Database, database_url: str, redis: PrivateRedis
) -> None:
    dev = replace(settings, database_url=database_url, redis_url=redis.url, smtp_url=None)
    async with Api.start(dev, db) as api:
        c = await circle(api)
        await api.book(c["march"]["id"], c["ann"]["id"])
        await drain(dev)
    files = sorted(dev.outbox_dir.glob("*.eml"))
    assert len(files) == 1
    inline = b'Content-Type: text/calendar; charset="utf-8"; method="REQUEST"'
    assert inline in files[0].read_bytes()


async def _two_hundred_owed(db: Database) -> None:
    now = datetime.now(UTC)
    g = await groups.create_group(db, name="Kill", timezone="UTC", now=now)
    people = await groups.add_members(
        db, g.id, [groups.NewMember(f"P{i}", f"p{i}@example.org") for i in range(200)], now=now
    )
    await series.create_series(
        db,
        g.id,
        series.SeriesInput(
            "Kill", "FREQ=DAILY;COUNT=1", (now + timedelta(days=5)).replace(tzinfo=None), 60, 300
        ),
        now=now,
        horizon_days=30,
    )
    [s] = await sessions.list_sessions(db, g.id, start=now, end=now + timedelta(days=9), now=now)
    for p in people:
        await bookings.book_seat(db, s.id, p.id, now=now)
    await keys.create_key(db, "x", now=now)


@pytest.mark.slow
async def test_worker_killed_mid_batch_delivers_everything_once(
    database_url: str, redis: PrivateRedis, tmp_path: Path
) -> None:
    smtp = SmtpServer(delay=0.01)  # slow enough for the kill to land mid-batch
    smtp.start()
    db = Database(database_url)
    env = {
        **os.environ,
        "DROPIN_DATABASE_URL": database_url,
        "DROPIN_REDIS_URL": redis.url,
        "DROPIN_SMTP_URL": smtp.url,
        "DROPIN_SECRET_KEY": "k" * 48,
        "DROPIN_MAIL_FROM": "dropin@example.net",
        # A claim left by the killed worker is retaken after 2 s instead of 5 minutes.
        "DROPIN_OUTBOX_CLAIM_TIMEOUT": "2",
        "DROPIN_LOG_LEVEL": "WARNING",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await _two_hundred_owed(db)

        def start() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dropin", "worker"], env=env, cwd=tmp_path
            )
            procs.append(proc)
            return proc

        first = start()
        await asyncio.to_thread(
            wait_for, lambda: len(smtp.recorder.messages) >= 40, 60, "the first 40 messages"
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        got = smtp.recorder.unique()
        assert got < 200, "the kill landed too late to test anything"
        start()
        await asyncio.to_thread(
            wait_for, lambda: smtp.recorder.unique() >= 200, 90, "all 200 messages"
        )
        await asyncio.sleep(1)  # anything more that would arrive, arrives
        counts = Counter(smtp.recorder.ids())
        assert len(counts) == 200
        repeated = {mid: n for mid, n in counts.items() if n > 1}
        # At most the one message in flight when the kill landed, sent twice.
        assert len(repeated) <= 1 and all(n == 2 for n in repeated.values()), repeated
        assert await statuses(db) == {"sent": 200}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        smtp.stop()
        await db.dispose()


async def test_invite_the_group_then_accept_from_the_email(
    live: Settings, db: Database, smtp: SmtpServer
) -> None:
    async with Api.start(live, db) as api:
        c = await circle(api, capacity=5)
        lee = await api.member(c["group"]["id"], "Lee", role="facilitator")
        await api.book(c["march"]["id"], c["bea"]["id"])
        url = f"/api/v1/sessions/{c['march']['id']}/invitations"
        first = await api.ok("POST", url, 202)
        assert first == {"invited": 1}  # Ann only: Bea is booked, Lee facilitates
        assert await api.ok("POST", url, 202) == {"invited": 0}  # once, ever
        await drain(live)
        [invitation] = smtp.recorder.to("ann@example.org")
        assert calendar_method(invitation) == "REQUEST"
        text = invitation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        accept = next(w for w in text.split() if "/r/" in w)
        assert not smtp.recorder.to(lee["email"])
        page = await api.client.get(accept.removeprefix("http://127.0.0.1:8000"))
        assert page.status_code == 200
        done = await api.client.post(accept.removeprefix("http://127.0.0.1:8000"))
        assert "booked" in done.text
        session = await api.ok("GET", f"/api/v1/sessions/{c['march']['id']}")
        assert session["confirmed_count"] == 2
        await drain(live)
    ann_mail = smtp.recorder.to("ann@example.org")
    assert [str(m["Subject"]).strip().split(":")[0] for m in ann_mail] == ["Invitation", "Booked"]


async def test_permanent_failures_show_in_the_api_and_can_be_retried(
    live: Settings, db: Database, smtp: SmtpServer
) -> None:
    async with Api.start(live, db) as api:
        c = await circle(api, capacity=5)
        # An address the server refuses for good (a typo in the domain, say).
        await api.ok(
            "POST",
            f"/api/v1/groups/{c['group']['id']}/members",
            201,
            json={"display_name": "Cal", "email": "cal@bounce.example"},
        )
        cal = (await api.ok("GET", f"/api/v1/groups/{c['group']['id']}/members"))["items"][-1]
        smtp.recorder.refuse = "bounce.example"
        await api.book(c["march"]["id"], cal["id"])
        await drain(live)
        [failed] = (await api.ok("GET", "/api/v1/outbox", params={"status": "failed"}))["items"]
        assert failed["kind"] == "booking_confirmed" and failed["member_id"] == cal["id"]
        assert failed["last_error"].startswith("smtp 550") and "@" not in failed["last_error"]
        bad = await api.request("GET", "/api/v1/outbox", params={"status": "lost"})
        assert bad.status_code == 422
        smtp.recorder.refuse = None
        r = await api.request("POST", f"/api/v1/outbox/{failed['id']}/retry")
        assert r.status_code == 202
        assert (
            await api.request("POST", f"/api/v1/outbox/{failed['id']}/retry")
        ).status_code == 404
        await drain(live)
    assert [calendar_method(m) for m in smtp.recorder.to("cal@bounce.example")] == ["REQUEST"]


async def test_new_mail_is_not_stuck_behind_retries(db: Database) -> None:
    """Hundreds of rows in backoff ahead of it never delay a new message."""
    from dropin.services.outbox.claims import claim_batch
    from dropin.store.uow import outbox_insert

    now = datetime.now(UTC)
    async with db.write() as conn:
        for i in range(450):
            await conn.execute(
                outbox_insert(
                    "booking_confirmed", now, session_id=f"{i:032x}", member_id=f"{i:032x}"
                )
            )
        await conn.execute(outbox.update().values(next_attempt_at=now + timedelta(hours=1)))
        await conn.execute(
            outbox_insert("booking_confirmed", now, session_id="f" * 32, member_id="f" * 32)
        )
    claimed = await claim_batch(db, now=now, limit=20)
    assert claimed == [451]
    # And a pair's second message waits for its first, wherever the first is in line.
    async with db.write() as conn:
        await conn.execute(
            outbox_insert("booking_cancelled", now, session_id="0" * 32, member_id="0" * 32)
        )
    assert await claim_batch(db, now=now, limit=20) == []


async def test_a_moved_session_is_reminded_of_at_its_new_time(db: Database) -> None:
    from dropin.domain.session import SessionEdit
    from dropin.services import bookings as booking_service
    from dropin.services import sessions as session_service
    from dropin.services.outbox.compose import compose_row
    from dropin.services.outbox.producers import queue_reminders

    now = datetime.now(UTC).replace(microsecond=0)
    g = await groups.create_group(db, name="R", timezone="UTC", now=now)
    [ann] = await groups.add_members(
        db, g.id, [groups.NewMember("Ann", "ann@example.org")], now=now
    )
    start = (now + timedelta(hours=20)).replace(tzinfo=None)
    await series.create_series(
        db,
        g.id,
        series.SeriesInput("S", "FREQ=DAILY;COUNT=1", start, 60, 5),
        now=now,
        horizon_days=5,
    )
    [s] = await sessions.list_sessions(db, g.id, start=now, end=now + timedelta(days=2), now=now)
    await booking_service.book_seat(db, s.id, ann.id, now=now)
    assert await queue_reminders(db, now=now) == 1
    assert await queue_reminders(db, now=now) == 0  # once per start time
    # Moved to the next day but one: the pending 24 h reminder is no longer true...
    await session_service.update_session(
        db, s.id, SessionEdit(starts_at=s.starts_at + timedelta(days=2)), now=now
    )
    from dropin.services.feeds import LinkMaker

    async with db.read() as conn:
        row_id = (
            await conn.execute(select(outbox.c.id).where(outbox.c.kind == "reminder_24h"))
        ).scalar_one()
    async with db.write() as conn:
        await conn.execute(outbox.update().where(outbox.c.id == row_id).values(status="sending"))
    out = await compose_row(db, LinkMaker("k" * 48, "http://x"), "d@example.net", row_id, now=now)
    assert out.message is None and "no longer due" in (out.skip_reason or "")
    # ...and a new one is owed when the new time comes near.
    later = now + timedelta(days=2)
    assert await queue_reminders(db, now=later) == 1


async def test_a_stale_claim_is_not_sent_by_its_old_holder(db: Database) -> None:
    """A slow worker whose claim went stale never sends a row another worker took over."""
    from dropin.services.outbox.claims import STALE_CLAIM, claim_batch, mark_sent, renew
    from dropin.store.uow import outbox_insert

    t0 = datetime.now(UTC).replace(microsecond=0)
    async with db.write() as conn:
        await conn.execute(
            outbox_insert("booking_confirmed", t0, session_id="a" * 32, member_id="b" * 32)
        )
    assert await claim_batch(db, now=t0) == [1]  # worker A
    t1 = t0 + STALE_CLAIM + timedelta(seconds=1)
    assert await claim_batch(db, now=t1) == [1]  # worker B: A looks dead
    assert await renew(db, 1, t0, now=t1) is None  # A wakes up: not its row any more
    fresh = await renew(db, 1, t1, now=t1 + timedelta(seconds=1))
    assert fresh is not None
    await mark_sent(db, 1, t0, now=t1)  # A's late mark changes nothing...
    assert await statuses(db) == {"sending": 1}
    await mark_sent(db, 1, fresh, now=t1)  # ...B's does.
    assert await statuses(db) == {"sent": 1}


async def test_a_waitlisted_member_is_told_their_place_in_the_queue(db: Database) -> None:
    """The position is read with the row (one query): the number of people waiting ahead."""
    from email import message_from_bytes

    from dropin.services.feeds import LinkMaker
    from dropin.services.outbox.compose import compose_row

    now = datetime.now(UTC).replace(microsecond=0)
    g = await groups.create_group(db, name="W", timezone="UTC", now=now)
    people = await groups.add_members(
        db, g.id, [groups.NewMember(n, f"{n.lower()}@example.org") for n in "ABC"], now=now
    )
    start = (now + timedelta(days=3)).replace(tzinfo=None)
    await series.create_series(
        db,
        g.id,
        series.SeriesInput("S", "FREQ=DAILY;COUNT=1", start, 60, 1),
        now=now,
        horizon_days=5,
    )
    [s] = await sessions.list_sessions(db, g.id, start=now, end=now + timedelta(days=5), now=now)
    for p in people:
        await bookings.book_seat(db, s.id, p.id, now=now)
    async with db.read() as conn:
        waiting = (
            await conn.execute(
                select(outbox.c.id)
                .where(outbox.c.kind == "booking_waitlisted")
                .order_by(outbox.c.id)
            )
        ).scalars()
        rows = list(waiting)
    links = LinkMaker("k" * 48, "http://x")
    said = []
    for row_id in rows:
        out = await compose_row(db, links, "d@example.net", row_id, now=now)
        assert out.message is not None
        mail = message_from_bytes(out.message.data)
        text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
        said.append(text.get_payload(decode=True).decode())
    assert len(said) == 2
    assert "You are number 1." in said[0] and "You are number 2." in said[1]
