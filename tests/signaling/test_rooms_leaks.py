"""200 parents joining and leaving a live room through the real server leave nothing behind.

A facilitator stays in the room with media up while a parent comes in through the waiting
room, negotiates media, and leaves, 200 times (every tenth time the parent's network drops
and they resume before leaving). Afterwards: no extra peer connections, tasks, threads or file
descriptors in the process, the hub holds only the facilitator, and memory is flat.
"""

from __future__ import annotations

import os
import time

import pytest

from dropin.config import Settings
from signaling import ws
from tests.signaling.leaks import open_fds, peer_connections, rss_mib, task_names, threads
from tests.signaling.peers import wait_until
from tests.signaling.wsclient import LiveServer, RoomClient

pytestmark = pytest.mark.usefixtures("loopback")


async def _cycle(server: LiveServer, fran: RoomClient, token: str, *, drop: bool) -> None:
    sam = RoomClient(server.ws_url, "Sam")
    try:
        assert (await sam.enter(token))["type"] == "waiting"
        knock = await fran.next("knock")
        await fran.send({"type": "admit", "participant_id": knock["participant_id"]})
        await sam.next("admitted")
        await wait_until(
            lambda: sam.pc is not None and sam.pc.connectionState == "connected",
            timeout=5,
            what="Sam's media to connect",
        )
        if drop:
            await sam.drop()
            sam = RoomClient(server.ws_url, "Sam")
            assert (await sam.hello(token))["resumed"] is True
            await wait_until(
                lambda: sam.pc is not None and sam.pc.connectionState == "connected",
                timeout=5,
                what="Sam's media to reconnect",
            )
        await sam.send({"type": "leave"})
        assert (await sam.wait_closed()).code == 1000
    finally:
        await sam.close()
    # Fran's page is told each time; keep her inbox from growing with the test.
    await fran.next("participant_left")
    fran.messages.clear()


async def _settled(server: LiveServer) -> None:
    await wait_until(
        lambda: (
            server.hub.stats().get("relay_participants") == 1
            and server.hub.stats().get("connections") == 1
            and server.hub.stats().get("media") == 1
        ),
        timeout=5,
        what="the hub to hold only Fran",
    )
    live = next(iter(server.hub._live.values()))
    await wait_until(
        lambda: all(
            p.negotiation is None or p.negotiation.done() for p in live.relay._participants.values()
        ),
        timeout=5,
        what="renegotiations to finish",
    )
    await wait_until(lambda: server.hub.stats().get("tasks") == 0, timeout=5, what="room tasks")


async def test_join_leave_cycles_through_the_server_leak_nothing(
    settings: Settings, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fran admits a parent per cycle, faster than any facilitator could click on a quick
    # machine: lift the per-socket message rate (tested in test_ws_limits) out of the way.
    monkeypatch.setattr(ws, "RATE_PER_SECOND", 1000.0)
    cycles = int(os.environ.get("DROPIN_LEAK_CYCLES", "200"))
    async with LiveServer.on_sqlite(settings, sqlite_url) as server:
        seat = await server.seat(["Sam"])
        fran = RoomClient(server.ws_url, "Fran")
        try:
            assert (await fran.enter(await server.token(seat.links["Fran"])))["type"] == "admitted"
            token = await server.token(seat.links["Sam"])
            # Warm-up: first use creates lasting things (executor threads, caches).
            await _cycle(server, fran, token, drop=True)
            await _settled(server)
            fds, thread_names, tasks = open_fds(), threads(), task_names()
            pcs = peer_connections()
            rss: list[float] = []
            start = time.monotonic()
            for i in range(cycles):
                if i == cycles // 2:
                    rss.append(rss_mib())
                try:
                    await _cycle(server, fran, token, drop=i % 10 == 9)
                except AssertionError:
                    # What Fran saw tells why a cycle stalled.
                    print(fran.messages, fran.closed, server.hub.stats())
                    raise
            elapsed = time.monotonic() - start
            await _settled(server)
            live = next(iter(server.hub._live.values()))
            # Fran's connection reuses idle m-sections instead of growing one per join.
            fran_pid = fran.participant_id or ""
            assert live.relay.transceiver_count(fran_pid) <= 4
            assert len(live.room) == 1
            assert task_names() == tasks
            assert threads() == thread_names
            assert open_fds() <= fds
            assert peer_connections() == pcs
            grown = rss_mib() - rss[0]
            print(
                f"{cycles} server join/leave cycles in {elapsed:.1f}s "
                f"({elapsed / cycles * 1000:.0f} ms each); "
                f"RSS grew {grown:.1f} MiB over the last {cycles - cycles // 2}"
            )
            if cycles >= 100:
                assert grown < 8, "memory grows with join/leave cycles"
        finally:
            await fran.close()
    assert peer_connections() == 0
