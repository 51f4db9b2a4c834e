"""The organizer's JSON API end to end on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api

pytestmark = pytest.mark.asyncio


async def test_group_member_series_sessions_across_dst(api: Api) -> None:
    group = await api.group("Europe/London")
    assert group["timezone"] == "Europe/London"
    created = await api.series(group["id"], first_start="2028-01-01T19:30:00")
    assert created["rrule"] == "FREQ=MONTHLY;BYDAY=2TU"
    assert created["sessions_created"] >= 30
    found = await api.sessions(group["id"], **{"from": "2028-01-01", "to": "2028-12-31"})
    starts = [s["starts_at"] for s in found]
    assert len(starts) == 12
    # GMT in winter, BST (UTC+1) from 26 March to 29 October 2028: wall clock stays 19:30.
    assert starts[2] == "2028-03-14T19:30:00Z"
    assert starts[3] == "2028-04-11T18:30:00Z"
    assert starts[9] == "2028-10-10T18:30:00Z"
    assert starts[10] == "2028-11-14T19:30:00Z"
    first = found[3]
    assert first["ends_at"] == "2028-04-11T19:45:00Z"
    assert first["local_start"] == "2028-04-11T19:30:00+01:00"
    assert first["timezone"] == "Europe/London"
    assert first["status"] == "scheduled"
    assert (first["capacity"], first["confirmed_count"], first["waitlist_count"]) == (10, 0, 0)
    assert first["facilitators"] == {"lead": None, "co": None}


@pytest.mark.parametrize(
    ("tz", "first_start", "expected"),
    [
        (
            "America/New_York",
            "2028-01-01T20:00:00",
            ["2028-03-10T01:00:00Z", "2028-04-14T00:00:00Z"],
        ),
        (
            "Australia/Sydney",
            "2028-01-01T19:00:00",
            ["2028-03-09T08:00:00Z", "2028-04-13T09:00:00Z"],
        ),
        ("Asia/Kolkata", "2028-01-01T19:30:00", ["2028-03-09T14:00:00Z", "2028-04-13T14:00:00Z"]),
    ],
)
async def test_zones_in_both_hemispheres(
    api: Api, tz: str, first_start: str, expected: list[str]
) -> None:
    # Second Thursday each month (New York is a day later in UTC).
    group = await api.group(tz)
    await api.series(group["id"], rrule="FREQ=MONTHLY;BYDAY=2TH", first_start=first_start)
    found = await api.sessions(group["id"], **{"from": "2028-03-01", "to": "2028-04-30"})
    assert [s["starts_at"] for s in found] == expected


async def _session(api: Api, capacity: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    group = await api.group()
    await api.series(group["id"], first_start="2028-01-01T19:30:00", capacity=capacity)
    [session] = await api.sessions(group["id"], **{"from": "2028-03-01", "to": "2028-03-31"})
    return group, session


async def test_waitlist_and_promotion(api: Api) -> None:
    group, session = await _session(api, capacity=2)
    people = [await api.member(group["id"], n) for n in ("Ann", "Bea", "Cal", "Dev")]
    ids = [p["id"] for p in people]
    b = [await api.book(session["id"], i) for i in ids]
    assert [x["status"] for x in b] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert [x["waitlist_position"] for x in b] == [None, None, 1, 2]
    listed = await api.ok("GET", f"/api/v1/sessions/{session['id']}")
    assert (listed["confirmed_count"], listed["waitlist_count"]) == (2, 2)

    cancelled = await api.ok("DELETE", f"/api/v1/bookings/{b[1]['id']}")
    assert cancelled["status"] == "cancelled"
    assert cancelled["promoted_booking_ids"] == [b[2]["id"]]
    promoted = await api.ok("GET", f"/api/v1/bookings/{b[2]['id']}")
    assert promoted["status"] == "confirmed"
    still = await api.ok("GET", f"/api/v1/bookings/{b[3]['id']}")
    assert (still["status"], still["waitlist_position"]) == ("waitlisted", 1)

    # Cancelling twice is safe and promotes nobody else.
    again = await api.ok("DELETE", f"/api/v1/bookings/{b[1]['id']}")
    assert again["status"] == "cancelled" and again["promoted_booking_ids"] == []
    # A waitlisted member leaving promotes nobody.
    left = await api.ok("DELETE", f"/api/v1/bookings/{b[3]['id']}")
    assert left["promoted_booking_ids"] == []
    roster = await api.ok("GET", f"/api/v1/sessions/{session['id']}/bookings")
    assert [(r["display_name"], r["status"]) for r in roster["items"]] == [
        ("Ann", "confirmed"),
        ("Cal", "confirmed"),
    ]
    final = await api.ok("GET", f"/api/v1/sessions/{session['id']}")
    assert (final["confirmed_count"], final["waitlist_count"]) == (2, 0)


async def test_book_once_and_rebook_after_cancel(api: Api) -> None:
    group, session = await _session(api, capacity=1)
    ann = await api.member(group["id"], "Ann")
    bea = await api.member(group["id"], "Bea")
    first = await api.book(session["id"], ann["id"])
    dup = await api.request(
        "POST", f"/api/v1/sessions/{session['id']}/bookings", json={"member_id": ann["id"]}
    )
    assert dup.status_code == 409 and dup.json()["error"] == "already_booked"
    waiting = await api.book(session["id"], bea["id"])
    assert waiting["status"] == "waitlisted"
    await api.ok("DELETE", f"/api/v1/bookings/{first['id']}")
    # Ann comes back: the place went to Bea, so Ann joins the back of the waitlist.
    back = await api.book(session["id"], ann["id"])
    assert back["id"] == first["id"]
    assert (back["status"], back["waitlist_position"]) == ("waitlisted", 1)


async def test_cancelled_session_refuses_bookings_and_keeps_them(api: Api) -> None:
    group, session = await _session(api)
    ann = await api.member(group["id"], "Ann")
    booking = await api.book(session["id"], ann["id"])
    patched = await api.ok(
        "PATCH", f"/api/v1/sessions/{session['id']}", json={"status": "cancelled"}
    )
    assert patched["status"] == "cancelled"
    assert patched["sequence"] == session["sequence"] + 1
    bea = await api.member(group["id"], "Bea")
    refused = await api.request(
        "POST", f"/api/v1/sessions/{session['id']}/bookings", json={"member_id": bea["id"]}
    )
    assert refused.status_code == 409 and refused.json()["error"] == "session_cancelled"
    kept = await api.ok("GET", f"/api/v1/bookings/{booking['id']}")
    assert kept["status"] == "confirmed"
    # The rest of the series is untouched.
    others = await api.sessions(group["id"], **{"from": "2028-04-01", "to": "2028-05-31"})
    assert {s["status"] for s in others} == {"scheduled"}


async def test_reschedule_one_occurrence(api: Api) -> None:
    _group, session = await _session(api)
    moved = await api.ok(
        "PATCH", f"/api/v1/sessions/{session['id']}", json={"local_start": "2028-03-15T18:00:00"}
    )
    assert moved["starts_at"] == "2028-03-15T18:00:00Z"
    assert moved["ends_at"] == "2028-03-15T19:15:00Z"
    assert moved["rescheduled"] is True
    assert moved["sequence"] == 1
    by_instant = await api.ok(
        "PATCH",
        f"/api/v1/sessions/{session['id']}",
        json={"starts_at": "2028-03-16T18:00:00+00:00"},
    )
    assert by_instant["starts_at"] == "2028-03-16T18:00:00Z" and by_instant["sequence"] == 2
    # A local time in the spring-forward gap is shifted forward, not refused.
    gap = await api.ok(
        "PATCH", f"/api/v1/sessions/{session['id']}", json={"local_start": "2028-03-26T01:30:00"}
    )
    assert gap["starts_at"] == "2028-03-26T01:30:00Z"
    assert gap["local_start"] == "2028-03-26T02:30:00+01:00"
    past = await api.request(
        "PATCH", f"/api/v1/sessions/{session['id']}", json={"starts_at": "2020-01-01T10:00:00Z"}
    )
    assert past.status_code == 422 and past.json()["error"] == "in_the_past"


async def test_raising_capacity_promotes_the_waitlist(api: Api) -> None:
    group, session = await _session(api, capacity=1)
    ids = [(await api.member(group["id"], n))["id"] for n in ("Ann", "Bea", "Cal")]
    bookings = [await api.book(session["id"], i) for i in ids]
    resized = await api.ok("PATCH", f"/api/v1/sessions/{session['id']}", json={"capacity": 2})
    assert (resized["confirmed_count"], resized["waitlist_count"]) == (2, 1)
    bea = await api.ok("GET", f"/api/v1/bookings/{bookings[1]['id']}")
    assert bea["status"] == "confirmed"
    # Lowering it bumps nobody.
    shrunk = await api.ok("PATCH", f"/api/v1/sessions/{session['id']}", json={"capacity": 1})
    assert (shrunk["confirmed_count"], shrunk["waitlist_count"]) == (2, 1)


async def test_editing_the_series_keeps_bookings(api: Api) -> None:
    group = await api.group()
    created = await api.series(group["id"], first_start="2028-01-01T19:30:00")
    march, april = await api.sessions(group["id"], **{"from": "2028-03-01", "to": "2028-04-30"})
    ann = await api.member(group["id"], "Ann")
    booking = await api.book(april["id"], ann["id"])
    edited = await api.ok(
        "PATCH",
        f"/api/v1/series/{created['id']}",
        json={"rrule": "FREQ=MONTHLY;BYDAY=3TU", "first_start": "2028-01-01T20:00:00"},
    )
    assert edited["rrule"] == "FREQ=MONTHLY;BYDAY=3TU"
    after = await api.sessions(group["id"], **{"from": "2028-03-01", "to": "2028-04-30"})
    assert [s["id"] for s in after] == [march["id"], april["id"]]
    assert [s["starts_at"] for s in after] == ["2028-03-21T20:00:00Z", "2028-04-18T19:00:00Z"]
    assert all(s["sequence"] == 1 for s in after)
    kept = await api.ok("GET", f"/api/v1/bookings/{booking['id']}")
    assert (kept["status"], kept["session_id"]) == ("confirmed", april["id"])
    assert after[1]["confirmed_count"] == 1


async def test_facilitators_and_join_links(api: Api) -> None:
    group, session = await _session(api)
    lead = await api.member(group["id"], "Lee", role="facilitator")
    co = await api.member(group["id"], "Cory", role="facilitator")
    parent = await api.member(group["id"], "Ann")
    other = await api.member(group["id"], "Bea")
    url = f"/api/v1/sessions/{session['id']}/facilitators"
    set_ = await api.ok("PUT", url, json={"lead_member_id": lead["id"], "co_member_id": co["id"]})
    assert set_["facilitators"] == {
        "lead": {"member_id": lead["id"], "display_name": "Lee"},
        "co": {"member_id": co["id"], "display_name": "Cory"},
    }
    bad = await api.request("PUT", url, json={"lead_member_id": parent["id"]})
    assert bad.status_code == 422 and bad.json()["error"] == "not_a_facilitator"
    same = await api.request(
        "PUT", url, json={"lead_member_id": lead["id"], "co_member_id": lead["id"]}
    )
    assert same.status_code == 422
    await api.book(session["id"], parent["id"])
    links_url = f"/api/v1/sessions/{session['id']}/join-links"
    link = await api.ok("POST", links_url, 201, json={"member_id": parent["id"]})
    assert link["url"].startswith("http://127.0.0.1:8000/j/") and link["role"] == "parent"
    assert link["expires_at"] == session["ends_at"]
    flink = await api.ok("POST", links_url, 201, json={"member_id": lead["id"]})
    assert flink["role"] == "facilitator"
    refused = await api.request("POST", links_url, json={"member_id": other["id"]})
    assert refused.status_code == 403 and refused.json()["error"] == "not_booked"
    path = link["url"].removeprefix("http://127.0.0.1:8000")
    page = await api.client.get(path)
    assert page.status_code == 200 and 'src="/rooms/static/js/app.js"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    info = await api.client.get(f"{path}/info")
    assert info.json()["title"] == "Evening drop-in" and info.json()["role"] == "parent"
    assert "ann@example.org" not in info.text
    tampered = await api.client.get(link["url"].removeprefix("http://127.0.0.1:8000")[:-3] + "abc")
    assert tampered.status_code == 404 and "does not work" in tampered.text
    # A facilitator cannot also hold a place.
    refused_booking = await api.request(
        "POST", f"/api/v1/sessions/{session['id']}/bookings", json={"member_id": lead["id"]}
    )
    assert refused_booking.status_code == 409 and refused_booking.json()["error"] == "facilitating"


async def test_ids_of_another_group_are_refused(api: Api) -> None:
    _, session = await _session(api)
    g2 = await api.group()
    stranger = await api.member(g2["id"], "Zed", role="facilitator")
    r = await api.request(
        "POST", f"/api/v1/sessions/{session['id']}/bookings", json={"member_id": stranger["id"]}
    )
    assert r.status_code == 404 and r.json()["error"] == "member_not_found"
    r = await api.request(
        "PUT",
        f"/api/v1/sessions/{session['id']}/facilitators",
        json={"lead_member_id": stranger["id"]},
    )
    assert r.status_code == 404
    r = await api.request(
        "POST", f"/api/v1/sessions/{session['id']}/join-links", json={"member_id": stranger["id"]}
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/api/v1/groups", b"{not json", 400, "malformed_json"),
        ("POST", "/api/v1/groups", b"", 400, "malformed_json"),
        ("POST", "/api/v1/groups", b"[1, 2]", 422, "invalid_body"),
        (
            "POST",
            "/api/v1/groups",
            {"name": "x", "timezone": "Europe/London", "colour": "red"},
            422,
            "invalid_fields",
        ),
        (
            "POST",
            "/api/v1/groups",
            {"name": "x", "timezone": "Mars/Olympus"},
            422,
            "invalid_timezone",
        ),
        ("POST", "/api/v1/groups", {"name": "", "timezone": "UTC"}, 422, "invalid_fields"),
        ("POST", "/api/v1/groups", {"name": "x" * 70000, "timezone": "UTC"}, 413, "too_large"),
        ("GET", "/api/v1/groups/" + "0" * 32, None, 404, "group_not_found"),
        ("GET", "/api/v1/sessions/" + "0" * 32, None, 404, "session_not_found"),
        ("DELETE", "/api/v1/bookings/" + "0" * 32, None, 404, "booking_not_found"),
        # Anything that is not an id never reaches a handler.
        ("GET", "/api/v1/groups/nope", None, 404, "not_found"),
        ("GET", "/api/v1/groups/%00" + "0" * 31, None, 404, "not_found"),
        ("GET", "/api/v1/sessions/" + "A" * 32, None, 404, "not_found"),
        ("GET", "/api/v1/sessions/" + "0" * 5000, None, 404, "not_found"),
        (
            "POST",
            "/api/v1/groups",
            b'{"name": "x", "timezone": "UTC", "discreet": "yes"}',
            422,
            "invalid_fields",
        ),
        (
            "POST",
            "/api/v1/groups",
            b'{"name": "x", "timezone": "UTC", "public": 1}',
            422,
            "invalid_fields",
        ),
        ("POST", "/api/v1/groups", {"name": "x", "timezone": "Europe"}, 422, "invalid_timezone"),
        (
            "POST",
            "/api/v1/groups",
            {"name": "x", "timezone": "UTC", "description": "a\x00b"},
            422,
            "invalid",
        ),
        ("GET", "/api/v1/nothing-here", None, 404, "not_found"),
        ("PUT", "/api/v1/groups", {}, 405, "method_not_allowed"),
    ],
)
async def test_bad_requests(
    api: Api, method: str, path: str, body: Any, status: int, code: str
) -> None:
    if isinstance(body, bytes):
        r = await api.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    elif body is not None:
        r = await api.request(method, path, json=body)
    else:
        r = await api.request(method, path)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"rrule": "FREQ=HOURLY"}, "invalid_rrule"),
        ({"rrule": "FREQ=MONTHLY;BYDAY=2XX"}, "invalid_rrule"),
        ({"rrule": "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2"}, "invalid_rrule"),
        ({"first_start": "2028-01-01T19:30:00+01:00"}, "invalid_fields"),
        ({"first_start": "yesterday"}, "invalid_fields"),
        ({"duration_minutes": 0}, "invalid_fields"),
        ({"capacity": -1}, "invalid_fields"),
        ({"capacity": "ten"}, "invalid_fields"),
    ],
)
async def test_bad_series(api: Api, body: dict[str, Any], code: str) -> None:
    group = await api.group()
    payload = {
        "title": "t",
        "rrule": "FREQ=MONTHLY;BYDAY=2TU",
        "first_start": "2028-01-01T19:30:00",
        "duration_minutes": 60,
        "capacity": 5,
        **body,
    }
    r = await api.request("POST", f"/api/v1/groups/{group['id']}/series", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code


async def test_auth(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer dk_wrong"}, {"Authorization": "Basic abc"}):
        r = await api.client.get("/api/v1/groups", headers={"Authorization": "", **headers})
        assert r.status_code == 401, headers
        assert r.json()["error"] in ("unauthorized", "invalid_key")
        assert r.headers["www-authenticate"] == "Bearer"


async def test_duplicate_member_email(api: Api) -> None:
    group = await api.group()
    await api.member(group["id"], "Ann", email="ann@example.org")
    r = await api.request(
        "POST",
        f"/api/v1/groups/{group['id']}/members",
        json={"display_name": "Annie", "email": "ann@EXAMPLE.org"},
    )
    assert r.status_code == 409 and r.json()["error"] == "member_exists"


async def test_session_listing_bad_query(api: Api) -> None:
    group = await api.group()
    r = await api.request("GET", f"/api/v1/groups/{group['id']}/sessions", params={"from": "soon"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_query"
    r = await api.request(
        "GET",
        f"/api/v1/groups/{group['id']}/sessions",
        params={"from": "2028-02-01", "to": "2028-01-01"},
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid_range"


async def test_openapi_and_health(api: Api) -> None:
    spec = await api.ok("GET", "/openapi.json")
    assert spec["openapi"].startswith("3.1")
    for path in (
        "/api/v1/groups",
        "/api/v1/groups/{group_id}/members",
        "/api/v1/groups/{group_id}/series",
        "/api/v1/groups/{group_id}/sessions",
        "/api/v1/sessions/{session_id}",
        "/api/v1/sessions/{session_id}/facilitators",
        "/api/v1/sessions/{session_id}/bookings",
        "/api/v1/bookings/{booking_id}",
        "/api/v1/sessions/{session_id}/join-links",
    ):
        assert path in spec["paths"], path
    assert (await api.ok("GET", "/healthz"))["status"] == "ok"


async def test_patch_null_means_clear_only_where_clearing_means_something(api: Api) -> None:
    """Left out keeps a value; null clears a member's zone or a group's alert address, and is
    refused (422, nothing changed) where a field cannot be empty."""
    g = await api.group(organizer_email="org@example.org")
    s = await api.series(g["id"], first_start="2028-01-01T19:30:00")
    ann = await api.member(g["id"], "Ann")
    [session] = await api.sessions(g["id"], **{"from": "2028-03-01", "to": "2028-03-31"})
    refused = [
        (f"/api/v1/sessions/{session['id']}", {"capacity": None}),
        (f"/api/v1/series/{s['id']}", {"title": None}),
        (f"/api/v1/groups/{g['id']}", {"name": None}),
        (f"/api/v1/members/{ann['id']}", {"display_name": None}),
    ]
    for path, body in refused:
        r = await api.request("PATCH", path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"] == "invalid_fields"
    assert (await api.ok("GET", f"/api/v1/sessions/{session['id']}"))["capacity"] == 10
    moved = await api.ok("PATCH", f"/api/v1/members/{ann['id']}", json={"timezone": "UTC"})
    assert moved["timezone"] == "UTC"
    back = await api.ok("PATCH", f"/api/v1/members/{ann['id']}", json={"timezone": None})
    assert back["timezone"] is None and back["display_name"] == "Ann"
    cleared = await api.ok("PATCH", f"/api/v1/groups/{g['id']}", json={"organizer_email": None})
    assert cleared["organizer_email"] is None and cleared["name"] == g["name"]
    kept = await api.ok("PATCH", f"/api/v1/series/{s['id']}", json={"capacity": 12})
    assert (kept["capacity"], kept["title"]) == (12, s["title"])


async def test_a_purged_session_is_still_refused_cleanly(api: Api) -> None:
    """The retention purge deletes an ended session's bookings and keeps its counts: loading
    it must not trip over the difference (409 session_over, never a 500)."""
    from datetime import datetime, timedelta

    from sqlalchemy import delete

    from dropin.domain.session import SessionEdit
    from dropin.errors import Conflict
    from dropin.services import sessions
    from dropin.store.tables import bookings

    g = await api.group()
    await api.series(g["id"], first_start="2028-01-01T19:30:00")
    ann = await api.member(g["id"], "Ann")
    fran = await api.member(g["id"], "Fran", role="facilitator")
    [session] = await api.sessions(g["id"], **{"from": "2028-03-01", "to": "2028-03-31"})
    await api.book(session["id"], ann["id"])
    async with api.db.write() as conn:
        await conn.execute(delete(bookings).where(bookings.c.session_id == session["id"]))
    later = datetime.fromisoformat(session["ends_at"]) + timedelta(days=200)
    with pytest.raises(Conflict) as over:
        await sessions.update_session(api.db, session["id"], SessionEdit(capacity=3), now=later)
    assert over.value.code == "session_over"
    with pytest.raises(Conflict) as again:
        await sessions.set_facilitators(
            api.db, session["id"], lead_member_id=fran["id"], co_member_id=None, now=later
        )
    assert again.value.code == "session_over"
    # The count stays as history.
    assert (await api.ok("GET", f"/api/v1/sessions/{session['id']}"))["confirmed_count"] == 1


async def test_an_impossible_pair_of_facilitators_is_refused_before_any_lookup(api: Api) -> None:
    g = await api.group()
    await api.series(g["id"], first_start="2028-01-01T19:30:00")
    [session] = await api.sessions(g["id"], **{"from": "2028-03-01", "to": "2028-03-31"})
    r = await api.request(
        "PUT",
        f"/api/v1/sessions/{session['id']}/facilitators",
        json={"lead_member_id": None, "co_member_id": "1" * 32},
    )
    assert (r.status_code, r.json()["error"]) == (422, "co_without_lead")
