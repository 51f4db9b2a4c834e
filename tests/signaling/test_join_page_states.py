"""The join page's other states in Chromium: before the room opens, after it ends, a bad link,
no permission for the microphone, waiting-room refusals, a dropped connection, a paused room.

The facilitator here is a Python client (tests/signaling/wsclient.py) where only the parent's
page is under test, to keep the number of browsers small.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser

from dropin.config import Settings
from dropin.services.links import join_url
from dropin.services.rooms import record_removal
from dropin.store.tables import sessions
from tests.signaling.browser import PHONE, Person, chromium, receiving
from tests.signaling.peers import wait_until
from tests.signaling.wsclient import LiveServer, RoomClient, Seated

pytestmark = pytest.mark.usefixtures("loopback")


@pytest.fixture
async def server(settings: Settings, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async with LiveServer.on_sqlite(
        settings, sqlite_url, reconnect_grace=5, facilitator_timeout=30
    ) as live:
        yield live


@pytest.fixture
async def fran(server: LiveServer) -> AsyncIterator[RoomClient]:
    client = RoomClient(server.ws_url, "Fran")
    yield client
    await client.close()


async def test_security_headers(server: LiveServer) -> None:
    seat = await server.seat(["Sam"])
    page = await server.http.get(seat.links["Sam"])
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "camera=(self)" in page.headers["permissions-policy"]
    assert "microphone=(self)" in page.headers["permissions-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " on" not in page.text.split("<body>")[1].split(">")[0]
    info = await server.http.get(seat.links["Sam"] + "/info")
    body = info.json()
    assert body["status"] == "open" and body["display_name"] == "Sam"
    assert "sam@example.org" not in info.text  # never an email, not even one's own
    bad = await server.http.get("/j/not-a-link")
    assert bad.status_code == 404 and "This link does not work" in bad.text


async def test_page_files_are_revalidated_so_an_upgrade_never_mixes_versions(
    server: LiveServer,
) -> None:
    for path in ("/rooms/static/js/app.js", "/rooms/static/join.css", "/static/page.css"):
        first = await server.http.get(path)
        assert first.status_code == 200, path
        assert first.headers["cache-control"] == "no-cache", path
        again = await server.http.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path


async def test_too_early_counts_down(server: LiveServer, browser: Browser) -> None:
    seat = await server.seat(["Sam"], starts_in=timedelta(hours=2))
    sam = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
    await sam.view("notice")
    assert "early" in await sam.page.inner_text("#notice-title")
    countdown = await sam.page.inner_text("#notice-countdown")
    assert countdown.startswith("Opens in 1 h 4") or countdown.startswith("Opens in 1 h 5")
    await sam.screenshot("too-early-360")
    assert sam.errors == []


async def test_an_ended_session_points_to_the_next_one(
    server: LiveServer, browser: Browser
) -> None:
    group = await server.ok(
        "POST", "/api/v1/groups", 201, json={"name": "Circle", "timezone": "UTC"}
    )
    first = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:00")
    await server.ok(
        "POST",
        f"/api/v1/groups/{group['id']}/series",
        201,
        json={
            "title": "Evening drop-in",
            "rrule": "FREQ=WEEKLY;COUNT=3",
            "first_start": first,
            "duration_minutes": 60,
            "capacity": 5,
        },
    )
    sam = await server.ok(
        "POST",
        f"/api/v1/groups/{group['id']}/members",
        201,
        json={"display_name": "Sam Smith", "email": "sam@example.org"},
    )
    listing = await server.ok("GET", f"/api/v1/groups/{group['id']}/sessions")
    past = listing["sessions"][0]
    await server.ok(
        "POST", f"/api/v1/sessions/{past['id']}/bookings", 201, json={"member_id": sam["id"]}
    )
    # Let a week pass for this session: it took place yesterday.
    yesterday = datetime.now(UTC) - timedelta(days=1)
    async with server.db.write() as conn:
        await conn.execute(
            sessions.update()
            .where(sessions.c.id == past["id"])
            .values(starts_at=yesterday, ends_at=yesterday + timedelta(hours=1))
        )
    # A link mailed before it ended (links outlive their session).
    url = join_url(
        server.settings.secret_key,
        server.url,
        past["id"],
        sam["id"],
        yesterday + timedelta(hours=1),
    )
    page = await Person.open(browser, "Sam", url, PHONE)
    await page.page.wait_for_selector("#notice-title:text('This drop-in has ended')")
    assert await page.page.is_visible("#notice-next")
    assert "Evening drop-in" in await page.page.inner_text("#notice-next-title")
    calendar = await page.page.get_attribute("#notice-actions a.primary", "href")
    assert calendar is not None and calendar.startswith("webcal://") and "/feeds/" in calendar
    await page.screenshot("ended-360")


async def test_no_microphone_permission_explains_and_offers_listening(
    server: LiveServer, fran: RoomClient
) -> None:
    seat = await server.seat(["Sam"])
    await fran.enter(await server.token(seat.links["Fran"]))
    async with chromium(("--deny-permission-prompts",), fake_ui=False) as denying:
        sam = await Person.open(denying, "Sam", server.url + seat.links["Sam"], PHONE)
        await sam.view("prejoin")
        await sam.page.wait_for_selector("#permission-problem:not([hidden])")
        text = await sam.page.inner_text("#permission-problem")
        assert "not letting this page use your microphone" in text and "Allow" in text
        await sam.screenshot("permission-denied-360")
        await sam.page.click("#permission-listen")
        await sam.page.check("#agree")
        await sam.page.click("#ask")
        await sam.view("waiting")
        knock = await fran.next("knock")
        await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
        await sam.view("room")
        # Listening only: Fran's audio and video arrive, the mic button says there is none.
        await receiving(sam, [fran.participant_id or ""])
        assert await sam.page.is_disabled("#ctl-mic")


async def test_refusals_at_the_door_say_what_happened(
    server: LiveServer, browser: Browser, fran: RoomClient
) -> None:
    seat = await server.seat(["Sam", "Alex"])
    await fran.enter(await server.token(seat.links["Fran"]))
    sam = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
    await sam.ask(camera=False)
    await sam.view("waiting")
    knock = await fran.next("knock")
    await fran.send({"type": "deny", "participant_id": knock["participant_id"]})
    await sam.page.wait_for_selector("#notice-title:text('could not let you in')")
    assert await sam.page.is_visible("#notice-actions button:text('Ask again')")
    # Asking again works: the page starts over and knocks again.
    await sam.page.click("#notice-actions button:text('Ask again')")
    await sam.ask(camera=False)
    await sam.view("waiting")
    await fran.next("knock")
    # Locked to new arrivals: Alex is told so.
    await fran.send({"type": "lock"})
    await fran.next("room_locked")
    alex = await Person.open(browser, "Alex", server.url + seat.links["Alex"])
    await alex.ask(camera=False)
    await alex.page.wait_for_selector("#notice-title:text('The room is locked')")
    # A second window for Sam takes over; the first says why it stepped aside.
    second = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
    await second.ask(camera=False)
    await second.view("waiting")
    await sam.page.wait_for_selector("#notice-title:text('another window')")


async def test_a_dropped_connection_resumes_and_a_lost_facilitator_pauses(
    server: LiveServer, browser: Browser, fran: RoomClient
) -> None:
    seat = await server.seat(["Sam"])
    fran_token = await server.token(seat.links["Fran"])
    await fran.enter(fran_token)
    sam = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
    await sam.ask()
    knock = await fran.next("knock")
    await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
    await sam.view("room")
    fid = fran.participant_id or ""
    await receiving(sam, [fid])
    # The server drops Sam's WebSocket (as a network change would): the page says it is
    # reconnecting, comes back by itself, and the call goes on.
    live = server.hub.get(seat.session_id)
    assert live is not None
    [conn] = [c for c in live._peers.values() if c.id != fran_conn(live, fid)]
    conn.close(1011, "test drop")
    await sam.page.wait_for_selector("#reconnecting:not([hidden])", timeout=5000)
    await sam.page.wait_for_selector("#reconnecting", state="hidden", timeout=10000)
    await sam.view("room")
    before = (await sam.stats()).get(fid, {}).get("framesDecoded", 0)
    await wait_until(lambda: True, timeout=1)
    await receiving(sam, [fid], frames=int(before) + 10)
    # The facilitator's connection drops: Sam's page says the call is paused.
    await fran.drop()
    await sam.page.wait_for_selector("#room-banner:not([hidden])")
    assert "paused" in await sam.page.inner_text("#room-banner")
    await sam.screenshot("paused-360")
    back = RoomClient(server.ws_url, "Fran")
    try:
        assert (await back.hello(fran_token))["resumed"] is True
        await sam.page.wait_for_selector("#room-banner", state="hidden")
    finally:
        await back.close()
    assert sam.errors == []


async def test_a_session_cancelled_during_the_call_says_so(
    server: LiveServer, browser: Browser, fran: RoomClient
) -> None:
    seat, sam = await sam_in_the_room(server, browser, fran)
    await server.ok("PATCH", f"/api/v1/sessions/{seat.session_id}", json={"status": "cancelled"})
    await sam.page.wait_for_selector("#notice-title:text('This drop-in was cancelled')")
    assert (await sam.state())["micLive"] is False
    assert sam.errors == []
    await sam.close()


async def test_leaving_while_reconnecting_reaches_the_others_at_once(
    server: LiveServer, browser: Browser, fran: RoomClient
) -> None:
    """ "Leave" with no socket to say it on goes by the join link: the others see Sam leave
    now, not "reconnecting" until the grace window (5 s here) runs out."""
    seat, sam = await sam_in_the_room(server, browser, fran)
    fid = fran.participant_id or ""
    sam_pid = await sam.pid()
    # Sam's network goes: the server drops the socket and does not answer the page's
    # reconnecting hello (held until the test ends), so the page stays "Reconnecting…".
    hub = server.hub
    real_hello = hub.hello
    release = asyncio.Event()

    async def held_hello(peer: Any, hello: Any) -> Any:
        await release.wait()
        return await real_hello(peer, hello)

    hub.hello = held_hello  # type: ignore[method-assign]
    try:
        live = hub.get(seat.session_id)
        assert live is not None
        [conn] = [c for c in live._peers.values() if c.id != fran_conn(live, fid)]
        conn.close(1011, "test drop")
        await sam.page.wait_for_selector("#reconnecting:not([hidden])", timeout=5000)
        updated = await fran.next("participant_updated")
        assert updated["participant"]["connected"] is False
        started = time.monotonic()
        await sam.page.click("#ctl-leave")
        await sam.page.wait_for_selector("#notice-title:text('You have left')")
        gone = await fran.next("participant_left", timeout=3)
        assert gone["participant_id"] == sam_pid and gone["reason"] == "left"
        assert time.monotonic() - started < 3  # not the 5 s grace window
        assert sam.errors == []
    finally:
        hub.hello = real_hello  # type: ignore[method-assign]
        release.set()
        await sam.close()


async def sam_in_the_room(
    server: LiveServer, browser: Browser, fran: RoomClient
) -> tuple[Seated, Person]:
    """Fran (a Python client) in the room and Sam's page admitted, sound only."""
    seat = await server.seat(["Sam"])
    await fran.enter(await server.token(seat.links["Fran"]))
    sam = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
    await sam.ask(camera=False)
    knock = await fran.next("knock")
    await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
    await sam.view("room")
    return seat, sam


def fran_conn(live: object, fran_pid: str) -> str | None:
    room = live.room  # type: ignore[attr-defined]
    for conn_id in live._peers:  # type: ignore[attr-defined]
        if room.participant_id_for(conn_id) == fran_pid:
            return str(conn_id)
    return None


async def test_keyboard_only_and_labelled_controls(server: LiveServer, browser: Browser) -> None:
    seat = await server.seat(["Sam"])
    sam = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
    await sam.view("prejoin")
    # Every control has a name a screen reader can read.
    unnamed = await sam.page.evaluate(
        """() => [...document.querySelectorAll('button, input, select')].filter((e) => {
            if (e.closest('[hidden]')) return false;
            const label = e.labels && e.labels.length ? e.labels[0].textContent.trim() : '';
            return !(label || e.getAttribute('aria-label') || e.textContent.trim());
        }).map((e) => e.outerHTML)"""
    )
    assert unnamed == []
    # A name the server would refuse is caught on the page, kindly, before anything is sent.
    await sam.page.fill("#name-input", "Sam\u200b")
    await sam.page.check("#agree")
    await sam.page.click("#ask")
    await sam.page.wait_for_selector("#prejoin-error:not([hidden])")
    assert "character" in await sam.page.inner_text("#prejoin-error")
    await sam.page.fill("#name-input", "Sam")
    await sam.page.uncheck("#agree")
    # Agree and ask with the keyboard alone.
    await sam.page.focus("#agree")
    await sam.page.keyboard.press("Space")
    assert await sam.page.is_checked("#agree")
    await sam.page.keyboard.press("Tab")
    assert await sam.page.evaluate("document.activeElement.id") == "ask"
    await sam.page.keyboard.press("Enter")
    await sam.view("waiting")
    # The new view's heading has focus, so a screen reader announces where we are.
    assert await sam.page.evaluate("document.activeElement.id") == "waiting-title"


@pytest.mark.parametrize(
    ("what", "title", "button"),
    [
        ("cancelled", "This drop-in was cancelled", None),
        ("removed", "You cannot join this drop-in", "My drop-ins"),
        ("booking cancelled", "You do not have a place in this drop-in", "My drop-ins"),
    ],
)
async def test_a_link_that_cannot_join_says_why_before_anything_else(
    server: LiveServer, browser: Browser, what: str, title: str, button: str | None
) -> None:
    """No camera, no microphone, no knock: the page reads the link's state first."""
    seat = await server.seat(["Sam"])
    if what == "cancelled":
        await server.ok("PATCH", f"/api/v1/sessions/{seat.session_id}", json={"status": what})
    elif what == "removed":
        await record_removal(server.db, seat.session_id, seat.members["Sam"], datetime.now(UTC))
    else:
        await server.ok("DELETE", f"/api/v1/bookings/{seat.bookings['Sam']}")
    context = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    # Count the page's asks for a camera or microphone, and every request it makes.
    await context.add_init_script(
        "window.__devices = 0; const gum = navigator.mediaDevices.getUserMedia.bind("
        "navigator.mediaDevices); navigator.mediaDevices.getUserMedia = (c) => "
        "{ window.__devices += 1; return gum(c); };"
    )
    page = await context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    sam = Person("Sam", page)
    try:
        await page.goto(server.url + seat.links["Sam"])
        await page.wait_for_selector(f"#notice-title:text('{title}')")
        if button is not None:
            assert await page.is_visible(f"#notice-actions a:text('{button}')")
        await asyncio.sleep(1)  # anything started late would show by now
        assert await page.evaluate("window.__devices") == 0
        assert not [u for u in requests if "/room-token" in u or "/rooms/ws" in u], requests
        assert sam.errors == []
    finally:
        await context.close()


# Safari's rule, which Chromium never applies to call audio (it always lets a MediaStream
# play): an audio element plays only when play() is called while a tap is being handled.
STRICT_AUTOPLAY = """
(() => {
  let tapping = false;
  window.addEventListener("click", () => { tapping = true; }, true);
  window.addEventListener("click", () => { tapping = false; });
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    if (this instanceof HTMLAudioElement && !tapping) {
      return Promise.reject(new DOMException("needs a tap", "NotAllowedError"));
    }
    return play.call(this);
  };
})();
"""


async def test_a_browser_that_blocks_sound_gets_a_tap_to_hear(
    server: LiveServer, fran: RoomClient, browser: Browser
) -> None:
    """Where the browser refuses to play sound without a tap, the page says so with one large
    button, and the tap starts every participant's audio."""
    seat = await server.seat(["Sam"])
    await fran.enter(await server.token(seat.links["Fran"]))
    context = await browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    await context.add_init_script(STRICT_AUTOPLAY)
    page = await context.new_page()
    sam = Person("Sam", page)
    try:
        await page.goto(server.url + seat.links["Sam"])
        await sam.ask()
        knock = await fran.next("knock")
        await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
        await sam.view("room")
        await receiving(sam, [fran.participant_id or ""])
        await page.wait_for_selector("#sound-on:not([hidden])")
        assert await page.evaluate("[...document.querySelectorAll('audio')].every(a => a.paused)")
        await sam.screenshot("sound-blocked-360")
        await page.click("#sound-on")
        await page.wait_for_selector("#sound-on", state="hidden")
        playing = await sam.until(
            "(() => { const a = [...document.querySelectorAll('audio')];"
            " return a.length > 0 && a.every(x => !x.paused && x.currentTime > 0); })()"
        )
        assert playing is True
        assert sam.errors == []
    finally:
        await context.close()
