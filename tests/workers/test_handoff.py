"""Facilitator handoffs end to end: notice, confirm, can't make it, hand-over, swap, alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dropin.config import Settings
from dropin.services import handoff
from dropin.store.db import Database
from dropin.store.tables import sessions
from tests.helpers import Api
from tests.workers.conftest import drain
from tests.workers.smtp import SmtpServer, calendar_method

pytestmark = pytest.mark.asyncio
BASE = "http://127.0.0.1:8000"


def subjects(server: SmtpServer, email: str) -> list[str]:
    return [str(m["Subject"]).strip().split(":")[0] for m in server.recorder.to(email)]


def link(server: SmtpServer, email: str, marker: str) -> str:
    text = server.recorder.to(email)[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return next(w for w in text.split() if marker in w).removeprefix(BASE)


async def circle(api: Api, names: list[str]) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    g = await api.group(organizer_email="organizer@example.net")
    start = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT19:30:00")
    await api.series(g["id"], rrule="FREQ=WEEKLY;COUNT=1", first_start=start)
    people = []
    for n in names:
        p = await api.member(g["id"], n, role="facilitator")
        await api.ok("PATCH", f"/api/v1/members/{p['id']}", json={"led_before": 5})
        people.append(p)
    [session] = await api.sessions(g["id"])
    if names:
        await api.ok("POST", f"/api/v1/groups/{g['id']}/rota/run")
    return g, await api.ok("GET", f"/api/v1/sessions/{session['id']}"), people


def who(session: dict[str, Any]) -> tuple[str | None, str | None]:
    f = session["facilitators"]
    return (f["lead"] or {}).get("member_id"), (f["co"] or {}).get("member_id")


async def row(db: Database, session_id: str) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(sessions).where(sessions.c.id == session_id))).one()


async def test_notice_confirm_and_no_handover(
    live: Settings,
    db: Database,
    smtp: SmtpServer,
) -> None:
    async with Api.start(live, db) as api:
        _, s, people = await circle(api, ["Lee", "Cory", "Dana"])
        lead, co = who(s)
        email = {p["id"]: p["email"] for p in people}
        starts = datetime.fromisoformat(s["starts_at"].replace("Z", "+00:00"))
        assert await handoff.run_handoffs(db, now=datetime.now(UTC)) == 1
        await drain(live)
        assert subjects(smtp, email[lead]) == ["You lead", "Please confirm you lead"]
        confirm = link(smtp, email[lead], "/h/")
        page = await api.client.get(confirm)
        assert page.status_code == 200 and "data-autosubmit" in page.text
        assert (await row(db, s["id"])).lead_confirmed_at is None  # opening is not clicking
        assert "confirmed" in (await api.client.post(confirm)).text
        assert "already confirmed" in (await api.client.post(confirm)).text
        # 71 hours before: confirmed, so nothing is handed over.
        assert await handoff.run_handoffs(db, now=starts - timedelta(hours=71)) == 0
        assert who(await api.ok("GET", f"/api/v1/sessions/{s['id']}")) == (lead, co)


async def test_unconfirmed_lead_hands_over_to_the_co(
    live: Settings,
    db: Database,
    smtp: SmtpServer,
) -> None:
    async with Api.start(live, db) as api:
        _, s, people = await circle(api, ["Lee", "Cory", "Dana"])
        lead, co = who(s)
        email = {p["id"]: p["email"] for p in people}
        starts = datetime.fromisoformat(s["starts_at"].replace("Z", "+00:00"))
        await handoff.run_handoffs(db, now=starts - timedelta(days=13))
        assert await handoff.run_handoffs(db, now=starts - timedelta(hours=71)) == 1
        after = await api.ok("GET", f"/api/v1/sessions/{s['id']}")
        new_lead, new_co = who(after)
        assert new_lead == co and new_co not in (None, lead, co)
        await drain(live)
        released = smtp.recorder.to(email[lead])[-1]
        assert calendar_method(released) == "CANCEL"
        assert subjects(smtp, email[lead])[-1] == "No longer facilitating"
        assert subjects(smtp, email[new_co])[-1] == "You co-facilitate"


async def test_cant_make_it_and_swap(
    live: Settings,
    db: Database,
    smtp: SmtpServer,
) -> None:
    async with Api.start(live, db) as api:
        _, s, people = await circle(api, ["Lee", "Cory", "Dana", "Eli"])
        lead, co = who(s)
        email = {p["id"]: p["email"] for p in people}
        await drain(live)
        # The co says they can't make it: the lead stays, someone else becomes co.
        release = link(smtp, email[co], "/h/")
        assert "someone else" in (await api.client.post(release)).text
        lead2, co2 = who(await api.ok("GET", f"/api/v1/sessions/{s['id']}"))
        assert lead2 == lead and co2 not in (None, co)
        assert "not facilitating" in (await api.client.post(release)).text  # clicked twice
        # The lead asks the one facilitator left out to swap.
        taker = next(p["id"] for p in people if p["id"] not in (lead2, co2, co))
        r = await api.request(
            "POST",
            f"/api/v1/sessions/{s['id']}/swap-requests",
            json={"from_member_id": lead2, "to_member_id": taker},
        )
        assert r.status_code == 202
        await drain(live)
        assert subjects(smtp, email[taker])[-1].startswith("Could you take my place?")
        accept = link(smtp, email[taker], "/s/")
        assert "yours" in (await api.client.post(accept)).text
        assert who(await api.ok("GET", f"/api/v1/sessions/{s['id']}")) == (taker, co2)
        assert "yours" in (await api.client.post(accept)).text  # safe twice
        bad = await api.request(
            "POST",
            f"/api/v1/sessions/{s['id']}/swap-requests",
            json={"from_member_id": co, "to_member_id": taker},
        )
        assert bad.status_code == 422


async def test_nobody_can_lead_alerts_the_organizer(
    live: Settings,
    db: Database,
    smtp: SmtpServer,
) -> None:
    async with Api.start(live, db) as api:
        _, s, _ = await circle(api, [])
        starts = datetime.fromisoformat(s["starts_at"].replace("Z", "+00:00"))
        assert await handoff.run_handoffs(db, now=starts - timedelta(hours=50)) == 0
        assert await handoff.run_handoffs(db, now=starts - timedelta(hours=47)) == 1
        assert await handoff.run_handoffs(db, now=starts - timedelta(hours=46)) == 0  # once
        await drain(live)
        [alert] = smtp.recorder.to("organizer@example.net")
        assert str(alert["Subject"]).strip().startswith("No one can lead")
        assert s["id"] in alert.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_bad_links_get_clear_pages(live: Settings, db: Database) -> None:
    async with Api.start(live, db) as api:
        for url in ("/s/garbage", "/h/garbage", "/s/" + "A" * 90):
            r = await api.client.get(url)
            assert r.status_code == 404 and "does not work" in r.text, url
        r = await api.request("POST", "/api/v1/outbox/99999999999999999999999/retry")
        assert r.status_code == 404
        g = await api.group()
        r = await api.request("GET", f"/api/v1/groups/{g['id']}/rota", params={"days": "²"})
        assert r.status_code == 422
