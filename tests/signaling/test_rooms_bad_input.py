"""Bad input on /rooms/ws gets its documented error and close code, and loses nothing.

Against the real server (uvicorn on 127.0.0.1): each case opens a WebSocket, sends what a broken
or hostile client would, and checks the reply and the close code from docs/signaling.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from dropin.config import Settings
from signaling.access import issue_token
from tests.signaling.peers import wait_until
from tests.signaling.wsclient import LiveServer, RoomClient

pytestmark = pytest.mark.usefixtures("loopback")


@pytest.fixture
async def server(settings: Settings, sqlite_url: str) -> AsyncIterator[LiveServer]:
    async with LiveServer.on_sqlite(settings, sqlite_url) as live:
        live.hub.settings = dataclasses.replace(
            live.hub.settings, hello_timeout=0.5, answer_timeout=1.0
        )
        yield live


@pytest.fixture
async def made(server: LiveServer) -> AsyncIterator[list[RoomClient]]:
    clients: list[RoomClient] = []
    yield clients
    await asyncio.gather(*(c.close() for c in clients))
    # Nothing is left behind by any of it.
    await wait_until(lambda: server.hub.stats().get("connections", 0) == 0, timeout=5)


def new(server: LiveServer, made: list[RoomClient], name: str = "Sam", **kw: object) -> RoomClient:
    c = RoomClient(server.ws_url, name, **kw)  # type: ignore[arg-type]
    made.append(c)
    return c


SECRET_CLAIMS = {"iss": "dropin", "aud": "dropin:room", "role": "parent", "jti": "j"}


def hello(token: str, display_name: str = "Sam") -> dict[str, object]:
    return {"type": "hello", "protocol": 1, "token": token, "display_name": display_name}


def forged_none() -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {**SECRET_CLAIMS, "sub": "m", "sid": "s", "iat": now, "exp": now + 600}
    return jwt.encode(claims, key=None, algorithm=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "code", "close"),
    [
        ("{", "bad_json", None),
        (b"\x00binary", "bad_json", None),
        ("[1, 2]", "not_object", None),
        ('{"type": "shout"}', "unknown_type", None),
        # There is no message from one parent to another.
        ('{"type": "private_message", "participant_id": "p1", "text": "hi"}', "unknown_type", None),
        ('{"type": "knock"}', "not_joined", None),
        ('{"type": "hello", "protocol": 1, "display_name": "Sam"}', "missing_field", None),
        (
            '{"type": "hello", "protocol": 1, "token": "t", "display_name": "\\u202e"}',
            "invalid_value",
            None,
        ),
        ('{"type": "hello", "protocol": 2}', "unsupported_version", 4400),
        ("x" * (64 * 1024 + 1), "too_large", 4413),
        (json.dumps(hello("not-a-token")), "invalid_token", 4401),
        (json.dumps(hello(forged_none())), "invalid_token", 4401),
    ],
)
async def test_bad_frames(
    server: LiveServer, made: list[RoomClient], frame: str | bytes, code: str, close: int | None
) -> None:
    c = new(server, made)
    await c.connect()
    await c.send(frame)
    error = await c.next("error")
    assert error["code"] == code
    if close is not None:
        assert (await c.wait_closed()).code == close
    else:
        # The connection survives one bad message.
        await c.send('{"type": "knock"}')
        assert (await c.next("error"))["code"] == "not_joined"
        assert c.closed is None


async def test_expired_and_foreign_tokens(server: LiveServer, made: list[RoomClient]) -> None:
    seat = await server.seat(["Sam"])
    expired = server.direct_token(seat, "Sam", now=datetime.now(UTC) - timedelta(seconds=900))
    c = new(server, made)
    assert (await c.hello(expired))["code"] == "invalid_token"
    assert (await c.wait_closed()).code == 4401
    # Genuine, but for a session that does not exist.
    ghost = issue_token(
        server.settings.secret_key,
        member_id="m" * 32,
        session_id="s" * 32,
        role="parent",
        now=datetime.now(UTC),
    )
    d = new(server, made)
    assert (await d.hello(ghost))["code"] == "no_such_room"
    assert (await d.wait_closed()).code == 4404
    # Signed with another key.
    other = server.direct_token(seat, "Sam", role="facilitator", secret="k" * 48)
    e = new(server, made)
    assert (await e.hello(other))["code"] == "invalid_token"


async def test_ten_refused_messages_close_the_connection(
    server: LiveServer, made: list[RoomClient]
) -> None:
    c = new(server, made)
    await c.connect()
    for _ in range(10):
        await c.send("{")
    assert (await c.wait_closed()).code == 4400
    assert len(c.saw("error")) == 10


async def test_silence_before_hello_times_out(server: LiveServer, made: list[RoomClient]) -> None:
    c = new(server, made)
    await c.connect()
    assert (await c.wait_closed(timeout=3)).code == 4408


async def test_a_flood_is_rate_limited_then_closed(
    server: LiveServer, made: list[RoomClient]
) -> None:
    seat = await server.seat(["Sam"])
    c = new(server, made)
    await c.hello(await server.token(seat.links["Sam"]))
    for _ in range(200):
        await c.send('{"type": "accept_agreement"}')
    assert (await c.next("error"))["code"] == "rate_limited"
    assert (await c.wait_closed()).code == 4429


async def test_protocol_mistakes_after_hello(server: LiveServer, made: list[RoomClient]) -> None:
    seat = await server.seat(["Sam"])
    fran = new(server, made, "Fran")
    await fran.enter(await server.token(seat.links["Fran"]))
    await fran.send(hello(await server.token(seat.links["Fran"])))
    assert (await fran.next("error"))["code"] == "wrong_state"
    sam = new(server, made, answer=False)
    assert (await sam.enter(await server.token(seat.links["Sam"])))["type"] == "waiting"
    # A parent cannot use facilitator commands; a waiting parent has no media to answer for.
    await sam.send({"type": "admit_all"})
    assert (await sam.next("error"))["code"] == "forbidden"
    await sam.send({"type": "answer", "offer_id": 1, "sdp": "v=0\r\n"})
    assert (await sam.next("error"))["code"] == "stale_answer"
    await sam.send({"type": "ice_candidate", "candidate": ""})
    assert (await sam.next("error"))["code"] == "wrong_state"
    knock = await fran.next("knock")
    await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
    offer = await sam.next("offer")
    await sam.send({"type": "answer", "offer_id": offer["offer_id"] + 1, "sdp": "v=0\r\n"})
    assert (await sam.next("error"))["code"] == "stale_answer"
    await sam.send({"type": "answer", "offer_id": offer["offer_id"], "sdp": "v=0\r\nnonsense"})
    assert (await sam.next("error"))["code"] == "bad_sdp"
    await sam.send({"type": "ice_candidate", "candidate": "candidate:garbage", "sdp_mid": "0"})
    assert (await sam.next("error"))["code"] == "invalid_value"
    # And no answer at all: the negotiation times out and the connection closes.
    assert (await sam.next("error", timeout=3))["code"] == "negotiation_timeout"
    assert (await sam.wait_closed()).code == 4408
    # Fran is untouched by all of it.
    assert fran.closed is None


async def test_a_full_room_refuses_a_new_parent(server: LiveServer, made: list[RoomClient]) -> None:
    # Two places. Sam is inside when his booking is cancelled; Kim, promoted from the waitlist
    # to his place, finds the room holding its capacity (Fran, Sam, Alex).
    seat = await server.seat(["Sam", "Alex", "Kim"], capacity=2)
    fran = new(server, made, "Fran")
    await fran.enter(await server.token(seat.links["Fran"]))
    sam, alex = new(server, made, "Sam"), new(server, made, "Alex")
    sam_token = await server.token(seat.links["Sam"])
    await sam.hello(sam_token)
    await alex.hello(await server.token(seat.links["Alex"]))
    await server.ok("DELETE", f"/api/v1/bookings/{seat.bookings['Sam']}")
    assert "Kim" not in seat.links  # waitlisted until now
    kims = await server.link(seat.session_id, seat.members["Kim"])
    assert kims is not None
    kim = new(server, made, "Kim")
    reply = await kim.hello(await server.token(kims))
    assert reply["code"] == "room_full"
    assert (await kim.wait_closed()).code == 4424
    # Sam's token no longer matches his place (his booking is gone): refused, and the join
    # link, exchanged again, says why.
    sam2 = new(server, made, "Sam")
    assert (await sam2.hello(sam_token))["code"] == "invalid_token"
    assert (await sam2.wait_closed()).code == 4401
    again = await server.exchange(seat.links["Sam"])
    assert again.status_code == 403 and again.json()["error"] == "not_booked"


async def test_too_many_candidates_are_refused(server: LiveServer, made: list[RoomClient]) -> None:
    server.hub.settings = dataclasses.replace(server.hub.settings, answer_timeout=15.0)
    seat = await server.seat([])
    fran = new(server, made, "Fran", answer=False)
    await fran.enter(await server.token(seat.links["Fran"]))
    await fran.next("offer")
    for port in range(50):
        candidate = f"candidate:{port} 1 udp 2122260223 127.0.0.1 {40000 + port} typ host"
        await fran.send({"type": "ice_candidate", "candidate": candidate, "sdp_mid": "0"})
        await asyncio.sleep(0.12)  # within the rate limit
    assert not fran.saw("error")
    await fran.send(
        {"type": "ice_candidate", "candidate": "candidate:x 1 udp 1 127.0.0.1 1 typ host"}
    )
    error = await fran.next("error")
    assert error["code"] == "invalid_value" and "too many" in error["message"]


async def test_a_server_error_closes_with_1011_not_1000(
    server: LiveServer, made: list[RoomClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    seat = await server.seat(["Sam"])
    sam = new(server, made)
    await sam.hello(await server.token(seat.links["Sam"]))

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("signaling.live.LiveRoom.handle", broken)
    await sam.send({"type": "accept_agreement"})
    # 1011: the client reconnects (its place is kept), instead of believing it left.
    assert (await sam.wait_closed()).code == 1011


async def test_no_fresh_token_once_the_place_is_gone(
    server: LiveServer, made: list[RoomClient]
) -> None:
    seat = await server.seat(["Sam"])
    short = server.direct_token(seat, "Sam", seconds=3)
    sam = new(server, made)
    assert (await sam.hello(short))["type"] == "welcome"
    await server.ok("DELETE", f"/api/v1/bookings/{seat.bookings['Sam']}")
    await asyncio.sleep(3)
    assert not sam.saw("token_refresh")


async def test_mdns_candidates_and_answers_aiortc_refuses(
    server: LiveServer, made: list[RoomClient]
) -> None:
    server.hub.settings = dataclasses.replace(server.hub.settings, answer_timeout=10.0)
    seat = await server.seat([])
    fran = new(server, made, "Fran", answer=False)
    await fran.enter(await server.token(seat.links["Fran"]))
    offer = await fran.next("offer")
    # A browser's mDNS name (which the server cannot resolve) is ignored at once, not looked up.
    mdns = "candidate:1 1 udp 2122260223 0b1c5c4d-5e6f.local 54321 typ host"
    started = asyncio.get_running_loop().time()
    for _ in range(5):
        await fran.send({"type": "ice_candidate", "candidate": mdns, "sdp_mid": "0"})
    await fran.send({"type": "raise_hand"})  # answered only after the candidates
    await fran.next("participant_updated")
    assert asyncio.get_running_loop().time() - started < 0.5
    assert not fran.saw("error")
    # An answer aiortc refuses after the SDP check passed is bad_sdp, and the offer stays open:
    # a good answer to it still works.
    client_pc = RTCPeerConnection()
    try:
        await client_pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await client_pc.setLocalDescription(await client_pc.createAnswer())
        good = client_pc.localDescription.sdp
        broken = re.sub(r"(?m)^c=IN IP4 .*$", "c=IN IP4", good)
        await fran.send({"type": "answer", "offer_id": offer["offer_id"], "sdp": broken})
        assert (await fran.next("error"))["code"] == "bad_sdp"
        await fran.send({"type": "answer", "offer_id": offer["offer_id"], "sdp": good})
        await wait_until(lambda: client_pc.connectionState == "connected", timeout=10, what="media")
        assert len(fran.saw("error")) == 1
    finally:
        await client_pc.close()
