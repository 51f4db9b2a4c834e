"""Drive the real rooms server: uvicorn on 127.0.0.1 serving the app, clients on real sockets.

``LiveServer`` runs ``create_app`` under uvicorn in the test's event loop (so a test can look
at the hub's counters and the process's tasks and descriptors), seeds sessions through the
organizer API over HTTP, and exchanges join links for room tokens. ``RoomClient`` is one
participant: a WebSocket (the ``websockets`` library) speaking protocol 1, plus an aiortc peer
connection that answers the server's offers, publishes synthetic VP8 and Opus, and counts the
frames it decodes from each other participant (mapped through the offers' msid lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
import websockets
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from dropin.config import Settings
from dropin.devredis import free_port
from dropin.services import keys
from dropin.store.db import Database
from dropin.web.app import create_app
from dropin.web.state import AppState
from signaling.access import issue_token
from signaling.hub import RoomHub
from tests.signaling.peers import SyntheticVideo, answer_offer


@dataclass
class Seated:
    """A session seeded for a room test: join links by display name."""

    session_id: str
    links: dict[str, str]
    members: dict[str, str]
    bookings: dict[str, str]


class LiveServer:
    """The app under uvicorn on a loopback port, in this event loop."""

    def __init__(self, settings: Settings, db: Database, port: int | None = None) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Links, the room token's ws_url and the join page's CSP all name this server.
        self.settings = settings if port else dataclasses.replace(settings, public_url=self.url)
        self.ws_url = f"ws://127.0.0.1:{self.port}/rooms/ws"
        self.state: AppState | None = None
        self.http: httpx.AsyncClient
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def run(cls, settings: Settings, db: Database) -> AsyncIterator[LiveServer]:
        server = cls(settings, db)
        await server._start()
        try:
            yield server
        finally:
            await server._stop()

    @classmethod
    @contextlib.asynccontextmanager
    async def on_sqlite(
        cls, settings: Settings, sqlite_url: str, **changes: Any
    ) -> AsyncIterator[LiveServer]:
        """The server on a migrated SQLite file, media on 127.0.0.1, ``changes`` applied."""
        db = Database(sqlite_url)
        try:
            room_settings = dataclasses.replace(settings, media_addresses=("127.0.0.1",), **changes)
            async with cls.run(room_settings, db) as server:
                yield server
        finally:
            await db.dispose()

    @classmethod
    @contextlib.asynccontextmanager
    async def attach(cls, url: str, settings: Settings, db: Database) -> AsyncIterator[LiveServer]:
        """Seed and join through a server running elsewhere (another process) at ``url``."""
        server = cls(settings, db, port=int(url.rsplit(":", 1)[1]))
        await server._connect_api()
        try:
            yield server
        finally:
            await server.http.aclose()

    @property
    def hub(self) -> RoomHub:
        assert self.state is not None and self.state.rooms is not None
        return self.state.rooms

    async def _start(self) -> None:
        app = create_app(self.settings, db=self.db)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        # uvicorn captures SIGINT/SIGTERM while it serves; tests keep pytest's handlers.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        # The lifespan state, as the app sees it (the hub lives there).
        self.state = _lifespan_state(self._server)
        await self._connect_api()

    async def _connect_api(self) -> None:
        key = await keys.create_key(self.db, "tests", now=datetime.now(UTC))
        self.http = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {key.key}"}, timeout=10
        )

    async def _stop(self) -> None:
        await self.http.aclose()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 15)

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        response = await self.http.request(method, path, **kw)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    async def seat(
        self,
        parents: list[str],
        facilitators: tuple[str, ...] = ("Fran",),
        *,
        capacity: int = 10,
        starts_in: timedelta = timedelta(minutes=5),
    ) -> Seated:
        """A session starting soon in a new group, its facilitators set and parents booked."""
        group = await self.ok(
            "POST", "/api/v1/groups", 201, json={"name": "Room test circle", "timezone": "UTC"}
        )
        start = (datetime.now(UTC) + starts_in).strftime("%Y-%m-%dT%H:%M:00")
        await self.ok(
            "POST",
            f"/api/v1/groups/{group['id']}/series",
            201,
            json={
                "title": "Evening drop-in",
                "rrule": "FREQ=DAILY;COUNT=1",
                "first_start": start,
                "duration_minutes": 60,
                "capacity": capacity,
            },
        )
        members: dict[str, str] = {}
        for name in (*facilitators, *parents):
            role = "facilitator" if name in facilitators else "parent"
            member = await self.ok(
                "POST",
                f"/api/v1/groups/{group['id']}/members",
                201,
                json={"display_name": name, "email": f"{name.lower()}@example.org", "role": role},
            )
            members[name] = member["id"]
        sessions = await self.ok("GET", f"/api/v1/groups/{group['id']}/sessions")
        [session] = sessions["sessions"]
        body = {"lead_member_id": members[facilitators[0]]}
        if len(facilitators) > 1:
            body["co_member_id"] = members[facilitators[1]]
        await self.ok("PUT", f"/api/v1/sessions/{session['id']}/facilitators", json=body)
        bookings = {}
        for name in parents:
            booking = await self.ok(
                "POST",
                f"/api/v1/sessions/{session['id']}/bookings",
                201,
                json={"member_id": members[name]},
            )
            bookings[name] = booking["id"]
        links = {}
        for name, member_id in members.items():
            link = await self.link(session["id"], member_id)
            if link is not None:  # None: waitlisted
                links[name] = link
        return Seated(session["id"], links, members, bookings)

    async def link(self, session_id: str, member_id: str) -> str | None:
        """The member's join link path, or None if they have no place."""
        response = await self.http.post(
            f"/api/v1/sessions/{session_id}/join-links", json={"member_id": member_id}
        )
        if response.status_code == 403:
            return None
        assert response.status_code == 201, response.text
        url: str = response.json()["url"]
        return url.removeprefix(self.settings.public_url)

    def direct_token(
        self,
        seat: Seated,
        name: str,
        *,
        role: str = "parent",
        seconds: int = 900,
        now: datetime | None = None,
        secret: str | None = None,
    ) -> str:
        """A room token made directly (any lifetime, any moment, any key), for edge cases."""
        return issue_token(
            secret or self.settings.secret_key,
            member_id=seat.members[name],
            session_id=seat.session_id,
            role=role,
            now=now or datetime.now(UTC),
            seconds=seconds,
        )

    async def exchange(self, link: str) -> httpx.Response:
        """POST the join link's room-token exchange."""
        return await self.http.post(f"{link}/room-token")

    async def token(self, link: str) -> str:
        response = await self.exchange(link)
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token


def _lifespan_state(server: uvicorn.Server) -> AppState:
    state = server.lifespan.state["dropin"]  # type: ignore[attr-defined]
    assert isinstance(state, AppState)
    return state


def msid_map(sdp: str) -> dict[str, str]:
    """mid -> msid stream id (the publisher's participant id) for each m-section that has one."""
    found = {}
    for section in sdp.split("\nm=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.MULTILINE)
        msid = re.search(r"^a=msid:(\S+)", section, re.MULTILINE)
        if mid and msid and msid.group(1) != "-":
            found[mid.group(1)] = msid.group(1)
    return found


@dataclass
class Closed:
    code: int
    reason: str


@dataclass
class RoomClient:
    """One participant: a protocol-1 WebSocket and, once admitted, an aiortc peer connection."""

    ws_url: str
    name: str
    publish: bool = True
    answer: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: Closed | None = None
    pc: RTCPeerConnection | None = None
    frames: dict[tuple[str, str], int] = field(default_factory=dict)
    first_frame: dict[tuple[str, str], float] = field(default_factory=dict)
    offers: int = 0
    participant_id: str | None = None

    def __post_init__(self) -> None:
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._arrived = asyncio.Event()
        self._mid_owner: dict[str, str] = {}
        self._answering = asyncio.Lock()
        self.video = SyntheticVideo() if self.publish else None
        self.audio = AudioStreamTrack() if self.publish else None

    # --- the socket

    async def connect(self) -> None:
        self._ws = await websockets.connect(self.ws_url, max_size=2**20, open_timeout=5)
        self._reader = asyncio.create_task(self._read())

    async def hello(self, token: str, *, display_name: str | None = None) -> dict[str, Any]:
        """Connect, say hello, and return the ``welcome`` (or the error)."""
        if self._ws is None:
            await self.connect()
        await self.send(
            {
                "type": "hello",
                "protocol": 1,
                "token": token,
                "display_name": display_name or self.name,
            }
        )
        reply = await self.next("welcome", "error")
        if reply["type"] == "welcome":
            self.participant_id = reply["participant_id"]
        return reply

    async def enter(self, token: str, *, camera_on: bool = True) -> dict[str, Any]:
        """hello, accept the agreement, knock (camera on unless told); returns the reply."""
        welcome = await self.hello(token)
        assert welcome["type"] == "welcome", welcome
        await self.send({"type": "accept_agreement"})
        await self.send({"type": "knock", "camera_on": camera_on})
        return await self.next("waiting", "admitted", "error")

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        data = message if isinstance(message, str | bytes) else json.dumps(message)
        await self._ws.send(data)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                self.messages.append(message)
                self._arrived.set()
                if message["type"] == "offer":
                    self._spawn(self._on_offer(message))
        except websockets.ConnectionClosed:
            pass
        finally:
            code = self._ws.close_code if self._ws.close_code is not None else 1006
            self.closed = Closed(code, self._ws.close_reason or "")
            self._arrived.set()

    async def next(self, *types: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The first not-yet-taken message of one of ``types`` (consumes it)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.messages):
                if message["type"] in types and not message.get("_taken"):
                    message["_taken"] = True
                    return self.messages[index]
            if self.closed is not None:
                raise AssertionError(f"{self.name}: closed {self.closed} waiting for {types}")
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [m["type"] for m in self.messages]
                raise AssertionError(f"{self.name}: no {types} within {timeout}s; saw {seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def saw(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == type_]

    async def wait_closed(self, timeout: float = 5.0) -> Closed:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while self.closed is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: not closed within {timeout}s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.1)
        return self.closed

    # --- media

    async def _on_offer(self, offer: dict[str, Any]) -> None:
        if not self.answer:
            return
        async with self._answering:
            self.offers += 1
            if offer["fresh"] or self.pc is None:
                await self._new_pc()
            assert self.pc is not None
            self._mid_owner.update(msid_map(offer["sdp"]))
            sdp = await answer_offer(self.pc, offer["sdp"], video=self.video, audio=self.audio)
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.send({"type": "answer", "offer_id": offer["offer_id"], "sdp": sdp})

    async def _new_pc(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._mid_owner = {}
        pc = self.pc

        @pc.on("track")
        def on_track(track: Any) -> None:
            mid = next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)
            self._spawn(self._consume(mid, track))

    async def _consume(self, mid: str, track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                owner = self._mid_owner.get(mid)
                if owner is not None:
                    key = (owner, track.kind)
                    self.frames[key] = self.frames.get(key, 0) + 1
                    self.first_frame.setdefault(key, time.monotonic())

    def received(self, publisher: str, kind: str) -> int:
        """Frames decoded so far from ``publisher``'s ``kind`` (participant id)."""
        return self.frames.get((publisher, kind), 0)

    # --- lifecycle

    def _spawn(self, job: Any) -> None:
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drop(self) -> None:
        """Vanish without ``leave``: the socket and the media just go (a network drop)."""
        if self._ws is not None:
            self._ws.transport.abort()
        await self._close_media()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 5)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        await self._close_media()

    async def _close_media(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
