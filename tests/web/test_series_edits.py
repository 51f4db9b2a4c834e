"""Editing a series re-plans its future sessions without losing or moving bookings wrongly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api

pytestmark = pytest.mark.asyncio
YEAR = {"from": "2028-01-01", "to": "2028-12-31"}


async def setup(api: Api, **series: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    g = await api.group()
    s = await api.series(g["id"], first_start="2028-01-01T19:30:00", **series)
    return g, s


async def patch(api: Api, series_id: str, **changes: Any) -> dict[str, Any]:
    return await api.ok("PATCH", f"/api/v1/series/{series_id}", json=changes)  # type: ignore[no-any-return]


def by_month(found: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(s["starts_at"][5:7]): s for s in found}


async def test_every_other_month_retires_the_months_between(api: Api) -> None:
    g, s = await setup(api)
    before = by_month(await api.sessions(g["id"], **YEAR))
    ann = await api.member(g["id"], "Ann")
    feb = await api.book(before[2]["id"], ann["id"])
    await patch(api, s["id"], rrule="FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU")
    after = await api.sessions(g["id"], **YEAR)
    scheduled = [x for x in after if x["status"] == "scheduled"]
    assert [x["starts_at"][5:7] for x in scheduled] == ["01", "03", "05", "07", "09", "11"]
    # January keeps its row; February is retired with its booking kept on record.
    assert by_month(scheduled)[1]["id"] == before[1]["id"]
    retired = by_month(after)[2]
    assert retired["id"] == before[2]["id"] and retired["status"] == "cancelled"
    kept = await api.ok("GET", f"/api/v1/bookings/{feb['id']}")
    assert kept["status"] == "confirmed" and kept["session_id"] == before[2]["id"]
    # Going back to monthly brings the same February session back, booking and all.
    await patch(api, s["id"], rrule="FREQ=MONTHLY;BYDAY=2TU")
    back = by_month(await api.sessions(g["id"], **YEAR))
    assert back[2]["id"] == before[2]["id"] and back[2]["status"] == "scheduled"
    assert back[2]["confirmed_count"] == 1
    assert len(await api.sessions(g["id"], **YEAR)) == 12


async def test_moving_the_start_keeps_march_bookings_in_march(api: Api) -> None:
    g, s = await setup(api)
    before = by_month(await api.sessions(g["id"], **YEAR))
    ann = await api.member(g["id"], "Ann")
    march = await api.book(before[3]["id"], ann["id"])
    await patch(api, s["id"], first_start="2028-03-01T19:30:00")
    after = by_month([x for x in await api.sessions(g["id"], **YEAR) if x["status"] == "scheduled"])
    assert min(after) == 3
    assert after[3]["id"] == before[3]["id"] and after[3]["confirmed_count"] == 1
    kept = await api.ok("GET", f"/api/v1/bookings/{march['id']}")
    assert kept["session_id"] == before[3]["id"] and kept["status"] == "confirmed"


async def test_a_hand_cancelled_session_stays_cancelled(api: Api) -> None:
    g, s = await setup(api)
    before = by_month(await api.sessions(g["id"], **YEAR))
    await api.ok("PATCH", f"/api/v1/sessions/{before[2]['id']}", json={"status": "cancelled"})
    await patch(api, s["id"], first_start="2028-01-01T20:00:00")
    after = await api.sessions(g["id"], **YEAR)
    months = by_month(after)
    assert months[2]["id"] == before[2]["id"] and months[2]["status"] == "cancelled"
    assert len(after) == 12  # no duplicate February
    assert months[4]["starts_at"] == "2028-04-11T19:00:00Z"


async def test_count_then_unbounded_reinstates(api: Api) -> None:
    g, s = await setup(api)
    await patch(api, s["id"], rrule="FREQ=MONTHLY;BYDAY=2TU;COUNT=2")
    statuses = [x["status"] for x in await api.sessions(g["id"], **YEAR)]
    assert statuses[:2] == ["scheduled", "scheduled"] and set(statuses[2:]) == {"cancelled"}
    await patch(api, s["id"], rrule="FREQ=MONTHLY;BYDAY=2TU")
    assert {x["status"] for x in await api.sessions(g["id"], **YEAR)} == {"scheduled"}


async def test_weekly_time_change_stays_in_the_same_week(api: Api) -> None:
    g, s = await setup(api, rrule="FREQ=WEEKLY;BYDAY=TU")
    jan = await api.sessions(g["id"], **{"from": "2028-01-01", "to": "2028-01-31"})
    await patch(api, s["id"], rrule="FREQ=WEEKLY;BYDAY=TH", first_start="2028-01-01T17:00:00")
    moved = await api.sessions(g["id"], **{"from": "2028-01-01", "to": "2028-01-31"})
    pairs = {x["id"]: x["starts_at"] for x in moved}
    for old in jan:
        # Tuesday 19:30 -> Thursday 17:00 of the same week, never the week after.
        assert (
            pairs[old["id"]][:10]
            == {
                "2028-01-04": "2028-01-06",
                "2028-01-11": "2028-01-13",
                "2028-01-18": "2028-01-20",
                "2028-01-25": "2028-01-27",
            }[old["starts_at"][:10]]
        )


async def test_hand_set_capacity_and_length_survive_series_edits(api: Api) -> None:
    g, s = await setup(api)
    months = by_month(await api.sessions(g["id"], **YEAR))
    await api.ok("PATCH", f"/api/v1/sessions/{months[2]['id']}", json={"capacity": 4})
    await api.ok("PATCH", f"/api/v1/sessions/{months[3]['id']}", json={"duration_minutes": 30})
    await patch(api, s["id"], capacity=12, first_start="2028-01-01T20:00:00")
    after = by_month(await api.sessions(g["id"], **YEAR))
    assert after[2]["capacity"] == 4 and after[4]["capacity"] == 12
    assert after[3]["ends_at"] == "2028-03-14T20:00:00Z"  # 19:30 + 30 min, left alone


async def test_join_link_survives_a_later_move(api: Api) -> None:
    g, _ = await setup(api)
    march = by_month(await api.sessions(g["id"], **YEAR))[3]
    ann = await api.member(g["id"], "Ann")
    await api.book(march["id"], ann["id"])
    link = await api.ok(
        "POST", f"/api/v1/sessions/{march['id']}/join-links", 201, json={"member_id": ann["id"]}
    )
    await api.ok(
        "PATCH", f"/api/v1/sessions/{march['id']}", json={"local_start": "2028-03-20T19:30:00"}
    )
    info = await api.client.get(link["url"].removeprefix("http://127.0.0.1:8000") + "/info")
    assert info.status_code == 200 and "20 March 2028" in info.json()["when"]


@pytest.mark.parametrize(
    ("method", "url", "body", "code"),
    [
        ("POST", "series", {"rrule": "FREQ=DAILY;INTERVAL=0"}, "invalid_rrule"),
        ("POST", "series", {"rrule": "FREQ=MONTHLY;BYMONTHDAY=0"}, "invalid_rrule"),
        ("POST", "series", {"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "invalid_rrule"),
        ("POST", "series", {"first_start": "0001-01-01T10:00:00"}, "invalid_first_start"),
        ("POST", "series", {"first_start": "9999-01-01T10:00:00"}, "invalid_first_start"),
        ("GET", "sessions?from=9999-12-31", None, "invalid_query"),
        ("GET", "sessions?from=0001-01-01", None, "invalid_query"),
        ("GET", "sessions?to=0001-01-01T05:00:00", None, "invalid_query"),
        ("PATCH", "first-session", {"starts_at": "9999-12-31T23:00:00Z"}, "too_far_ahead"),
        ("PATCH", "first-session", {"local_start": "9999-12-31T23:00:00"}, "too_far_ahead"),
        ("PATCH", "the-series", {"title": None}, "invalid_fields"),
    ],
)
async def test_out_of_range_input_is_a_422(
    api: Api, method: str, url: str, body: Any, code: str
) -> None:
    g, s = await setup(api)
    if url == "series":
        payload = {
            "title": "t",
            "rrule": "FREQ=MONTHLY;BYDAY=2TU",
            "first_start": "2028-01-01T19:30:00",
            "duration_minutes": 60,
            "capacity": 5,
            **body,
        }
        r = await api.request(method, f"/api/v1/groups/{g['id']}/series", json=payload)
    elif url == "first-session":
        first = (await api.sessions(g["id"], **YEAR))[0]
        r = await api.request(method, f"/api/v1/sessions/{first['id']}", json=body)
    elif url == "the-series":
        r = await api.request(method, f"/api/v1/series/{s['id']}", json=body)
    else:
        r = await api.request(method, f"/api/v1/groups/{g['id']}/{url}")
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code
