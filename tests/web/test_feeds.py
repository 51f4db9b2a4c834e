"""Calendar feeds, the member page and RSVP links, end to end through the app."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers import Api
from tests.parsers import missing_tools, read_icaljs, read_libical, read_vobject

pytestmark = pytest.mark.asyncio
BASE = "http://127.0.0.1:8000"


def path(url: str) -> str:
    return url.removeprefix(BASE)


async def circle(api: Api, **group: Any) -> dict[str, Any]:
    """A group with a monthly series (2028-2030), a facilitator and two parents; Ann is booked
    in March, Bea waitlisted (1 place); Lee leads March."""
    g = await api.group(**group)
    await api.series(g["id"], first_start="2028-01-01T19:30:00", capacity=1)
    lee = await api.member(g["id"], "Lee", role="facilitator")
    ann = await api.member(g["id"], "Ann")
    bea = await api.member(g["id"], "Bea")
    found = await api.sessions(g["id"], **{"from": "2028-01-01", "to": "2028-12-31"})
    march = found[2]
    await api.ok(
        "PUT", f"/api/v1/sessions/{march['id']}/facilitators", json={"lead_member_id": lee["id"]}
    )
    ann_booking = await api.book(march["id"], ann["id"])
    bea_booking = await api.book(march["id"], bea["id"])
    return {
        "group": g,
        "lee": lee,
        "ann": ann,
        "bea": bea,
        "sessions": found,
        "march": march,
        "ann_booking": ann_booking,
        "bea_booking": bea_booking,
    }


def vevents(text: str) -> list[str]:
    unfolded = text.replace("\r\n ", "")
    return re.findall(r"BEGIN:VEVENT.*?END:VEVENT", unfolded, re.S)


async def test_member_feed_shows_own_sessions_only(api: Api) -> None:
    c = await circle(api)
    assert c["ann"]["feed_url"].startswith(f"{BASE}/feeds/") and c["ann"]["page_url"]
    r = await api.client.get(path(c["ann"]["feed_url"]))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    body = r.text
    [event] = vevents(body)
    assert f"UID:session-{c['march']['id']}@dropin" in event
    assert "DTSTART;TZID=Europe/London:20280314T193000" in event
    assert "STATUS:CONFIRMED" in event
    assert "/j/" in event  # her personal join link
    for other in ("Bea", "bea@example.org", "Lee", "lee@example.org", "ann@example.org"):
        assert other not in body, other
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in body and "X-PUBLISHED-TTL:PT1H" in body
    assert "BEGIN:VTIMEZONE" in body and "RDATE" not in body

    bea_feed = (await api.client.get(path(c["bea"]["feed_url"]))).text
    [waiting] = vevents(bea_feed)
    assert "STATUS:TENTATIVE" in waiting and "(waitlist)" in waiting
    assert "/j/" not in waiting  # no join link without a place

    lee_feed = (await api.client.get(path(c["lee"]["feed_url"]))).text
    [leading] = vevents(lee_feed)
    assert "(leading)" in leading and "/j/" in leading
    for other in ("Ann", "Bea", "ann@", "bea@"):
        assert other not in lee_feed


async def test_updates_and_cancellations_happen_in_place(api: Api) -> None:
    c = await circle(api)
    url = path(c["ann"]["feed_url"])
    first = await api.client.get(url)
    etag = first.headers["etag"]
    [before] = vevents(first.text)
    # 1: assigning the lead raised the session's sequence once already.
    assert "SEQUENCE:1" in before
    # Unchanged: 304 by ETag and by date, with no body.
    same = await api.client.get(url, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    dated = await api.client.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert dated.status_code == 304

    await api.ok(
        "PATCH", f"/api/v1/sessions/{c['march']['id']}", json={"local_start": "2028-03-15T19:00:00"}
    )
    moved = await api.client.get(url, headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["etag"] != etag
    [after] = vevents(moved.text)
    assert "SEQUENCE:2" in after and "DTSTART;TZID=Europe/London:20280315T190000" in after
    assert before.split("UID:")[1].split("\r\n")[0] == after.split("UID:")[1].split("\r\n")[0]

    await api.ok("PATCH", f"/api/v1/sessions/{c['march']['id']}", json={"status": "cancelled"})
    [gone] = vevents((await api.client.get(url)).text)
    assert "STATUS:CANCELLED" in gone and "SEQUENCE:3" in gone and "/j/" not in gone

    # Bea's own cancellation also shows in place, with a higher SEQUENCE.
    bea_url = path(c["bea"]["feed_url"])
    await api.ok("DELETE", f"/api/v1/bookings/{c['bea_booking']['id']}")
    [left] = vevents((await api.client.get(bea_url)).text)
    assert "STATUS:CANCELLED" in left and "SEQUENCE:4" in left


async def test_promotion_changes_the_entry(api: Api) -> None:
    c = await circle(api)
    bea_url = path(c["bea"]["feed_url"])
    etag = (await api.client.get(bea_url)).headers["etag"]
    await api.ok("DELETE", f"/api/v1/bookings/{c['ann_booking']['id']}")
    promoted = await api.client.get(bea_url, headers={"If-None-Match": etag})
    assert promoted.status_code == 200
    [event] = vevents(promoted.text)
    assert "STATUS:CONFIRMED" in event and "SEQUENCE:2" in event and "/j/" in event


async def test_revoked_and_bad_feed_tokens(api: Api) -> None:
    c = await circle(api)
    old = path(c["ann"]["feed_url"])
    renewed = await api.ok("POST", f"/api/v1/members/{c['ann']['id']}/feed-token")
    assert renewed["feed_url"] != c["ann"]["feed_url"]
    assert renewed["page_url"] != c["ann"]["page_url"]
    assert (await api.client.get(old)).status_code == 404
    assert (await api.client.get(path(c["ann"]["page_url"]))).status_code == 404
    assert (await api.client.get(path(renewed["feed_url"]))).status_code == 200
    for bad in (
        "/feeds/nope.ics",
        "/feeds/" + "A" * 46 + ".ics",
        "/feeds/%00.ics",
        "/feeds/" + "x" * 5000 + ".ics",
    ):
        r = await api.client.get(bad)
        assert r.status_code == 404, bad
    # A page token is not a feed token.
    page_token = c["ann"]["page_url"].rsplit("/", 1)[1]
    assert (await api.client.get(f"/feeds/{page_token}.ics")).status_code == 404


async def test_discreet_mode_leaks_nothing(api: Api) -> None:
    c = await circle(api, discreet=True)
    for who in ("ann", "bea", "lee"):
        body = (await api.client.get(path(c[who]["feed_url"]))).text
        assert "CLASS:PRIVATE" in body
        assert "SUMMARY:Drop-in" in body
        for word in ("NVR", "circle", "Evening", "parents", "Monthly"):
            assert word not in body, (who, word)
    # A member's own preference overrides a non-discreet group.
    d = await circle(api)
    await api.ok("PATCH", f"/api/v1/members/{d['ann']['id']}", json={"discreet": True})
    body = (await api.client.get(path(d["ann"]["feed_url"]))).text
    assert "CLASS:PRIVATE" in body and "Evening" not in body


async def test_group_feed(api: Api) -> None:
    private = await circle(api)
    assert private["group"]["feed_url"] is None
    r = await api.client.get(f"/feeds/groups/{private['group']['id']}.ics")
    assert r.status_code == 404
    g = await api.ok("PATCH", f"/api/v1/groups/{private['group']['id']}", json={"public": True})
    assert g["feed_url"].endswith(f"/feeds/groups/{g['id']}.ics")
    body = (await api.client.get(path(g["feed_url"]))).text
    events = vevents(body)
    listed = await api.sessions(g["id"], **{"from": "2028-01-01", "to": "2029-12-31"})
    listed += await api.sessions(g["id"], **{"from": "2030-01-01", "to": "2031-12-31"})
    assert len(events) == len(listed) > 30
    assert "/j/" not in body and "Ann" not in body and "@example.org" not in body


async def test_feed_reads_the_same_in_three_parsers(api: Api) -> None:
    missing = missing_tools()
    assert not missing, f"run scripts/install-parsers.sh: {missing}"
    c = await circle(api, timezone="Australia/Sydney")
    g = c["group"]["id"]
    # Book Ann on every session of 2028 so her feed spans both DST changes.
    found = await api.sessions(g, **{"from": "2028-01-01", "to": "2028-12-31"})
    for s in found:
        if s["id"] != c["march"]["id"]:
            await api.book(s["id"], c["ann"]["id"])
    await api.ok(
        "PATCH", f"/api/v1/sessions/{found[5]['id']}", json={"local_start": "2028-06-20T18:00:00"}
    )
    await api.ok("PATCH", f"/api/v1/sessions/{found[7]['id']}", json={"status": "cancelled"})
    text = (await api.client.get(path(c["ann"]["feed_url"]))).text
    expected = {
        f"session-{s['id']}@dropin": (s["starts_at"], s["ends_at"])
        for s in await api.sessions(g, **{"from": "2028-01-01", "to": "2028-12-31"})
    }
    for reader in (read_icaljs, read_libical, read_vobject):
        [dump] = reader([text])
        got = {e["uid"]: (_iso(e["start"]), _iso(e["end"])) for e in dump["events"]}
        assert got == expected, reader.__name__


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_member_page_book_and_cancel(api: Api) -> None:
    c = await circle(api)
    page_path = path(c["bea"]["page_url"])
    r = await api.client.get(page_path)
    assert r.status_code == 200
    html = r.text
    assert "Hello Bea" in html and "On the waitlist (number 1)" in html
    assert "Ann" not in html and "@example.org" not in html
    assert "webcal://" in html and "calendar.google.com/calendar/r?cid=webcal%3A%2F%2F" in html
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in html
    # Book April from the page, then cancel it.
    april = c["sessions"][3]
    booked = await api.client.post(f"{page_path}/sessions/{april['id']}/book")
    assert booked.status_code == 303 and booked.headers["location"].endswith("done=booked")
    assert (await api.ok("GET", f"/api/v1/sessions/{april['id']}"))["confirmed_count"] == 1
    again = await api.client.post(f"{page_path}/sessions/{april['id']}/book")
    assert again.headers["location"].endswith("done=already_booked")
    cancelled = await api.client.post(f"{page_path}/sessions/{april['id']}/cancel")
    assert cancelled.headers["location"].endswith("done=cancelled")
    twice = await api.client.post(f"{page_path}/sessions/{april['id']}/cancel")
    assert twice.headers["location"].endswith("done=nothing_to_cancel")
    assert (await api.ok("GET", f"/api/v1/sessions/{april['id']}"))["confirmed_count"] == 0
    # Another group's session cannot be booked from this page.
    other = await circle(api)
    r = await api.client.post(f"{page_path}/sessions/{other['march']['id']}/book")
    assert r.status_code == 404 and "does not work" in r.text
    assert (await api.client.get(page_path[:-2] + "zz")).status_code == 404


async def test_rsvp_links(api: Api) -> None:
    from dropin.services.feeds import LinkMaker
    from dropin.services.member_page import rsvp_url

    c = await circle(api)
    links = LinkMaker(api.settings.secret_key, BASE)
    april = c["sessions"][3]
    ends = datetime.fromisoformat(april["ends_at"].replace("Z", "+00:00"))
    accept = path(rsvp_url(links, april["id"], c["bea"]["id"], "accept", ends))
    decline = path(rsvp_url(links, april["id"], c["bea"]["id"], "decline", ends))
    shown = await api.client.get(accept)
    assert shown.status_code == 200 and "data-autosubmit" in shown.text
    assert '<script src="/static/autosubmit.js"' in shown.text
    # Opening the link (what a mail scanner does) changes nothing; the browser's POST does.
    assert (await api.ok("GET", f"/api/v1/sessions/{april['id']}"))["confirmed_count"] == 0
    done = await api.client.post(accept)
    assert done.status_code == 200 and "booked" in done.text
    again = await api.client.post(accept)
    assert "already have a place" in again.text
    assert (await api.ok("GET", f"/api/v1/sessions/{april['id']}"))["confirmed_count"] == 1
    assert "cancelled" in (await api.client.post(decline)).text
    assert "nothing has changed" in (await api.client.post(decline)).text
    tampered = await api.client.post(accept[:-4] + "AAAA")
    assert tampered.status_code == 404
    past = path(
        rsvp_url(links, april["id"], c["bea"]["id"], "accept", datetime(2020, 1, 1, tzinfo=UTC))
    )
    assert (await api.client.get(past)).status_code == 410
    js = await api.client.get("/static/autosubmit.js")
    assert js.status_code == 200 and "form.submit()" in js.text
