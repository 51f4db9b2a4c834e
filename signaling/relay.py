"""A forwarding media relay on aiortc: publishers in, RTP packets out, nothing decoded.

One server-side ``RTCPeerConnection`` per participant (BUNDLE, VP8 and Opus
only). The server is always the offerer: the first offer has a receive-only
audio and video m-section for the participant to publish into, and a
send-only pair for every participant already in; later joins and leaves are
renegotiated by new offers (``on_offer``). Each publisher's RTP packets are
tapped before aiortc's jitter buffer (:mod:`signaling.seam`) and forwarded to
every subscriber with rewritten headers (:mod:`signaling.forward`).

The signaling layer drives it::

    relay = Relay(on_offer=send_offer_over_ws, on_failed=report_failure)
    offer = await relay.add_participant("p1")       # send to the client
    await relay.handle_answer("p1", answer_sdp)     # from the client
    relay.set_publishing("p1", audio=False, video=True)   # facilitator mute
    relay.set_receiving("p2", False)                # failsafe pause
    await relay.remove_participant("p1")
    await relay.close()

``on_offer(pid, sdp)`` must hand the offer to the client and return; the
answer comes back through :meth:`Relay.handle_answer`. There is no trickle
ICE: offers carry the server's candidates, and a client must send its answer
once its ICE gathering is complete (``pc.localDescription`` after
``iceGatheringState == "complete"`` in a browser). An answer that fails the
SDP check raises :class:`~signaling.sdp_check.InvalidSdp` to the caller and
leaves the offer pending; an offer left unanswered for
``RelayConfig.answer_timeout`` drops the participant (``on_failed``), and so
does a media connection that fails or that the client closes (``on_failed``
with ``"connection failed"`` / ``"connection closed"``; the participant stays
in the relay for the caller to restart or remove).
``Relay.slots(pid)`` tells which publisher each m-section (mid) carries; the
msid stream id of a forwarded track is its publisher's id as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from signaling import seam
from signaling.forward import Flusher, KeyframeRequester, OutStream, PacketQueue, vp8_keyframe_start
from signaling.sdp_check import MAX_SDP_BYTES, check_answer

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")

OfferCallback = Callable[[str, str], Awaitable[None]]
FailureCallback = Callable[[str, str], Awaitable[None]]


class RelayError(Exception):
    """A relay call that cannot be honoured (unknown participant, no offer pending...)."""


class AnswerRejected(RelayError):
    """The media stack refused an answer that passed the SDP check; the offer stays pending."""


# Trickled candidates accepted per participant connection: a browser sends a handful; more is
# a client bug or an attempt to make the server send connectivity checks to chosen addresses.
MAX_REMOTE_CANDIDATES = 50


def default_publish_kbps(participants: int) -> int:
    """About 4 Mbit/s of video per subscriber shared by the others, within 250-1200 kbit/s."""
    return max(250, min(1200, 4000 // max(1, participants - 1)))


@dataclass(frozen=True)
class RelayConfig:
    """Tunables; the defaults suit a room of up to a dozen participants."""

    #: How long a participant has to answer an offer before it is dropped.
    answer_timeout: float = 10.0
    #: Minimum seconds between keyframe requests to one publisher track.
    keyframe_interval: float = 0.5
    #: Packets queued per subscriber in one fan-out before it starts losing them.
    queue_limit: int = 1024
    #: Bytes a subscriber's UDP socket may have buffered before it starts losing packets.
    max_backlog: int = 256 * 1024
    #: Largest SDP answer accepted.
    max_sdp_bytes: int = MAX_SDP_BYTES
    #: ICE servers for the server side (none: host candidates only, no outside STUN).
    ice_servers: tuple[RTCIceServer, ...] = ()
    #: Video bitrate cap (kbit/s) announced to each publisher for a room of n
    #: participants, or None for no cap. Downstream has no congestion control,
    #: so the publisher's rate is what every subscriber must absorb.
    publish_kbps: Callable[[int], int | None] = default_publish_kbps


def cap_send_bitrate(sdp: str, mid: str | None, kbps: int) -> str:
    """Add ``b=AS:kbps`` to the m-section ``mid`` of an offer (RFC 4566 section 5.8).

    A browser applies a bandwidth line of the remote description as the cap of
    what it sends in that m-section. The line goes after the section's c= line.
    """
    if mid is None:
        return sdp
    sections = sdp.split("\r\nm=")
    for index in range(1, len(sections)):
        section = sections[index]
        if f"\r\na=mid:{mid}\r\n" in section + "\r\n" and "\r\nb=" not in section:
            head, sep, rest = section.partition("\r\nc=")
            if sep:
                line_end = rest.index("\r\n") if "\r\n" in rest else len(rest)
                sections[index] = f"{head}{sep}{rest[:line_end]}\r\nb=AS:{kbps}{rest[line_end:]}"
    return "\r\nm=".join(sections)


@dataclass(frozen=True)
class SlotInfo:
    """What one forwarding m-section toward a participant currently carries."""

    mid: str | None
    kind: str
    publisher: str | None
    active: bool
    packets: int
    dropped: int


class _Source:
    """One published track (audio or video) of a participant."""

    def __init__(self, relay: Relay, owner: str, kind: str, transceiver: RTCRtpTransceiver) -> None:
        self.owner = owner
        self.kind = kind
        self.video = kind == "video"
        self.transceiver = transceiver
        self.receiver = transceiver.receiver
        self.ssrc: int | None = None
        self.outs: set[OutStream] = set()
        self.muted = False
        self.packets = 0
        self.requester = KeyframeRequester(self._send_pli, relay.config.keyframe_interval)
        self._relay = relay
        seam.tap_receiver(self.receiver, self.on_packet, relay._flusher.flush)

    @property
    def mid(self) -> str | None:
        """The publisher's m-section for this track (set by the first offer)."""
        mid: str | None = self.transceiver.mid
        return mid

    def on_packet(self, packet: Any) -> None:
        """Fan one received RTP packet out to every subscriber (runs per packet: keep lean)."""
        self.ssrc = packet.ssrc
        self.packets += 1
        if self.muted or not self.outs:
            return
        keyframe = self.video and vp8_keyframe_start(packet.payload)
        for out in self.outs:
            out.forward(packet, keyframe)

    def _send_pli(self) -> None:
        if self.video and self.ssrc is not None:
            self._relay._spawn(seam.send_pli(self.receiver, self.ssrc))


class _SendSlot:
    """A send-only m-section toward a participant, reused across publishers."""

    def __init__(self, transceiver: RTCRtpTransceiver, kind: str) -> None:
        self.transceiver = transceiver
        self.kind = kind
        self.source: _Source | None = None
        self.out: OutStream | None = None
        self.subscribed: _Source | None = None

    def request_keyframe(self) -> None:
        if self.source is not None:
            self.source.requester.request()

    def retransmit(self, lost: list[int]) -> None:
        if self.out is not None:
            self.out.retransmit(lost)


@dataclass
class _RelayPeer:
    pid: str
    pc: RTCPeerConnection
    queue: PacketQueue
    sources: dict[str, _Source] = field(default_factory=dict)
    slots: list[_SendSlot] = field(default_factory=list)
    receiving: bool = True
    connected: bool = False
    answered: bool = False
    dirty: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    answer: asyncio.Future[None] | None = None
    negotiation: asyncio.Task[None] | None = None
    candidates: int = 0


def _codec_preferences(kind: str) -> list[Any]:
    wanted = {"audio": ("audio/opus",), "video": ("video/vp8", "video/rtx")}[kind]
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() in wanted]


class Relay:
    """Forwards every participant's audio and video to every other participant."""

    def __init__(
        self,
        *,
        on_offer: OfferCallback,
        on_failed: FailureCallback | None = None,
        config: RelayConfig | None = None,
    ) -> None:
        self.config = config or RelayConfig()
        self._on_offer = on_offer
        self._on_failed = on_failed
        self._participants: dict[str, _RelayPeer] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._flusher = Flusher()
        self._closed = False

    # ----------------------------------------------------------------- public API

    @property
    def participants(self) -> list[str]:
        """Participant ids in join order."""
        return list(self._participants)

    async def add_participant(self, pid: str) -> str:
        """Create the participant's peer connection and return the first offer."""
        if self._closed:
            raise RelayError("relay is closed")
        if pid in self._participants:
            raise RelayError(f"participant {pid} is already in the relay")
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self.config.ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )
        publish = {kind: pc.addTransceiver(kind, direction="recvonly") for kind in KINDS}
        for kind, transceiver in publish.items():
            transceiver.setCodecPreferences(_codec_preferences(kind))
        first = publish["audio"].sender
        queue = PacketQueue(
            seam.transport_sender(first),
            flusher=self._flusher,
            limit=self.config.queue_limit,
            backlog=seam.udp_backlog(first),
            max_backlog=self.config.max_backlog,
        )
        p = _RelayPeer(pid=pid, pc=pc, queue=queue)
        for kind, transceiver in publish.items():
            p.sources[kind] = _Source(self, pid, kind, transceiver)
        self._participants[pid] = p

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self._on_connection_state(p)

        for other in self._participants.values():
            if other is not p and other.answered:
                for source in other.sources.values():
                    self._attach(p, source, kick=False)
        offer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        p.dirty = True
        p.negotiation = asyncio.create_task(self._negotiate(p, offer), name=f"relay-neg-{pid}")
        try:
            return await offer
        except BaseException:
            await self.remove_participant(pid)
            raise

    async def handle_answer(self, pid: str, sdp: str) -> None:
        """Apply a participant's answer to the pending offer.

        Raises :class:`~signaling.sdp_check.InvalidSdp` for an SDP the check refuses,
        :class:`AnswerRejected` when aiortc refuses it (the offer stays pending), and
        :class:`RelayError` when no offer is pending (any more).
        """
        p = self._get(pid)
        async with p.lock:
            if p.answer is None or p.answer.done():
                raise RelayError(f"no offer pending for {pid}")
            answer = p.answer
            local = p.pc.localDescription
            expected = local.sdp.count("\nm=") if local is not None else None
            check_answer(sdp, max_bytes=self.config.max_sdp_bytes, expected_media_sections=expected)
            try:
                await p.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                if answer.done() or self._participants.get(pid) is not p:
                    raise RelayError("the offer was withdrawn") from None
                raise AnswerRejected(f"answer refused: {type(exc).__name__}") from None
            # The participant may have been removed, or the offer timed out, meanwhile.
            if answer.done() or self._participants.get(pid) is not p:
                raise RelayError("the offer was withdrawn")
            self._bind(p)
            answer.set_result(None)
        if not p.answered:
            p.answered = True
            # Everyone already in now gets this participant's tracks.
            for other in self._participants.values():
                if other is not p:
                    for source in p.sources.values():
                        self._attach(other, source)

    async def remove_participant(self, pid: str) -> None:
        """Drop a participant: close its connection, retract its tracks from others."""
        p = self._participants.pop(pid, None)
        if p is None:
            return
        for source in p.sources.values():
            source.outs.clear()
            source.requester.close()
        for other in self._participants.values():
            for slot in other.slots:
                if slot.source is not None and slot.source.owner == pid:
                    self._detach(other, slot)
        for slot in p.slots:
            self._unsubscribe(slot)
        task = p.negotiation
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if p.answer is not None and not p.answer.done():
            p.answer.cancel()
        p.queue.close()
        await p.pc.close()

    async def add_ice_candidate(
        self, pid: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        """Add a candidate the participant trickled (``""``: end of candidates).

        Raises :class:`RelayError` for an unknown participant or a candidate that does not
        parse. Candidates for another m-section land on the bundled transport anyway.
        """
        p = self._get(pid)
        if not candidate:
            await p.pc.addIceCandidate(None)
            return
        if p.candidates >= MAX_REMOTE_CANDIDATES:
            raise RelayError("too many candidates")
        p.candidates += 1
        try:
            # aiortc's parser asserts on a short line: any exception means "does not parse".
            parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except Exception as exc:
            raise RelayError(f"candidate does not parse: {type(exc).__name__}") from None
        if parsed.ip.endswith(".local"):
            # A browser's mDNS name for a LAN address: the server cannot resolve it (and aioice
            # would block for a second trying). The browser's own checks reach the server and
            # are learnt as peer-reflexive candidates instead.
            return
        parsed.sdpMid = sdp_mid
        # With BUNDLE every candidate belongs to the first m-section's transport.
        parsed.sdpMLineIndex = 0 if sdp_mid is None and sdp_mline_index is None else sdp_mline_index
        try:
            await p.pc.addIceCandidate(parsed)
        except Exception as exc:
            raise RelayError(f"candidate refused: {type(exc).__name__}") from None

    def set_publishing(self, pid: str, *, audio: bool, video: bool) -> None:
        """Forward (True) or hold back (False) a participant's audio and video."""
        p = self._get(pid)
        for kind, on in (("audio", audio), ("video", video)):
            source = p.sources[kind]
            if source.muted and on:
                for out in source.outs:
                    out.resync()
                if source.outs:
                    source.requester.request()
            source.muted = not on

    def set_receiving(self, pid: str, receiving: bool) -> None:
        """Pause (False) or resume (True) all forwarding to a participant."""
        p = self._get(pid)
        p.receiving = receiving
        for slot in p.slots:
            self._update(p, slot)

    def slots(self, pid: str) -> list[SlotInfo]:
        """The participant's forwarding m-sections, in m-line order."""
        p = self._get(pid)
        return [
            SlotInfo(
                mid=slot.transceiver.mid,
                kind=slot.kind,
                publisher=slot.source.owner if slot.source else None,
                active=slot.subscribed is not None,
                packets=slot.out.packets if slot.out else 0,
                dropped=slot.out.dropped if slot.out else 0,
            )
            for slot in p.slots
        ]

    def transceiver_count(self, pid: str) -> int:
        """How many m-sections the participant's connection has (it must stay bounded)."""
        return len(self._get(pid).pc.getTransceivers())

    async def close(self) -> None:
        """Remove everyone and wait for background work to end."""
        self._closed = True
        for pid in list(self._participants):
            await self.remove_participant(pid)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----------------------------------------------------------------- negotiation

    async def _negotiate(self, p: _RelayPeer, first: asyncio.Future[str] | None) -> None:
        """Run offer/answer rounds for ``p`` until nothing changed; one at a time."""
        try:
            while p.dirty:
                p.dirty = False
                async with p.lock:
                    offer = await p.pc.createOffer()
                    await p.pc.setLocalDescription(offer)
                    sdp = p.pc.localDescription.sdp
                    kbps = self.config.publish_kbps(len(self._participants))
                    if kbps is not None:
                        sdp = cap_send_bitrate(sdp, p.sources["video"].mid, kbps)
                    p.answer = asyncio.get_running_loop().create_future()
                answer = p.answer
                if first is not None:
                    first.set_result(sdp)
                    first = None
                else:
                    await self._on_offer(p.pid, sdp)
                try:
                    await asyncio.wait_for(asyncio.shield(answer), self.config.answer_timeout)
                except TimeoutError:
                    await self._fail(p, "answer timeout")
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("relay: negotiation with %s failed: %r", p.pid, exc)
            if first is not None and not first.done():
                first.set_exception(RelayError(f"negotiation failed: {exc}"))
            else:
                await self._fail(p, "negotiation failed")

    def _kick(self, p: _RelayPeer) -> None:
        """Schedule a renegotiation of ``p`` (coalesced with one in flight)."""
        if self._closed:
            return  # everyone is leaving: no point re-offering
        p.dirty = True
        if p.negotiation is None or p.negotiation.done():
            p.negotiation = asyncio.create_task(self._negotiate(p, None), name=f"relay-neg-{p.pid}")

    async def _fail(self, p: _RelayPeer, reason: str) -> None:
        logger.info("relay: dropping %s: %s", p.pid, reason)
        if self._on_failed is not None:
            await self._on_failed(p.pid, reason)
        await self.remove_participant(p.pid)

    # ----------------------------------------------------------------- slots and subscriptions

    def _attach(self, p: _RelayPeer, source: _Source, *, kick: bool = True) -> None:
        """Give ``p`` an m-section carrying ``source``, reusing an idle one if any."""
        slot = next((s for s in p.slots if s.kind == source.kind and s.source is None), None)
        if slot is None:
            transceiver = p.pc.addTransceiver(seam.ParkedTrack(source.kind), direction="sendonly")
            transceiver.setCodecPreferences(_codec_preferences(source.kind))
            slot = _SendSlot(transceiver, source.kind)
            seam.intercept_feedback(
                transceiver.sender, slot.retransmit, slot.request_keyframe, self._flusher.flush
            )
            p.slots.append(slot)
        else:
            slot.transceiver.direction = "sendonly"
        slot.source = source
        seam.set_stream_id(slot.transceiver.sender, source.owner)
        self._update(p, slot)
        if kick:
            self._kick(p)

    def _detach(self, p: _RelayPeer, slot: _SendSlot) -> None:
        """Stop forwarding into ``slot`` and mark it inactive (never stop(): see issue 5)."""
        slot.source = None
        self._unsubscribe(slot)
        slot.transceiver.direction = "inactive"
        self._kick(p)

    def _bind(self, p: _RelayPeer) -> None:
        """After an answer: create forwarders for newly negotiated send m-sections."""
        for slot in p.slots:
            transceiver = slot.transceiver
            if slot.out is None and transceiver.currentDirection == "sendonly":
                params = seam.send_params(transceiver)
                sender = transceiver.sender

                def report(ntp: int, ts: int, packets: int, octets: int, s: Any = sender) -> None:
                    seam.set_sender_report(s, ntp, ts, packets, octets)

                slot.out = OutStream(
                    video=slot.kind == "video",
                    ssrc=params.ssrc,
                    payload_type=params.payload_type,
                    clock_rate=params.clock_rate,
                    rtx_ssrc=params.rtx_ssrc,
                    rtx_payload_type=params.rtx_payload_type,
                    mid=params.mid,
                    mid_ext_id=params.mid_ext_id,
                    audio_level_ext_id=params.audio_level_ext_id,
                    queue=p.queue,
                    request_keyframe=slot.request_keyframe,
                    report=report,
                )
            self._update(p, slot)

    def _update(self, p: _RelayPeer, slot: _SendSlot) -> None:
        """Subscribe or unsubscribe ``slot`` so it forwards exactly when it should."""
        want = (
            slot.source
            if (
                slot.out is not None
                and p.connected
                and p.receiving
                and slot.transceiver.currentDirection == "sendonly"
                and slot.transceiver.direction == "sendonly"
            )
            else None
        )
        if want is slot.subscribed:
            return
        self._unsubscribe(slot)
        if want is not None and slot.out is not None:
            slot.out.resync()  # video waits for a keyframe
            want.outs.add(slot.out)
            slot.subscribed = want
            if want.video:
                want.requester.request()

    @staticmethod
    def _unsubscribe(slot: _SendSlot) -> None:
        if slot.subscribed is not None and slot.out is not None:
            slot.subscribed.outs.discard(slot.out)
        slot.subscribed = None

    def _on_connection_state(self, p: _RelayPeer) -> None:
        state = p.pc.connectionState
        p.connected = state == "connected"
        if self._participants.get(p.pid) is not p:
            return
        for slot in p.slots:
            self._update(p, slot)
        # "closed" here means the client side closed it (the relay pops a participant before
        # closing its connection): the participant's media is gone either way.
        if state in ("failed", "closed") and self._on_failed is not None:
            self._spawn(self._on_failed(p.pid, f"connection {state}"))

    # ----------------------------------------------------------------- helpers

    def _get(self, pid: str) -> _RelayPeer:
        try:
            return self._participants[pid]
        except KeyError:
            raise RelayError(f"unknown participant {pid}") from None

    def _spawn(self, job: Awaitable[Any]) -> None:
        """Run a short background job, keeping a reference until it ends."""
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
