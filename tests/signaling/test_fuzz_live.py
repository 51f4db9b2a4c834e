"""Generated input against the live server: documented refusals only, nothing left behind.

/rooms/ws:

Each example opens a WebSocket to the server (uvicorn on 127.0.0.1), optionally says a valid
``hello`` as a parent (no facilitator is present, so no media starts), sends a few generated
frames (text and binary: junk, objects made of protocol field names, good messages with one
field changed), and closes. Every reply must be a valid server message, every close code a
documented one: never 1011 (a server fault) and never a dropped TCP connection. Afterwards the
hub holds no connection.

The join link routes (``/j/{token}``, ``/info``, ``/room-token``, ``/leave``): junk and
forged tokens get a 4xx with a JSON error, never a 5xx.

Derandomized for CI; DROPIN_FUZZ_EXAMPLES runs more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from dropin.config import Settings
from signaling.protocol import CloseCode, ErrorMessage, parse_server_message
from tests.signaling.test_protocol import GOOD
from tests.signaling.test_protocol_properties import FIELDS, json_values
from tests.signaling.wsclient import LiveServer

T = TypeVar("T")

EXAMPLES = int(os.environ.get("DROPIN_FUZZ_EXAMPLES", "150"))
# Close codes a fuzzing client may see (docs/signaling.md): it closed (1000), or the server
# refused the frames (bad message, token, timeout, size, rate) or took the place back.
ALLOWED = {1000, *(int(c) for c in CloseCode if int(c) >= 4000)}

FUZZ = fuzz_settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

good_frames = st.sampled_from([raw for raw, _ in GOOD])


@st.composite
def changed_frame(draw: st.DrawFn) -> str:
    obj = json.loads(draw(good_frames))
    obj[draw(st.sampled_from(FIELDS))] = draw(json_values)
    return json.dumps(obj)


frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5).map(json.dumps),
    good_frames,
    changed_frame(),
)


class Background:
    """The server on its own event loop in a thread, so hypothesis can drive a sync test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Cancel whatever is left on the loop, then stop it: nothing outlives the test."""

        async def drain() -> None:
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        try:
            self.run(drain(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            assert not self.thread.is_alive(), "the server's loop did not stop"
            self.loop.close()


@pytest.fixture
def background() -> Iterator[Background]:
    bg = Background()
    yield bg
    bg.stop()


@contextlib.contextmanager
def live_server(
    background: Background, settings: Settings, sqlite_url: str
) -> Iterator[LiveServer]:
    """The server on the background loop, for the length of the block."""
    server_cm = LiveServer.on_sqlite(settings, sqlite_url)
    server = background.run(server_cm.__aenter__())
    try:
        yield server
    finally:
        background.run(server_cm.__aexit__(None, None, None))


async def session(url: str, token: str | None, sent: list[str | bytes]) -> list[str]:
    """One connection: hello (if a token), the frames, then close; returns the replies."""
    replies: list[str] = []
    async with asyncio.timeout(10):
        async with websockets.connect(url, max_size=2**20) as ws:
            if token is not None:
                await ws.send(json.dumps({"type": "hello", "protocol": 1, "token": token}))
            for frame in sent:
                try:
                    await ws.send(frame)
                except websockets.ConnectionClosed:
                    break
            try:
                while True:  # what the server says before we go, then a clean close
                    reply = await asyncio.wait_for(ws.recv(), 0.1)
                    replies.append(reply if isinstance(reply, str) else reply.decode())
            except (TimeoutError, websockets.ConnectionClosed):
                pass
            await ws.close()
        code = ws.close_code
    assert code is not None and code in ALLOWED, (code, ws.close_reason, sent)
    return replies


def test_generated_frames_get_documented_answers(
    background: Background, settings: Settings, sqlite_url: str
) -> None:
    with live_server(background, settings, sqlite_url) as server:
        seat = background.run(server.seat(["Sam"]))
        token = background.run(server.token(seat.links["Sam"]))

        @FUZZ
        @given(st.booleans(), st.lists(frames, min_size=1, max_size=4))
        def check(say_hello: bool, sent: list[str | bytes]) -> None:
            replies = asyncio.run(session(server.ws_url, token if say_hello else None, sent))
            for reply in replies:
                message = parse_server_message(reply)  # a valid server message, every one
                if isinstance(message, ErrorMessage):
                    assert len(message.message) <= 120

        check()

        # Nothing is left behind: every connection the examples opened is gone.
        async def connections() -> int:
            return server.hub.stats().get("connections", 0)

        for _ in range(50):
            if background.run(connections()) == 0:
                break
            threading.Event().wait(0.1)
        assert background.run(connections()) == 0, server.hub.stats()


@st.composite
def link_tokens(draw: st.DrawFn, genuine: str) -> str:
    """Junk, or a genuine join token cut, extended or with one character changed."""
    kind = draw(st.sampled_from(["junk", "cut", "extended", "changed", "genuine"]))
    if kind == "junk":
        return draw(st.text(min_size=1, max_size=120))
    if kind == "cut":
        return genuine[: draw(st.integers(1, len(genuine) - 1))]
    if kind == "extended":
        return genuine + draw(st.text(min_size=1, max_size=20))
    if kind == "changed":
        at = draw(st.integers(0, len(genuine) - 1))
        return genuine[:at] + draw(st.characters()) + genuine[at + 1 :]
    return genuine


# What a link route may answer (docs/api.md): never a 5xx.
LINK_STATUSES = {200, 204, 403, 404, 405, 410, 425}


def test_generated_join_links_get_documented_answers(
    background: Background, settings: Settings, sqlite_url: str
) -> None:
    """The join page's routes with broken, forged and genuine tokens: 4xx or success only."""
    with live_server(background, settings, sqlite_url) as server:
        seat = background.run(server.seat(["Sam"]))
        genuine = seat.links["Sam"].removeprefix("/j/")

        @FUZZ
        @given(
            link_tokens(genuine),
            st.sampled_from(
                [("GET", ""), ("GET", "/info"), ("POST", "/room-token"), ("POST", "/leave")]
            ),
        )
        def check(token: str, route: tuple[str, str]) -> None:
            method, suffix = route
            path = "/j/" + quote(token, safe="") + suffix
            response = httpx.request(method, server.url + path, timeout=10)
            assert response.status_code in LINK_STATUSES, (path, response.status_code)
            if suffix and response.status_code >= 400:
                assert "error" in response.json(), (path, response.text)

        check()
