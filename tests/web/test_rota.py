"""The facilitator rota through the API: fair, constrained, never overriding the organizer."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dropin.store.tables import outbox
from dropin.store.tables import sessions as sessions_table
from tests.helpers import Api
from tests.web.test_feeds import vevents

pytestmark = pytest.mark.asyncio


async def weekly_group(api: Api, facilitators: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """A weekly series starting next week (12 sessions inside the 90-day rotation window)."""
    g = await api.group()
    start = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT19:30:00")
    await api.series(g["id"], rrule="FREQ=WEEKLY;COUNT=12", first_start=start)
    people = [await api.member(g["id"], n, role="facilitator") for n in facilitators]
    for p in people:
        # Experienced practitioners (new facilitators only ever co-facilitate at first).
        await api.ok("PATCH", f"/api/v1/members/{p['id']}", json={"led_before": 5})
    return g, people


async def run(api: Api, group_id: str) -> list[dict[str, Any]]:
    data = await api.ok("POST", f"/api/v1/groups/{group_id}/rota/run")
    return data["items"]  # type: ignore[no-any-return]


async def test_fair_rota_with_lead_and_co(api: Api) -> None:
    g, people = await weekly_group(api, ["Lee", "Cory", "Dana"])
    lines = await run(api, g["id"])
    assert len(lines) == 12
    assert all(x["lead_member_id"] and x["co_member_id"] for x in lines)
    assert all(x["lead_member_id"] != x["co_member_id"] for x in lines)
    assert {x["assigned_by"] for x in lines} == {"rotation"}
    counts = Counter(m for x in lines for m in (x["lead_member_id"], x["co_member_id"]))
    # 24 places among 3 equally weighted people: 8 each, within one.
    assert all(7 <= counts[p["id"]] <= 9 for p in people), counts
    # Notices owed: one per person per session.
    async with api.db.read() as conn:
        kinds = (await conn.execute(select(outbox.c.kind))).scalars().all()
    assert Counter(kinds)["facilitator_assigned"] == 24
    # Running again changes nothing and owes nothing more.
    again = await run(api, g["id"])
    assert [(x["lead_member_id"], x["co_member_id"]) for x in again] == [
        (x["lead_member_id"], x["co_member_id"]) for x in lines
    ]


async def test_weights_and_unavailable_days(api: Api) -> None:
    g, (lee, cory, dana) = await weekly_group(api, ["Lee", "Cory", "Dana"])
    await api.ok("PATCH", f"/api/v1/members/{lee['id']}", json={"weight": 2})
    today = datetime.now(UTC).date()
    found = await api.sessions(
        g["id"], **{"from": str(today), "to": str(today + timedelta(days=100))}
    )
    away = [s["local_start"][:10] for s in found[:4]]
    saved = await api.ok("PUT", f"/api/v1/members/{dana['id']}/unavailable", json={"days": away})
    assert saved["days"] == sorted(away)
    lines = await run(api, g["id"])
    for x in lines[:4]:
        assert dana["id"] not in (x["lead_member_id"], x["co_member_id"])
    counts = Counter(m for x in lines for m in (x["lead_member_id"], x["co_member_id"]))
    assert counts[lee["id"]] > counts[cory["id"]]


async def test_organizer_choice_is_kept_and_gaps_are_explained(api: Api) -> None:
    g, (_, cory) = await weekly_group(api, ["Lee", "Cory"])
    first = (await api.sessions(g["id"]))[0]
    await api.ok(
        "PUT", f"/api/v1/sessions/{first['id']}/facilitators", json={"lead_member_id": cory["id"]}
    )
    lines = await run(api, g["id"])
    assert lines[0]["lead_member_id"] == cory["id"] and lines[0]["assigned_by"] == "organizer"
    assert lines[0]["co_member_id"] is None
    # Two facilitators, weekly, no two sessions in a row: the rule has to give and says so.
    assert any(x["note"] for x in lines[1:])
    solo = await api.group()
    await api.series(
        solo["id"],
        rrule="FREQ=WEEKLY;COUNT=3",
        first_start=(datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT19:30:00"),
    )
    empty = await run(api, solo["id"])
    assert all(x["lead_member_id"] is None and x["note"] for x in empty)


async def test_new_facilitators_start_as_co_with_an_experienced_lead(api: Api) -> None:
    g, (lee,) = await weekly_group(api, ["Lee"])
    new = await api.member(g["id"], "Nia", role="facilitator")
    lines = await run(api, g["id"])
    assert {x["lead_member_id"] for x in lines} == {lee["id"]}
    assert all(x["co_member_id"] in (new["id"], None) for x in lines)
    assert any(x["co_member_id"] == new["id"] for x in lines)


async def test_rota_inputs_are_checked(api: Api) -> None:
    g, (lee,) = await weekly_group(api, ["Lee"])
    r = await api.request("PATCH", f"/api/v1/members/{lee['id']}", json={"weight": 0})
    assert r.status_code == 422
    r = await api.request(
        "PUT", f"/api/v1/members/{lee['id']}/unavailable", json={"days": ["2020-01-01"]}
    )
    assert r.status_code == 422
    r = await api.request("GET", f"/api/v1/groups/{g['id']}/rota", params={"days": "x"})
    assert r.status_code == 422


async def test_a_facilitator_with_a_place_is_not_rotated_into_that_session(api: Api) -> None:
    g, (lee, _, _) = await weekly_group(api, ["Lee", "Cory", "Dana"])
    sessions = await api.sessions(g["id"])
    for s in sessions[:3]:
        await api.book(s["id"], lee["id"])  # Lee comes to these as a participant
    lines = await run(api, g["id"])
    for x in lines[:3]:
        assert lee["id"] not in (x["lead_member_id"], x["co_member_id"])
    assert any(lee["id"] in (x["lead_member_id"], x["co_member_id"]) for x in lines[3:])


async def test_organizer_changes_tell_who_leaves_and_rise_in_sequence(api: Api) -> None:
    g, (lee, cory, _) = await weekly_group(api, ["Lee", "Cory", "Dana"])
    first = (await api.sessions(g["id"]))[0]
    url = f"/api/v1/sessions/{first['id']}/facilitators"
    one = await api.ok("PUT", url, json={"lead_member_id": lee["id"], "co_member_id": cory["id"]})
    two = await api.ok("PUT", url, json={"lead_member_id": cory["id"]})
    assert two["sequence"] > one["sequence"] > first["sequence"]
    async with api.db.read() as conn:
        owed = (
            await conn.execute(select(outbox.c.kind, outbox.c.member_id).order_by(outbox.c.id))
        ).all()
    assert [(k, m) for k, m in owed][-2:] == [
        ("facilitator_released", lee["id"]),
        ("facilitator_assigned", cory["id"]),  # co -> lead: an updated invite
    ]


async def test_a_lead_who_once_cancelled_a_booking_sees_one_entry(api: Api) -> None:
    g, (lee, _, _) = await weekly_group(api, ["Lee", "Cory", "Dana"])
    first = (await api.sessions(g["id"]))[0]
    booking = await api.book(first["id"], lee["id"])
    await api.ok("DELETE", f"/api/v1/bookings/{booking['id']}")
    await api.ok(
        "PUT", f"/api/v1/sessions/{first['id']}/facilitators", json={"lead_member_id": lee["id"]}
    )
    feed = (await api.client.get(lee["feed_url"].removeprefix("http://127.0.0.1:8000"))).text
    uid = f"UID:session-{first['id']}@dropin"
    entries = [e for e in vevents(feed) if uid in e]
    assert len(entries) == 1
    assert "(leading)" in entries[0] and "STATUS:CONFIRMED" in entries[0]


async def test_a_group_of_new_facilitators_still_gets_leads(api: Api) -> None:
    g = await api.group()
    start = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT19:30:00")
    await api.series(g["id"], rrule="FREQ=WEEKLY;COUNT=4", first_start=start)
    for n in ("Ann", "Bo", "Cy"):
        await api.member(g["id"], n, role="facilitator")  # led_before 0: everyone is new
    lines = await run(api, g["id"])
    assert all(x["lead_member_id"] and x["co_member_id"] for x in lines)


async def test_moving_a_session_restarts_its_handoff(api: Api) -> None:
    g, (lee, _, _) = await weekly_group(api, ["Lee", "Cory", "Dana"])
    first = (await api.sessions(g["id"]))[0]
    await api.ok(
        "PUT", f"/api/v1/sessions/{first['id']}/facilitators", json={"lead_member_id": lee["id"]}
    )
    async with api.db.read() as conn:
        confirmed = (
            await conn.execute(
                select(sessions_table.c.lead_confirmed_at).where(sessions_table.c.id == first["id"])
            )
        ).scalar_one()
    assert confirmed is not None  # picked by the organizer
    moved = datetime.fromisoformat(first["starts_at"].replace("Z", "+00:00")) + timedelta(days=3)
    await api.ok("PATCH", f"/api/v1/sessions/{first['id']}", json={"starts_at": moved.isoformat()})
    async with api.db.read() as conn:
        row = (
            await conn.execute(select(sessions_table).where(sessions_table.c.id == first["id"]))
        ).one()
    assert row.lead_confirmed_at is None and row.alerted_at is None
