"""Rooms in a separate server process configured only through DROPIN_* variables.

The same path as production: ``uvicorn dropin.web.asgi:app`` reading its settings from the
environment (media on 127.0.0.1 only, a TURN secret), two participants exchanging media.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import pytest

from dropin.config import Settings
from dropin.store.db import Database
from tests.conftest import SECRET
from tests.servers import serve
from tests.signaling.peers import wait_until
from tests.signaling.wsclient import LiveServer, RoomClient

pytestmark = pytest.mark.usefixtures("loopback")


async def test_a_room_in_its_own_server_process(settings: Settings, sqlite_url: str) -> None:
    env = {
        "DROPIN_DATABASE_URL": sqlite_url,
        "DROPIN_SECRET_KEY": SECRET,
        "DROPIN_MEDIA_ADDRESSES": "127.0.0.1",
        "DROPIN_STUN_URLS": "stun:stun.example.org:3478",
        "DROPIN_TURN_URLS": "turn:turn.example.org:3478?transport=udp",
        "DROPIN_TURN_SECRET": "turn-shared-secret",
        "DROPIN_TURN_TTL": "3600",
    }
    db = Database(sqlite_url)
    fran = sam = None
    try:
        with serve(env) as [url]:
            async with LiveServer.attach(url, settings, db) as server:
                seat = await server.seat(["Sam"])
                fran = RoomClient(server.ws_url, "Fran")
                sam = RoomClient(server.ws_url, "Sam")
                welcome = await fran.hello(await server.token(seat.links["Fran"]))
                stun, turn = welcome["ice_servers"]
                assert stun == {"urls": ["stun:stun.example.org:3478"]}
                expiry, member = turn["username"].split(":")
                assert member == seat.members["Fran"]
                assert 3500 < int(expiry) - time.time() <= 3600
                digest = hmac.new(b"turn-shared-secret", turn["username"].encode(), hashlib.sha1)
                assert base64.b64decode(turn["credential"]) == digest.digest()
                await fran.send({"type": "accept_agreement"})
                await fran.send({"type": "knock", "camera_on": True})
                await fran.next("admitted")
                assert (await sam.enter(await server.token(seat.links["Sam"])))["type"] == "waiting"
                knock = await fran.next("knock")
                await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
                await sam.next("admitted")
                fid, sid = fran.participant_id or "", sam.participant_id or ""
                await wait_until(
                    lambda: sam.received(fid, "video") > 10 and fran.received(sid, "video") > 10,
                    timeout=15,
                    what="video both ways through the server process",
                )
                health = (await server.http.get("/healthz")).json()
                assert health["rooms"] == {"open": 1, "connections": 2}
                await asyncio.gather(fran.close(), sam.close())
    finally:
        for c in (fran, sam):
            if c is not None:
                await c.close()
        await db.dispose()
