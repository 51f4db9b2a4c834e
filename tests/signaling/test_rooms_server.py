"""The rooms server end to end: uvicorn on 127.0.0.1, WebSocket clients, aiortc peers.

Every test here talks to the real app over real sockets: the join-link exchange over HTTP,
protocol 1 over a WebSocket, media over ICE/DTLS/SRTP on loopback through the forwarding relay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from dropin.config import Settings
from tests.signaling.peers import wait_until
from tests.signaling.wsclient import LiveServer, RoomClient

pytestmark = pytest.mark.usefixtures("loopback")


@pytest.fixture
async def server(settings: Settings, sqlite_url: str) -> AsyncIterator[LiveServer]:
    # Short windows so the grace and failsafe paths run in seconds.
    async with LiveServer.on_sqlite(
        settings, sqlite_url, reconnect_grace=2, facilitator_timeout=2
    ) as live:
        yield live


@pytest.fixture
async def clients(server: LiveServer) -> AsyncIterator[dict[str, RoomClient]]:
    made: dict[str, RoomClient] = {}
    yield made
    await asyncio.gather(*(c.close() for c in made.values()))


def client(server: LiveServer, made: dict[str, RoomClient], name: str, **kw: object) -> RoomClient:
    c = RoomClient(server.ws_url, name, **kw)  # type: ignore[arg-type]
    made[name] = c
    return c


async def test_three_participants_see_and_hear_each_other(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    seat = await server.seat(["Sam", "Alex"])
    fran = client(server, clients, "Fran")
    assert (await fran.enter(await server.token(seat.links["Fran"])))["type"] == "admitted"
    sam, alex = client(server, clients, "Sam"), client(server, clients, "Alex")
    for parent in (sam, alex):
        waiting = await parent.enter(await server.token(seat.links[parent.name]))
        assert waiting["type"] == "waiting"
        knock = await fran.next("knock")
        await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
        await parent.next("admitted")
    everyone = [fran, sam, alex]
    for me in everyone:
        for other in everyone:
            if other is me:
                continue
            assert other.participant_id is not None
            await wait_until(
                lambda me=me, other=other: (
                    me.received(other.participant_id, "video") >= 10
                    and me.received(other.participant_id, "audio") >= 20
                ),
                timeout=15,
                what=f"{me.name} to decode {other.name}'s video and audio",
            )
    assert server.hub.stats()["relay_participants"] == 3


async def _admit(fran: RoomClient, parent: RoomClient, token: str) -> None:
    assert (await parent.enter(token))["type"] == "waiting"
    knock = await fran.next("knock")
    await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
    await parent.next("admitted")


async def _room(
    server: LiveServer,
    made: dict[str, RoomClient],
    parents: list[str],
    *,
    also: tuple[str, ...] = (),
) -> tuple[RoomClient, list[RoomClient], dict[str, str]]:
    """Fran in the room and ``parents`` admitted (``also`` only booked); with the join links."""
    seat = await server.seat([*parents, *also])
    fran = client(server, made, "Fran")
    assert (await fran.enter(await server.token(seat.links["Fran"])))["type"] == "admitted"
    admitted = []
    for name in parents:
        parent = client(server, made, name)
        await _admit(fran, parent, await server.token(seat.links[name]))
        admitted.append(parent)
    return fran, admitted, seat.links


async def test_a_late_joiner_sees_a_first_frame_within_a_second(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam], links = await _room(server, clients, ["Sam"], also=("Alex",))
    assert sam.participant_id and fran.participant_id
    await wait_until(lambda: fran.received(sam.participant_id or "", "video") >= 30, timeout=10)
    alex = client(server, clients, "Alex")
    assert (await alex.enter(await server.token(links["Alex"])))["type"] == "waiting"
    knock = await fran.next("knock")
    start = time.monotonic()
    await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
    await wait_until(
        lambda: (
            alex.received(fran.participant_id or "", "video") > 0
            and alex.received(sam.participant_id or "", "video") > 0
        ),
        timeout=5,
        what="Alex's first frames",
    )
    first = max(alex.first_frame[(p, "video")] for p in (fran.participant_id, sam.participant_id))
    print(f"late joiner: first frame from everyone {1000 * (first - start):.0f} ms after admit")
    assert first - start < 1.0


async def test_parents_wait_for_a_facilitator_even_when_they_arrive_first(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    seat = await server.seat(["Sam", "Alex"])
    sam = client(server, clients, "Sam")
    welcome = await sam.hello(await server.token(seat.links["Sam"]))
    assert welcome["state"] == "lobby" and welcome["room"]["participants"] == []
    await sam.send({"type": "knock"})
    assert (await sam.next("error"))["code"] == "agreement_required"
    await sam.send({"type": "accept_agreement"})
    await sam.send({"type": "knock"})
    assert (await sam.next("waiting"))["position"] == 1
    alex = client(server, clients, "Alex")
    assert (await alex.enter(await server.token(seat.links["Alex"])))["position"] == 2
    # Nobody lets them in until a facilitator arrives; then she sees the line at once.
    await asyncio.sleep(0.3)
    assert not sam.saw("admitted") and not alex.saw("admitted")
    fran = client(server, clients, "Fran")
    assert (await fran.enter(await server.token(seat.links["Fran"])))["type"] == "admitted"
    admitted = fran.saw("admitted")[0]
    assert [w["display_name"] for w in admitted["room"]["waiting"]] == ["Sam", "Alex"]
    # A parent in the waiting room learns their position, never who else waits or is inside.
    assert "Alex" not in str(sam.messages) and "Fran" not in str(sam.messages)
    await fran.send({"type": "admit_all"})
    await sam.next("admitted")
    await alex.next("admitted")
    room = alex.saw("admitted")[0]["room"]
    assert sorted(p["display_name"] for p in room["participants"]) == ["Alex", "Fran", "Sam"]
    assert room["waiting"] == []  # parents never see the waiting list


async def test_facilitator_controls_are_enforced_on_the_server(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam, alex], _ = await _room(server, clients, ["Sam", "Alex"])
    sid, aid = sam.participant_id or "", alex.participant_id or ""
    await wait_until(
        lambda: alex.received(sid, "audio") > 20 and alex.received(sid, "video") > 10, timeout=10
    )
    # Parents cannot moderate, and nobody can moderate a facilitator.
    await sam.send({"type": "mute", "participant_id": aid})
    assert (await sam.next("error"))["code"] == "forbidden"
    await fran.send({"type": "mute", "participant_id": fran.participant_id})
    assert (await fran.next("error"))["code"] == "forbidden"
    await fran.send({"type": "admit", "participant_id": "pNobody"})
    assert (await fran.next("error"))["code"] == "no_such_participant"

    await fran.send({"type": "mute", "participant_id": sid})
    await sam.next("muted_by_facilitator")
    update = await alex.next("participant_updated")
    assert update["participant"]["participant_id"] == sid
    assert update["participant"]["audio_muted"] is True
    # The server stops forwarding Sam's audio, whatever Sam's page keeps sending.
    await asyncio.sleep(0.3)
    heard = alex.received(sid, "audio")
    await asyncio.sleep(1.0)
    assert alex.received(sid, "audio") - heard <= 2
    seen = alex.received(sid, "video")
    await fran.send({"type": "camera_off", "participant_id": sid})
    await sam.next("camera_off_by_facilitator")
    await asyncio.sleep(0.3)
    seen = alex.received(sid, "video")
    await asyncio.sleep(1.0)
    assert alex.received(sid, "video") - seen <= 1
    # A nudge, not a lock: Sam may turn them back on, and media flows again.
    await sam.send({"type": "unmute_self"})
    await sam.send({"type": "camera_self", "on": True})
    await wait_until(
        lambda: alex.received(sid, "audio") > heard + 20 and alex.received(sid, "video") > seen + 5,
        timeout=5,
        what="Sam's media after unmuting",
    )
    # Raise a hand; everyone sees it.
    await alex.send({"type": "raise_hand"})
    await wait_until(
        lambda: any(
            m["participant"] == {**m["participant"], "participant_id": aid, "hand_raised": True}
            for m in fran.saw("participant_updated")
        ),
        timeout=5,
        what="Alex's raised hand on Fran's page",
    )
    # Mute all mutes every parent, not the facilitator.
    await fran.send({"type": "mute_all"})
    await sam.next("muted_by_facilitator")
    await alex.next("muted_by_facilitator")
    # Send back to the waiting room: media stops, Sam waits at the back of the line.
    await fran.send({"type": "send_to_waiting", "participant_id": sid})
    assert (await sam.next("sent_to_waiting"))["position"] == 1
    left = await alex.next("participant_left")
    assert (left["participant_id"], left["reason"]) == (sid, "left")
    assert (await fran.next("participant_left"))["reason"] == "sent_to_waiting"
    await wait_until(lambda: server.hub.stats()["relay_participants"] == 2, timeout=5)
    first_ids = [o["offer_id"] for o in sam.saw("offer")]
    await fran.send({"type": "admit", "participant_id": sid})
    await sam.next("admitted")
    await wait_until(lambda: len(sam.saw("offer")) > len(first_ids), timeout=5, what="offer")
    offer = sam.saw("offer")[len(first_ids)]
    assert offer["fresh"] is True
    # Offer ids never repeat in a room: an old answer can never fit the new offer.
    assert offer["offer_id"] > max(first_ids)


async def test_removal_sticks_for_the_session(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam, alex], links = await _room(server, clients, ["Sam", "Alex"])
    token = await server.token(links["Sam"])  # still valid after the removal
    await fran.send({"type": "remove", "participant_id": sam.participant_id})
    await sam.next("removed")
    assert (await sam.wait_closed()).code == 4403
    assert (await alex.next("participant_left"))["reason"] == "left"
    assert (await fran.next("participant_left"))["reason"] == "removed"
    # The old token, a new connection: refused.
    again = client(server, clients, "Sam again")
    reply = await again.hello(token)
    assert reply["code"] == "removed"
    assert (await again.wait_closed()).code == 4403
    # And no new token either: the removal is in the database.
    refused = await server.exchange(links["Sam"])
    assert refused.status_code == 403 and refused.json()["error"] == "removed"


async def test_leaving_by_link_while_dropped_lets_the_others_know_at_once(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    """The join page's "Leave" while reconnecting: POST /j/{token}/leave, no grace window."""
    fran, [sam, alex], links = await _room(server, clients, ["Sam", "Alex"])
    await sam.drop()
    updated = await fran.next("participant_updated")
    assert updated["participant"]["connected"] is False  # "reconnecting" on Fran's page
    left = await server.http.post(links["Sam"] + "/leave")
    assert left.status_code == 204 and left.content == b""
    assert left.headers["cache-control"] == "no-store"
    gone = await fran.next("participant_left", timeout=2)
    assert gone == {**gone, "participant_id": sam.participant_id, "reason": "left"}
    assert (await alex.next("participant_left", timeout=2))["reason"] == "left"
    assert server.hub.stats()["participants"] == 2
    # Twice is fine; a link that is not genuine is not.
    assert (await server.http.post(links["Sam"] + "/leave")).status_code == 204
    assert (await server.http.post("/j/not-a-link/leave")).status_code == 404
    assert (await server.http.get(links["Sam"] + "/leave")).status_code == 405
    # Coming back means knocking again, as after any deliberate leave.
    again = client(server, clients, "Sam again")
    assert (await again.enter(await server.token(links["Sam"])))["type"] == "waiting"


async def test_a_locked_room_takes_no_new_arrivals(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    seat = await server.seat(["Sam", "Alex", "Kim"])
    fran = client(server, clients, "Fran")
    await fran.enter(await server.token(seat.links["Fran"]))
    sam = client(server, clients, "Sam")
    assert (await sam.enter(await server.token(seat.links["Sam"])))["type"] == "waiting"
    alex = client(server, clients, "Alex")
    await alex.hello(await server.token(seat.links["Alex"]))  # reading the agreement
    await fran.send({"type": "lock"})
    await fran.next("room_locked")
    await alex.send({"type": "accept_agreement"})
    await alex.send({"type": "knock"})
    assert (await alex.next("error"))["code"] == "room_locked"
    assert (await alex.wait_closed()).code == 4423
    kim = client(server, clients, "Kim")
    assert (await kim.hello(await server.token(seat.links["Kim"])))["code"] == "room_locked"
    assert (await kim.wait_closed()).code == 4423
    # Sam was already waiting: still admissible.
    knock = await fran.next("knock")
    await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
    await sam.next("admitted")
    await fran.send({"type": "unlock"})
    await fran.next("room_unlocked")
    kim2 = client(server, clients, "Kim2")
    assert (await kim2.enter(await server.token(seat.links["Kim"])))["type"] == "waiting"


@pytest.mark.parametrize("reason", ["cancelled", "rescheduled"])
async def test_the_organizer_cancelling_or_moving_a_live_session_ends_its_room(
    server: LiveServer, clients: dict[str, RoomClient], reason: str
) -> None:
    fran, [sam], links = await _room(server, clients, ["Sam"])
    [live] = list(server.hub._live.values())
    path = f"/api/v1/sessions/{live.room_id}"
    session = await server.ok("GET", path)
    if reason == "cancelled":
        change, undo = {"status": "cancelled"}, {"status": "scheduled"}
    else:
        later = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        change, undo = {"starts_at": later}, {"starts_at": session["starts_at"]}
    await server.ok("PATCH", path, json=change)
    for c in (fran, sam):
        assert (await c.next("room_ended", timeout=2))["reason"] == reason
        assert (await c.wait_closed()).code == 4410
    await wait_until(lambda: server.hub.stats()["rooms"] == 0, timeout=5)
    # And the link says so: no new room token for a cancelled or not-yet-open session.
    refused = await server.exchange(links["Sam"])
    assert refused.status_code == (410 if reason == "cancelled" else 425)
    # Reinstated, or moved back: the session gets a fresh room (this one was not final).
    await server.ok("PATCH", path, json=undo)
    again = client(server, clients, "Fran again")
    assert (await again.enter(await server.token(links["Fran"])))["type"] == "admitted"


async def test_a_live_room_follows_its_session_s_new_end(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam], _ = await _room(server, clients, ["Sam"])
    [live] = list(server.hub._live.values())
    before = live.closes_at
    await server.ok("PATCH", f"/api/v1/sessions/{live.room_id}", json={"duration_minutes": 90})
    assert live.closes_at == before + timedelta(minutes=30)  # 60 -> 90 minutes
    await server.ok("PATCH", f"/api/v1/sessions/{live.room_id}", json={"duration_minutes": 30})
    assert live.closes_at == before - timedelta(minutes=30)
    assert not fran.saw("room_ended") and not sam.saw("room_ended")


async def test_end_closes_the_room_for_everyone_for_good(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam, alex], links = await _room(server, clients, ["Sam", "Alex"])
    await fran.send({"type": "end"})
    for c in (fran, sam, alex):
        assert (await c.next("room_ended"))["reason"] == "ended_by_facilitator"
        assert (await c.wait_closed()).code == 4410
    await wait_until(lambda: server.hub.stats()["rooms"] == 0, timeout=5)
    late = client(server, clients, "Late")
    reply = await late.hello(await server.token(links["Sam"]))
    assert reply["code"] == "room_ended"
    assert (await late.wait_closed()).code == 4410
    await wait_until(lambda: server.hub.stats().get("relay_participants", 0) == 0, timeout=5)


async def test_failsafe_pauses_media_and_resumes_when_the_facilitator_returns(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam, alex], links = await _room(server, clients, ["Sam", "Alex"])
    aid = alex.participant_id or ""
    await wait_until(lambda: sam.received(aid, "video") > 10, timeout=10)
    await fran.drop()
    lost = await sam.next("facilitator_lost")
    assert 0 < lost["seconds_left"] <= 2
    await alex.next("facilitator_lost")
    # Parents stop receiving each other while no facilitator is there.
    await asyncio.sleep(0.3)
    seen = sam.received(aid, "video")
    await asyncio.sleep(0.6)
    assert sam.received(aid, "video") - seen <= 1
    back = client(server, clients, "Fran back")
    welcome = await back.hello(await server.token(links["Fran"]))
    assert welcome["resumed"] is True and welcome["state"] == "admitted"
    await sam.next("facilitator_back")
    await alex.next("facilitator_back")
    await wait_until(lambda: sam.received(aid, "video") > seen + 10, timeout=5)
    # Past the timeout nothing ends: she came back in time.
    await asyncio.sleep(2.2)
    assert not sam.saw("room_ended")


async def test_failsafe_ends_the_room_when_no_facilitator_returns(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam], _ = await _room(server, clients, ["Sam"])
    await fran.drop()
    await sam.next("facilitator_lost")
    ended = await sam.next("room_ended", timeout=5)
    assert ended["reason"] == "facilitator_lost"
    assert (await sam.wait_closed()).code == 4410
    await wait_until(lambda: server.hub.stats()["rooms"] == 0, timeout=5)


async def test_a_dropped_parent_resumes_without_knocking_and_never_appears_twice(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam, alex], links = await _room(server, clients, ["Sam", "Alex"])
    sid = sam.participant_id or ""
    await wait_until(lambda: alex.received(sid, "video") > 10, timeout=10)
    await sam.drop()
    update = await fran.next("participant_updated")
    assert (update["participant"]["participant_id"], update["participant"]["connected"]) == (
        sid,
        False,
    )
    # Back within the grace window, same token: no knock, same id, media again.
    sam2 = client(server, clients, "Sam2")
    welcome = await sam2.hello(await server.token(links["Sam"]), display_name="Sam")
    assert welcome["resumed"] is True
    assert welcome["participant_id"] == sid and welcome["state"] == "admitted"
    assert (await sam2.next("offer"))["fresh"] is True
    before = alex.received(sid, "video")
    await wait_until(lambda: alex.received(sid, "video") > before + 10, timeout=5)
    await wait_until(lambda: sam2.received(alex.participant_id or "", "video") > 5, timeout=5)
    # A second tab takes over: the older connection is told why and closed.
    tab = client(server, clients, "Sam tab")
    assert (await tab.hello(await server.token(links["Sam"]), display_name="Sam"))["resumed"]
    assert (await sam2.wait_closed()).code == 4409
    names = [p["display_name"] for p in (await _snapshot(server, clients, links))["participants"]]
    assert sorted(names) == ["Alex", "Fran", "Sam"]
    # Gone past the grace window: the others are told, and the place is gone.
    await tab.drop()
    left = await alex.next("participant_left", timeout=5)
    assert left["participant_id"] == sid and left["reason"] == "disconnected"


async def _snapshot(
    server: LiveServer, made: dict[str, RoomClient], links: dict[str, str]
) -> dict[str, object]:
    """The room as a facilitator sees it, from a fresh connection taking over Fran's place."""
    fran2 = client(server, made, "Fran view")
    welcome = await fran2.hello(await server.token(links["Fran"]), display_name="Fran")
    room: dict[str, object] = welcome["room"]
    return room


async def test_room_tokens_are_refreshed_before_they_expire(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    from datetime import UTC, datetime

    from signaling.access import read_token

    seat = await server.seat(["Sam"])
    secret = server.settings.secret_key
    short = server.direct_token(seat, "Sam", seconds=4)
    sam = client(server, clients, "Sam")
    assert (await sam.hello(short))["type"] == "welcome"
    refresh = await sam.next("token_refresh", timeout=4)
    claims = read_token(secret, refresh["token"], datetime.now(UTC))
    assert (claims.member_id, claims.session_id, claims.role) == (
        seat.members["Sam"],
        seat.session_id,
        "parent",
    )
    assert 800 < refresh["expires_in"] <= 900


async def test_media_that_fails_is_restarted_on_the_same_websocket(
    server: LiveServer, clients: dict[str, RoomClient]
) -> None:
    fran, [sam], _ = await _room(server, clients, ["Sam"])
    fid = fran.participant_id or ""
    await wait_until(lambda: sam.received(fid, "video") > 5, timeout=10)
    # Sam's media connection goes away while the WebSocket stays: the server offers afresh.
    offers_before = len(sam.saw("offer"))
    assert sam.pc is not None
    old_pc, sam.pc = sam.pc, None
    await old_pc.close()
    await wait_until(lambda: len(sam.saw("offer")) > offers_before, timeout=10, what="new offer")
    assert sam.saw("offer")[-1]["fresh"] is True
    before = sam.received(fid, "video")
    await wait_until(lambda: sam.received(fid, "video") > before + 5, timeout=10)
    assert sam.closed is None and not sam.saw("error")
