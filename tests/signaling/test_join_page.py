"""The join page in headless Chromium against the real server: parents and a facilitator.

Each participant is a separate browser context on the page served at their join link, with
Chromium's fake camera and microphone. What each page receives is read from its own
``RTCPeerConnection.getStats()`` (``window.__dropin.stats()`` maps it to participants).
Screenshots of every view at 360 and 1280 pixels go to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from dropin.config import Settings
from tests.signaling.browser import DESKTOP, PHONE, Person, receiving
from tests.signaling.wsclient import LiveServer, RoomClient

pytestmark = pytest.mark.usefixtures("loopback")


@pytest.fixture
async def server(settings: Settings, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async with LiveServer.on_sqlite(settings, sqlite_url) as live:
        yield live


async def grows(person: Person, pid: str) -> None:
    """Video frames and audio samples from ``pid`` keep arriving on ``person``'s page."""
    first = (await receiving(person, [pid]))[pid]
    await asyncio.sleep(1.0)
    later = (await person.stats())[pid]
    assert later["framesDecoded"] > first["framesDecoded"], (person.name, first, later)
    assert later["totalSamplesReceived"] > first["totalSamplesReceived"], (
        person.name,
        first,
        later,
    )


async def test_a_drop_in_in_the_browser(server: LiveServer, browser: Browser) -> None:
    seat = await server.seat(["Sam", "Alex"])
    fran = await Person.open(browser, "Fran", server.url + seat.links["Fran"])
    sam = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
    alex = await Person.open(browser, "Alex", server.url + seat.links["Alex"])

    await fran.view("prejoin")
    await fran.screenshot("prejoin-1280")
    await sam.view("prejoin")
    assert await sam.page.input_value("#name-input") == "Sam"
    assert await sam.page.is_disabled("#ask")  # the agreement comes first
    await sam.screenshot("prejoin-360")
    await fran.ask()
    await fran.view("room")

    # Parents wait until the facilitator lets them in.
    await sam.ask()
    await sam.view("waiting")
    await sam.page.wait_for_selector("#waiting-position:text('next in line')")
    # Nobody sees or hears a waiting parent: the camera they chose and their microphone rest
    # (the browser's indicators off) until they are admitted.
    assert (await sam.state())["cameraLive"] is False
    assert (await sam.state())["micLive"] is False
    await sam.screenshot("waiting-360")
    await alex.ask()
    await alex.view("waiting")
    await alex.page.wait_for_selector("#waiting-position:text('number 2')")
    await alex.screenshot("waiting-1280")
    await fran.page.wait_for_selector("#waiting-list li:has-text('Alex')")
    await fran.screenshot("facilitator-waiting-1280")
    await fran.page.click("#waiting-list li:has-text('Sam') button:text('Admit')")
    await sam.view("room")
    # Screen readers hear it: the facilitator's live region says who came in (it clears
    # itself after 8 s, so this comes first).
    await fran.until(
        "document.getElementById('announcer').textContent.includes('Sam joined')", timeout=3
    )
    await sam.until("window.__dropin.state().cameraLive && window.__dropin.state().micLive")
    # ...and Fran hears the microphone Sam's page opened again (sound, not silence).
    sam_pid = await sam.pid()
    heard = await fran.until(
        f"window.__dropin.stats().then(s => (s['{sam_pid}'] || {{}}).audioEnergy || 0)"
    )
    assert heard > 0
    await fran.page.click("#admit-all")
    await alex.view("room")

    # Everyone decodes everyone else's video and receives their audio.
    people = [fran, sam, alex]
    pids = {p.name: await p.pid() for p in people}
    for me in people:
        for other in people:
            if other is not me:
                await grows(me, pids[other.name])
    await sam.screenshot("room-360")
    await alex.screenshot("room-1280")
    await fran.screenshot("facilitator-room-1280")
    await fran.page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await fran.screenshot("facilitator-room-360")
    await fran.page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]

    # The facilitator mutes Sam: it shows on the others' tiles and on Sam's own controls.
    sam_tile = f"li.tile[data-pid='{pids['Sam']}']"
    await fran.page.click(f"{sam_tile} .host-actions button")
    await fran.page.click(f"{sam_tile} .tile-menu button:text('Mute Sam')")
    await alex.page.wait_for_selector(f"{sam_tile} .mic-off:not([hidden])")
    await fran.page.wait_for_selector(f"{sam_tile} .mic-off:not([hidden])")
    await sam.page.wait_for_selector("#ctl-mic .label:text('Unmute')")

    # A reload puts Alex straight back in the room, without knocking again.
    await alex.page.reload()
    await alex.view("room")
    assert (await alex.pid()) == pids["Alex"]
    await grows(alex, pids["Fran"])
    assert (await fran.state())["waiting"] == []
    assert not await fran.page.is_visible("#waiting-list li:has-text('Alex')")

    # Removal reaches Sam's page; Sam's tile goes from the others'.
    await fran.page.click(f"{sam_tile} .host-actions button")
    await fran.page.click(f"{sam_tile} .tile-menu button:text('Remove Sam…')")
    await fran.page.click(f"{sam_tile} .tile-menu button:text('Yes, remove')")
    await sam.page.wait_for_selector("#notice-title:text('removed')")
    await alex.page.wait_for_selector(sam_tile, state="detached")

    # Ending reaches every page.
    await fran.page.click("#end")
    await fran.page.click("#end-yes")
    for person in (fran, alex):
        await person.page.wait_for_selector("#notice-title:text('This drop-in has ended')")
    for person in people:
        assert person.errors == [], (person.name, person.errors)


async def test_what_a_page_sends_shrinks_as_the_room_grows(
    server: LiveServer, browser: Browser
) -> None:
    """Capture size and bitrate cap follow the room: 640x360 at up to 1.2 Mbit/s for three
    people; 320x180 at 1 Mbit/s for five (media.js sendScale and sendKbps); back up when
    people leave. Read from the page's camera settings and sender parameters."""
    parents = ["Sam", "Alex", "Kim", "Lee"]
    seat = await server.seat(parents, facilitators=("Fran",), capacity=5)
    fran = RoomClient(server.ws_url, "Fran", publish=False)
    others: list[RoomClient] = []
    sam: Person | None = None
    try:
        assert (await fran.enter(await server.token(seat.links["Fran"])))["type"] == "admitted"
        sam = await Person.open(browser, "Sam", server.url + seat.links["Sam"], PHONE)
        await sam.ask()
        knock = await fran.next("knock")
        await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
        await sam.view("room")

        async def sending(width: int, height: int, bitrate: int) -> None:
            """The camera captures at this size and the sender is capped at this bitrate
            (what the encoder then sends also follows the bandwidth estimate)."""
            assert sam is not None
            wanted = {
                "captureWidth": width,
                "captureHeight": height,
                "scaleDown": 1,
                "maxBitrate": bitrate,
            }
            deadline = time.monotonic() + 10
            while True:
                sent = (await sam.stats()).get("-sent", {})
                if {k: sent.get(k) for k in wanted} == wanted:
                    return
                assert time.monotonic() < deadline, (wanted, sent)
                await asyncio.sleep(0.2)

        await sending(640, 360, 1_200_000)  # two people
        for name in parents[1:]:
            parent = RoomClient(server.ws_url, name, publish=False)
            others.append(parent)
            assert (await parent.enter(await server.token(seat.links[name])))["type"] == "waiting"
            knock = await fran.next("knock")
            await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
            await parent.next("admitted")
        await sending(320, 180, 1_000_000)  # five people
        for parent in others[1:]:
            await parent.send({"type": "leave"})
            await parent.wait_closed()
        await sending(640, 360, 1_200_000)  # three again
        assert sam.errors == []
    finally:
        for client in [*others, fran]:
            await client.close()
        if sam is not None:
            await sam.close()
