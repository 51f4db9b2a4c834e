"""One live room: the room state machine, its media relay and its connections, wired together.

:class:`signaling.room.Room` decides (pure, no I/O); :class:`LiveRoom` carries out what it
decides. Messages go to the connections, media effects to the relay, timers call ``tick``.

Media effects for one participant run strictly in order, one at a time (a per-participant
chain of tasks), because each may await the relay: a resume is "stop the old peer connection,
then start a new one", and the new one must not begin before the old one is gone. Different
participants' media work runs concurrently. Everything else is synchronous and runs between
awaits, so the room itself needs no lock.

Offers: the relay makes them; this module numbers them per participant (``offer_id``) and
sends each to the connection that currently holds the participant. Only the latest offer may
be answered; an answer to any other is ``stale_answer``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from signaling.effects import (
    Close,
    ConnId,
    Effect,
    Ended,
    PauseMedia,
    Removal,
    ResumeMedia,
    Send,
    SetGate,
    StartMedia,
    StopMedia,
)
from signaling.ports import RoomSettings
from signaling.protocol import (
    Answer,
    CloseCode,
    EndReason,
    ErrorCode,
    ErrorMessage,
    IceCandidate,
    IceServer,
    Offer,
    Role,
    RoomCommand,
    ServerMessage,
    close_reason,
)
from signaling.relay import AnswerRejected, Relay, RelayConfig, RelayError
from signaling.room import Room
from signaling.sdp_check import InvalidSdp

logger = logging.getLogger(__name__)

# Close code for a server shutting down: the client reconnects with backoff (RFC 6455).
GOING_AWAY = 1001


class Peer(Protocol):
    """What a live room needs of a connection (``signaling.ws.ClientConnection`` is one)."""

    @property
    def id(self) -> ConnId: ...

    def send(self, message: ServerMessage) -> None:
        """Queue ``message``; never blocks."""

    def close(self, code: int, reason: str) -> None:
        """Queue a close after what is already queued; later sends are dropped."""


@dataclass
class _Media:
    """A participant's media as the live room tracks it."""

    # The connection offers go to; None while stopped.
    conn: ConnId | None = None
    # The one offer that may be answered now.
    pending: int | None = None
    # The last media operation queued for this participant (they run one after another).
    tail: asyncio.Task[None] | None = None
    restarts: deque[float] = field(default_factory=lambda: deque(maxlen=8))


class LiveRoom:
    """One session's room while it runs. Create with :meth:`RoomHub.open`, not directly."""

    def __init__(
        self,
        room: Room,
        *,
        closes_at: datetime,
        settings: RoomSettings,
        on_removal: Callable[[str], Awaitable[None]],
        on_ended: Callable[[LiveRoom], None],
        relay_config: RelayConfig | None = None,
    ) -> None:
        self.room = room
        #: Wall-clock time the room closes (the session's end plus a grace period).
        self.closes_at = closes_at
        self.settings = settings
        self._on_removal = on_removal
        self._on_ended = on_ended
        self._loop = asyncio.get_running_loop()
        config = relay_config or RelayConfig(answer_timeout=settings.answer_timeout)
        self.relay = Relay(on_offer=self._on_offer, on_failed=self._on_failed, config=config)
        self._peers: dict[ConnId, Peer] = {}
        self._media: dict[str, _Media] = {}
        # Offer ids never repeat for a participant in this room, even across media restarts,
        # so an answer to a withdrawn offer can never be taken for the current one.
        self._offer_ids: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tick: asyncio.TimerHandle | None = None
        self._time_up: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None

    # --- what the connection layer calls -------------------------------------------------------

    @property
    def room_id(self) -> str:
        return self.room.room_id

    @property
    def ended(self) -> bool:
        return self.room.ended is not None

    def now(self) -> float:
        """The room's clock: the event loop's monotonic time."""
        return self._loop.time()

    def join(
        self,
        peer: Peer,
        member_id: str,
        role: Role,
        display_name: str,
        ice_servers: tuple[IceServer, ...],
    ) -> bool:
        """``peer`` said hello with a valid token; True if it is now in the room (any state)."""
        self._peers[peer.id] = peer
        effects = self.room.join(
            peer.id, member_id, role, display_name, self.now(), ice_servers=ice_servers
        )
        self._apply(effects)
        if self.room.participant_id_for(peer.id) is None:
            self._peers.pop(peer.id, None)
            return False
        return True

    def handle(self, peer: Peer, command: RoomCommand) -> None:
        """A room command from ``peer``."""
        self._apply(self.room.handle(peer.id, command, self.now()))

    def leave_member(self, member_id: str) -> bool:
        """``member_id`` left by their link, not their WebSocket; True if they were here."""
        effects = self.room.leave_member(member_id, self.now())
        self._apply(effects)
        return bool(effects)

    def disconnect(self, peer: Peer) -> None:
        """``peer``'s WebSocket is gone. Does nothing if the room already let it go."""
        if self._peers.pop(peer.id, None) is not None:
            self._apply(self.room.disconnect(peer.id, self.now()))

    async def answer(self, peer: Peer, message: Answer) -> bool:
        """Hand an answer to the relay, if it answers the offer outstanding on ``peer``.

        True if the relay took it; False after an ``error`` to the client.
        """
        pid = self.room.participant_id_for(peer.id)
        media = self._media.get(pid) if pid is not None else None
        if (
            pid is None
            or media is None
            or media.conn != peer.id
            or media.pending != message.offer_id
        ):
            peer.send(_error(ErrorCode.STALE_ANSWER, "no such offer outstanding", "answer"))
            return False
        try:
            await self.relay.handle_answer(pid, message.sdp)
        except InvalidSdp as exc:
            peer.send(_error(ErrorCode.BAD_SDP, str(exc)[:200], "answer"))
            return False
        except AnswerRejected as exc:
            peer.send(_error(ErrorCode.BAD_SDP, str(exc)[:200], "answer"))
            return False
        except RelayError:
            # The offer was withdrawn meanwhile (media restarted, participant left).
            peer.send(_error(ErrorCode.STALE_ANSWER, "that offer was withdrawn", "answer"))
            return False
        except Exception:
            logger.exception("room %s: answer from %s failed", self.room_id, pid)
            peer.send(_error(ErrorCode.BAD_SDP, "the answer could not be applied", "answer"))
            return False
        if media.pending == message.offer_id:
            media.pending = None
        return True

    async def candidate(self, peer: Peer, message: IceCandidate) -> None:
        """Add a trickled ICE candidate to ``peer``'s media connection."""
        pid = self.room.participant_id_for(peer.id)
        media = self._media.get(pid) if pid is not None else None
        if pid is None or media is None or media.conn != peer.id:
            peer.send(_error(ErrorCode.WRONG_STATE, "no media connection", "ice_candidate"))
            return
        try:
            await self.relay.add_ice_candidate(
                pid, message.candidate, message.sdp_mid, message.sdp_mline_index
            )
        except RelayError as exc:
            peer.send(_error(ErrorCode.INVALID_VALUE, str(exc)[:200], "ice_candidate"))

    def end(self, reason: EndReason) -> None:
        """End the room for everyone from the server side (the session was cancelled...)."""
        self._apply(self.room.terminate(reason, self.now()))

    def schedule_end(self, delay: float) -> None:
        """End the room (``time_up``) after ``delay`` seconds."""
        if self._time_up is not None:
            self._time_up.cancel()
        self._time_up = self._loop.call_later(max(0.0, delay), self._on_time_up)

    async def close(self, *, code: int = GOING_AWAY, reason: str = "server going away") -> None:
        """Shut down without ending the room for the record: close every connection, free all.

        Used when the server stops: clients see 1001 and reconnect to the next server.
        """
        for peer in list(self._peers.values()):
            peer.close(code, reason)
        self._peers.clear()
        if self._closing is not None:
            await asyncio.gather(self._closing, return_exceptions=True)
        await self._shutdown()

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the room has let go of everything (after it ended)."""
        if self._closing is None or self._closing.done():
            callback()
        else:
            self._closing.add_done_callback(lambda _: callback())

    def stats(self) -> dict[str, int]:
        """Counts for health checks and leak tests."""
        return {
            "connections": len(self._peers),
            "participants": len(self.room),
            "media": len(self._media),
            "relay_participants": len(self.relay.participants),
            "tasks": len(self._tasks),
        }

    # --- carrying out effects ------------------------------------------------------------------

    def _apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            match effect:
                case Send(conn=conn, message=message):
                    peer = self._peers.get(conn)
                    if peer is not None:
                        peer.send(message)
                case Close(conn=conn, code=code, reason=reason):
                    # The room has let this connection go; its closing changes nothing more.
                    peer = self._peers.pop(conn, None)
                    if peer is not None:
                        peer.close(code, reason)
                case StartMedia():
                    self._media_op(effect.participant_id, self._start, effect)
                case StopMedia(participant_id=pid):
                    self._media_op(pid, self._stop, pid)
                case SetGate(participant_id=pid, audio=audio, video=video):
                    self._media_op(pid, self._gate, pid, audio, video)
                case PauseMedia(participant_id=pid):
                    self._media_op(pid, self._receive, pid, False)
                case ResumeMedia(participant_id=pid):
                    self._media_op(pid, self._receive, pid, True)
                case Removal(member_id=member_id):
                    self._spawn(self._record_removal(member_id))
                case Ended(reason=reason):
                    logger.info("room %s ended: %s", self.room_id, reason)
                    self._peers.clear()
                    if self._closing is None:
                        self._closing = self._spawn(self._shutdown())
                    self._on_ended(self)
        self._reschedule()

    def _reschedule(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        deadline = self.room.next_deadline()
        if deadline is not None:
            self._tick = self._loop.call_at(deadline, self._on_tick, deadline)

    def _on_tick(self, deadline: float) -> None:
        self._tick = None
        # The loop may fire a hair early; the room must see the deadline reached.
        self._apply(self.room.tick(max(self.now(), deadline)))

    def _on_time_up(self) -> None:
        self._time_up = None
        self._apply(self.room.terminate(EndReason.TIME_UP, self.now()))

    # --- media, one participant at a time ------------------------------------------------------

    def _media_op(self, pid: str, op: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Queue ``op(*args)`` after the participant's earlier media operations."""
        media = self._media.setdefault(pid, _Media())
        previous = media.tail

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await op(*args)
            except RelayError as exc:
                logger.info("room %s: media for %s: %s", self.room_id, pid, exc)
            except Exception:
                logger.exception("room %s: media for %s failed", self.room_id, pid)
            finally:
                current = self._media.get(pid)
                if current is not None and current.tail is task and current.conn is None:
                    # Nothing queued and nothing running: forget until the next start.
                    del self._media[pid]

        task = self._spawn(run())
        media.tail = task

    async def _start(self, effect: StartMedia) -> None:
        pid = effect.participant_id
        media = self._media[pid]
        media.conn = effect.conn
        try:
            offer = await self.relay.add_participant(pid)
        except RelayError:
            if self.ended:
                return
            # No media without an offer: close, so the client reconnects and starts afresh.
            peer = self._peers.get(effect.conn)
            media.conn = None
            if peer is not None:
                peer.send(_error(ErrorCode.NEGOTIATION_TIMEOUT, "media could not start", None))
                peer.close(CloseCode.TIMEOUT, close_reason(CloseCode.TIMEOUT))
            raise
        self.relay.set_publishing(pid, audio=effect.audio, video=effect.video)
        if not effect.receiving:
            self.relay.set_receiving(pid, False)
        self._send_offer(pid, offer, fresh=True)

    async def _stop(self, pid: str) -> None:
        media = self._media[pid]
        media.conn = None
        media.pending = None
        await self.relay.remove_participant(pid)

    async def _gate(self, pid: str, audio: bool, video: bool) -> None:
        if pid in self.relay.participants:
            self.relay.set_publishing(pid, audio=audio, video=video)

    async def _receive(self, pid: str, receiving: bool) -> None:
        if pid in self.relay.participants:
            self.relay.set_receiving(pid, receiving)

    def _send_offer(self, pid: str, sdp: str, *, fresh: bool) -> None:
        media = self._media.get(pid)
        if media is None or media.conn is None:
            return
        peer = self._peers.get(media.conn)
        if peer is None:
            return
        offer_id = self._offer_ids.get(pid, 0) + 1
        self._offer_ids[pid] = offer_id
        media.pending = offer_id
        peer.send(Offer(offer_id=offer_id, sdp=sdp, fresh=fresh))

    async def _on_offer(self, pid: str, sdp: str) -> None:
        """The relay renegotiates ``pid`` (someone came or went)."""
        self._send_offer(pid, sdp, fresh=False)

    async def _on_failed(self, pid: str, reason: str) -> None:
        """The relay gave up on ``pid``'s media. Must not await: the relay is mid-operation."""
        media = self._media.get(pid)
        conn = media.conn if media is not None else None
        if media is None or conn is None or self.ended:
            return
        peer = self._peers.get(conn)
        if peer is None:
            return
        now = time.monotonic()
        recent = [t for t in media.restarts if now - t < 60.0]
        if reason == "answer timeout" or len(recent) >= self.settings.max_media_restarts:
            logger.info("room %s: closing %s: %s", self.room_id, pid, reason)
            media.conn = None
            media.pending = None
            peer.send(_error(ErrorCode.NEGOTIATION_TIMEOUT, "no working media connection", None))
            # The connection's end (room.disconnect) keeps the place for the grace window.
            peer.close(CloseCode.TIMEOUT, close_reason(CloseCode.TIMEOUT))
            return
        logger.info("room %s: restarting media for %s: %s", self.room_id, pid, reason)
        media.restarts.append(now)
        self._apply(self.room.restart_media(conn, self.now()))

    # --- the rest ------------------------------------------------------------------------------

    async def _record_removal(self, member_id: str) -> None:
        try:
            await self._on_removal(member_id)
        except Exception:
            # The room still refuses them; only a restart would forget.
            logger.exception("room %s: could not record a removal", self.room_id)

    async def _shutdown(self) -> None:
        for handle in (self._tick, self._time_up):
            if handle is not None:
                handle.cancel()
        self._tick = self._time_up = None
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current and t is not self._closing]
        media_tasks = [m.tail for m in self._media.values() if m.tail is not None]
        for task in media_tasks:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.relay.close()
        self._media.clear()

    def _spawn(self, job: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _error(code: ErrorCode, message: str, in_reply_to: str | None) -> ErrorMessage:
    return ErrorMessage(code=code, message=message, in_reply_to=in_reply_to)


__all__ = ["GOING_AWAY", "LiveRoom", "Peer"]
