"""The WebSocket endpoint ``/rooms/ws``: one connection per participant (docs/signaling.md).

Each connection has a reader (this module's receive loop: limits, parsing, dispatch, one
message at a time) and a writer task draining an outgoing queue, so the room can queue messages
to any connection without awaiting a slow one. What the server does on each limit:

- no ``hello`` within ``RoomSettings.hello_timeout``: close 4408;
- a frame over 64 KiB: ``error too_large``, close 4413 (uvicorn itself drops frames over its
  16 MiB ``ws_max_size`` with 1009 before this code sees them);
- more than ``RATE_BURST`` messages at once or ``RATE_PER_SECOND`` sustained (an answer to
  the outstanding offer is never counted; a refused one is): the extra messages are refused
  (``error rate_limited``, once per burst) and after ``RATE_STRIKES`` refused in a row the
  connection is closed with 4429;
- ``MAX_BAD_MESSAGES`` malformed messages (``protocol.MALFORMED``): close 4400;
- a client that reads nothing while ``MAX_QUEUED`` messages pile up for it: close 4408.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from signaling.access import RoomClaims
from signaling.hub import RoomHub
from signaling.live import LiveRoom
from signaling.protocol import (
    MALFORMED,
    MAX_BAD_MESSAGES,
    Answer,
    ClientMessage,
    CloseCode,
    ErrorCode,
    ErrorMessage,
    Hello,
    IceCandidate,
    ProtocolError,
    ServerMessage,
    TokenRefresh,
    close_reason,
    dump_server_message,
    parse_client_message,
)

logger = logging.getLogger(__name__)

RATE_BURST = 40
RATE_PER_SECOND = 10.0
RATE_STRIKES = 10
MAX_QUEUED = 512
# After the server closes, how long it waits for the client's closing handshake.
CLOSE_WAIT = 5.0
# A room token is refreshed this long before it expires (or at half its life if shorter).
REFRESH_MARGIN = 120.0
# RFC 6455 "internal error": the client reconnects.
SERVER_ERROR = 1011
# Where the app's lifespan puts the process's RoomHub in its state (``scope["state"]``).
HUB_STATE_KEY = "signaling_hub"


class TokenBucket:
    """Allows ``burst`` messages at once and ``rate`` per second after that. Pure: ``now`` in."""

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = burst
        self.rate = rate
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class _CloseFrame:
    code: int
    reason: str


class ClientConnection:
    """One client's WebSocket as the rooms see it: queue messages, close; never blocks."""

    def __init__(self, websocket: WebSocket) -> None:
        self._id = secrets.token_hex(8)
        self._ws = websocket
        self._queue: deque[str | _CloseFrame] = deque()
        self._wakeup = asyncio.Event()
        self.closing = False
        self.bad_messages = 0
        self.joined: tuple[LiveRoom, RoomClaims] | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._refreshing: asyncio.Future[None] | None = None

    @property
    def id(self) -> str:
        return self._id

    def send(self, message: ServerMessage) -> None:
        """Queue a message; a ``MALFORMED`` error counts against ``MAX_BAD_MESSAGES``."""
        if self.closing:
            return
        if len(self._queue) >= MAX_QUEUED:
            logger.info("connection %s: not reading, closing", self._id)
            self.close(CloseCode.TIMEOUT, close_reason(CloseCode.TIMEOUT))
            return
        self._queue.append(dump_server_message(message))
        self._wakeup.set()
        if isinstance(message, ErrorMessage) and message.code in MALFORMED:
            self.bad_messages += 1
            if self.bad_messages >= MAX_BAD_MESSAGES:
                self.close(CloseCode.BAD_MESSAGE, close_reason(CloseCode.BAD_MESSAGE))

    def close(self, code: int, reason: str) -> None:
        """Close after the messages already queued; anything sent later is dropped."""
        if self.closing:
            return
        self.closing = True
        self.cancel_refresh()
        self._queue.append(_CloseFrame(code, reason))
        self._wakeup.set()

    async def write_loop(self) -> None:
        """Send what is queued, in order, until a close is sent or the client is gone."""
        try:
            while True:
                while not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                item = self._queue.popleft()
                if isinstance(item, _CloseFrame):
                    await self._ws.close(item.code, item.reason)
                    return
                await self._ws.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The client went away (or the socket is already closed): nothing left to send.
            self._queue.clear()

    def schedule_refresh(self, hub: RoomHub, delay: float) -> None:
        """Send a ``token_refresh`` after ``delay`` seconds, and again before that one expires."""
        self.cancel_refresh()
        loop = asyncio.get_running_loop()
        self._refresh = loop.call_later(max(0.0, delay), self._start_refresh, hub)

    def cancel_refresh(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if self._refreshing is not None:
            self._refreshing.cancel()
            self._refreshing = None

    def _start_refresh(self, hub: RoomHub) -> None:
        self._refresh = None
        self._refreshing = asyncio.ensure_future(self._send_refresh(hub))

    async def _send_refresh(self, hub: RoomHub) -> None:
        if self.joined is None or self.closing:
            return
        live, claims = self.joined
        try:
            # Checked against the database again: a member who lost their place (booking
            # cancelled, facilitator replaced, session cancelled) gets no new token.
            fresh = await hub.refresh_token(claims, live.closes_at)
        except Exception:
            logger.exception("connection %s: token refresh failed", self._id)
            fresh = None
        self._refreshing = None
        if fresh is None or self.closing:
            return
        token, seconds = fresh
        self.send(TokenRefresh(token=token, expires_in=seconds))
        self.schedule_refresh(hub, refresh_delay(seconds))


def refresh_delay(lifetime: float) -> float:
    """When to refresh a token that lives ``lifetime`` seconds from now."""
    return max(lifetime / 2, lifetime - REFRESH_MARGIN)


def room_hub(websocket: WebSocket) -> RoomHub | None:
    """The hub the app's lifespan put in its state under :data:`HUB_STATE_KEY`, if any."""
    hub = websocket.scope.get("state", {}).get(HUB_STATE_KEY)
    return hub if isinstance(hub, RoomHub) else None


async def room_socket(websocket: WebSocket) -> None:
    """``/rooms/ws``: serve one participant's connection until it closes."""
    hub = room_hub(websocket)
    await websocket.accept()
    conn = ClientConnection(websocket)
    writer = asyncio.create_task(conn.write_loop(), name=f"ws-writer-{conn.id}")
    try:
        if hub is None:
            conn.send(ErrorMessage(ErrorCode.NO_SUCH_ROOM, "rooms are not enabled", None))
            conn.close(CloseCode.NO_SUCH_ROOM, close_reason(CloseCode.NO_SUCH_ROOM))
        await _serve(websocket, conn, hub)
    except Exception:
        # A bug, or the database failing under hello: never "1000, you left". 1011 tells the
        # client to reconnect, and the grace window keeps its place meanwhile.
        logger.exception("connection %s failed", conn.id)
        conn.close(SERVER_ERROR, "server error")
    finally:
        conn.cancel_refresh()
        if conn.joined is not None:
            conn.joined[0].disconnect(conn)
        if not conn.closing:
            conn.close(CloseCode.NORMAL, "")
        # On timeout wait_for cancels the writer: the client stopped reading.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writer, CLOSE_WAIT)


async def _serve(websocket: WebSocket, conn: ClientConnection, hub: RoomHub | None) -> None:
    loop = asyncio.get_running_loop()
    hello_by = loop.time() + (hub.settings.hello_timeout if hub is not None else 0.0)
    closed_at: float | None = None
    bucket = TokenBucket(RATE_BURST, RATE_PER_SECOND, loop.time())
    strikes = 0
    while True:
        if conn.closing:
            closed_at = closed_at or loop.time()
            timeout: float | None = closed_at + CLOSE_WAIT - loop.time()
        elif conn.joined is None:
            timeout = hello_by - loop.time()
        else:
            timeout = None
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout)
        except TimeoutError:
            if conn.closing:
                return
            conn.close(CloseCode.TIMEOUT, close_reason(CloseCode.TIMEOUT))
            continue
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        if conn.closing or hub is None:
            continue  # waiting for the client's side of the closing handshake
        parsed = _parse(conn, message)
        if parsed is None:
            continue
        # An answer to the outstanding offer is never limited: the server decides how many
        # offers there are (a room where people come and go fast makes many). An answer the
        # room refuses is charged like any other message afterwards.
        if isinstance(parsed, Answer):
            if await _dispatch(conn, hub, parsed) or bucket.take(loop.time()):
                continue
        elif bucket.take(loop.time()):
            strikes = 0
            await _dispatch(conn, hub, parsed)
            continue
        strikes += 1
        if strikes == 1:
            conn.send(ErrorMessage(ErrorCode.RATE_LIMITED, "slow down", parsed.type))
        if strikes >= RATE_STRIKES:
            conn.close(CloseCode.RATE_LIMITED, close_reason(CloseCode.RATE_LIMITED))


def _parse(conn: ClientConnection, message: MutableMapping[str, Any]) -> ClientMessage | None:
    """The frame as a client message, or None after telling the client what was wrong."""
    text = message.get("text")
    if text is None:
        conn.send(ErrorMessage(ErrorCode.BAD_JSON, "send JSON in text frames", None))
        return None
    try:
        return parse_client_message(text)
    except ProtocolError as exc:
        conn.send(ErrorMessage(exc.code, exc.reason, None))
        close = exc.close_code
        if close is not None:
            conn.close(close, close_reason(close))
        return None


async def _dispatch(conn: ClientConnection, hub: RoomHub, parsed: ClientMessage) -> bool:
    """Carry out one message; True only for an answer the room accepted."""
    if isinstance(parsed, Hello):
        if conn.joined is not None:
            conn.send(ErrorMessage(ErrorCode.WRONG_STATE, "already said hello", "hello"))
            return False
        joined = await hub.hello(conn, parsed)
        if joined is not None and not conn.closing:
            conn.joined = (joined.room, joined.claims)
            lifetime = (joined.claims.expires_at - hub.now()).total_seconds()
            conn.schedule_refresh(hub, refresh_delay(lifetime))
        elif joined is not None:
            joined.room.disconnect(conn)
        return False
    if conn.joined is None:
        conn.send(ErrorMessage(ErrorCode.NOT_JOINED, "say hello first", parsed.type))
        return False
    live = conn.joined[0]
    if isinstance(parsed, Answer):
        return await live.answer(conn, parsed)
    if isinstance(parsed, IceCandidate):
        await live.candidate(conn, parsed)
    else:
        live.handle(conn, parsed)
    return False


routes = [WebSocketRoute("/rooms/ws", room_socket)]
