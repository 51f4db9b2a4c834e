"""The one place that touches aiortc's private internals.

aiortc has no public API for forwarding encoded media: its receivers always
reassemble and decode, its senders always (re-)packetize a track's output.
The relay needs three things aiortc does not offer, and this module provides
them by reaching into aiortc 1.16.0, which ``pyproject.toml`` pins:

* a **receive tap**: every RTP packet a receiver accepts (after SRTP, stats,
  NACK generation and RTX unwrapping, all still done by aiortc) is handed to a
  callback *instead of* the jitter buffer, so nothing is ever decoded and audio
  is not held back by aiortc's jitter buffer;
* a **raw send path**: an already-built RTP packet is written to a sender's
  (bundled) DTLS transport, and the sender's RTCP sender-report counters are
  kept true; the sender's own RTP loop is parked on a track that never yields;
* a **feedback hook**: NACK, PLI and FIR that a subscriber sends for a sender
  are routed to the relay instead of being dropped (aiortc's sender only sets
  an encoder flag on PLI and retransmits from a history it never fills here),
  and a PLI can be sent to a publisher through its receiver;
* a **backlog gauge**: the bytes asyncio holds for a subscriber's UDP socket,
  read through aioice's nominated candidate pair;
* a **host address choice**: which local addresses aioice offers as host
  candidates (it offers every interface but loopback and has no option for it).

``check_seam()`` verifies every internal used below exists with the expected
shape; it runs at import so an aiortc upgrade fails loudly at start-up, and
``tests/signaling/test_seam.py`` runs it again (plus a real loopback exchange).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aioice
import aiortc
from aiortc import RTCIceTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)

#: The only aiortc version this module has been checked against.
PINNED_AIORTC_VERSION = "1.16.0"

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

# Name-mangled private attributes used below, kept together so the seam test
# and check_seam() can name exactly what moved.
_RX_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_TX_COUNTERS = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__packet_count",
    "_RTCRtpSender__octet_count",
)

PacketCallback = Callable[[RtpPacket], None]
NackCallback = Callable[[list[int]], None]
KeyframeCallback = Callable[[], None]


class SeamError(RuntimeError):
    """aiortc's internals are not what this module was written against."""


def check_seam() -> None:
    """Raise :class:`SeamError` if aiortc is not the pinned version or moved.

    Checks the version, then the signatures of the private methods used and,
    in aiortc's and aioice's source, the private attributes used.
    """
    if aiortc.__version__ != PINNED_AIORTC_VERSION:
        raise SeamError(
            f"signaling.seam is written against aiortc {PINNED_AIORTC_VERSION}, "
            f"found {aiortc.__version__}: re-check the seam before upgrading"
        )
    expected_methods = {
        RTCRtpReceiver: {
            "_handle_rtp_packet": ["self", "packet", "arrival_time_ms"],
            "_send_rtcp_pli": ["self", "media_ssrc"],
        },
        RTCRtpSender: {
            "_handle_rtcp_packet": ["self", "packet"],
            "send": ["self", "parameters"],
        },
    }
    for cls, methods in expected_methods.items():
        for name, params in methods.items():
            member = getattr(cls, name, None)
            if member is None or list(inspect.signature(member).parameters) != params:
                raise SeamError(f"aiortc {cls.__name__}.{name}{params} moved or changed")
    receiver_src = _source(RTCRtpReceiver._handle_rtp_packet)
    if "self.__jitter_buffer.add(packet)" not in receiver_src:
        raise SeamError("aiortc RTCRtpReceiver no longer feeds its jitter buffer per packet")
    init_src = _source(RTCRtpSender.__init__)
    for mangled in _TX_COUNTERS:
        if "self.__" + mangled.split("__", 1)[1] not in init_src:
            raise SeamError(f"aiortc RTCRtpSender lost {mangled}")
    for attr in ("_codecs", "_headerExtensions"):
        if attr not in _source(RTCRtpTransceiver.__init__):
            raise SeamError(f"aiortc RTCRtpTransceiver lost {attr}")
    for attr in ("_ssrc", "_rtx_ssrc", "_stream_id"):
        if f"self.{attr} =" not in init_src:
            raise SeamError(f"aiortc RTCRtpSender lost {attr}")
    if "self._nominated: dict[int, CandidatePair]" not in _source(aioice.Connection.__init__):
        raise SeamError("aioice Connection lost _nominated")
    if "self._connection" not in _source(RTCIceTransport.__init__):
        raise SeamError("aiortc RTCIceTransport lost _connection")
    if "get_host_addresses(" not in _source(aioice.Connection.gather_candidates):
        raise SeamError("aioice Connection no longer gathers through get_host_addresses")


def use_host_addresses(addresses: tuple[str, ...]) -> None:
    """Offer only ``addresses`` as ICE host candidates, process-wide (empty: aioice's default).

    For a server with several interfaces (offer the public one) and for loopback tests
    (offer 127.0.0.1, which aioice otherwise never offers).
    """
    if not addresses:
        aioice.ice.get_host_addresses = _DEFAULT_HOST_ADDRESSES
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def _source(function: Any) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError) as exc:
        raise SeamError(f"cannot read the source of {function.__qualname__}: {exc}") from exc


check_seam()
_DEFAULT_HOST_ADDRESSES = aioice.ice.get_host_addresses


# --------------------------------------------------------------------------- receive tap


class _TapBuffer:
    """Stands in for a receiver's jitter buffer: hands each packet on, keeps nothing.

    Returning ``(False, None)`` means "no PLI needed, no frame complete", so the
    receiver never queues anything for its decoder thread.
    """

    __slots__ = ("callback",)

    def __init__(self, callback: PacketCallback) -> None:
        self.callback = callback

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self.callback(packet)
        return False, None


def tap_receiver(
    receiver: RTCRtpReceiver,
    callback: PacketCallback,
    after: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Deliver every accepted RTP packet of ``receiver`` to ``callback``, undecoded.

    Call before the receiver starts. RTX is already unwrapped (retransmissions
    arrive with their original sequence number) and empty-payload packets are
    passed too. The callback runs inside aiortc's receive loop: keep it short.
    ``after``, if given, is awaited once aiortc is done with each packet, in
    the same task: the place to send what the callback queued.
    """
    if not hasattr(receiver, _RX_JITTER_BUFFER):
        raise SeamError("RTCRtpReceiver has no jitter buffer to replace")
    setattr(receiver, _RX_JITTER_BUFFER, _TapBuffer(callback))
    if after is not None:
        original = receiver._handle_rtp_packet

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            await original(packet, arrival_time_ms)
            await after()

        setattr(receiver, "_handle_rtp_packet", handle)  # noqa: B010 - an instance override


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the remote publisher behind ``receiver`` for a keyframe (RTCP PLI)."""
    await receiver._send_rtcp_pli(media_ssrc)


# --------------------------------------------------------------------------- send path


class ParkedTrack(MediaStreamTrack):
    """A track whose ``recv()`` never yields, to park a sender's RTP loop.

    Without a track aiortc's sender polls every 20 ms (50 wake-ups a second per
    forwarded stream); with this it sleeps until it is stopped.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> Any:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()


@dataclass(frozen=True, slots=True)
class SendParams:
    """What a negotiated sender needs to put its own RTP on the wire."""

    ssrc: int
    payload_type: int
    clock_rate: int
    rtx_ssrc: int
    rtx_payload_type: int | None
    mid: str | None
    mid_ext_id: int | None
    audio_level_ext_id: int | None


def send_params(transceiver: RTCRtpTransceiver) -> SendParams:
    """Read the negotiated codec, SSRCs and header-extension ids of a transceiver.

    Valid once an answer has been applied; the first codec is the one used.
    """
    codecs = transceiver._codecs
    if not codecs:
        raise SeamError("transceiver has no negotiated codecs")
    main = codecs[0]
    rtx_pt = next(
        (
            c.payloadType
            for c in codecs
            if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == main.payloadType
        ),
        None,
    )
    ext_ids = {e.uri: e.id for e in transceiver._headerExtensions}
    sender = transceiver.sender
    if main.payloadType is None:
        raise SeamError("negotiated codec has no payload type")
    return SendParams(
        ssrc=sender._ssrc,
        payload_type=main.payloadType,
        clock_rate=main.clockRate,
        rtx_ssrc=sender._rtx_ssrc,
        rtx_payload_type=rtx_pt,
        mid=transceiver.mid,
        mid_ext_id=ext_ids.get(MID_URI),
        audio_level_ext_id=ext_ids.get(AUDIO_LEVEL_URI),
    )


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """Set the msid stream id the next offer announces for ``sender``.

    Lets a browser group a publisher's audio and video in one MediaStream.
    """
    sender._stream_id = stream_id


def transport_sender(sender: RTCRtpSender) -> Callable[[bytes], Awaitable[None]]:
    """Return the coroutine function that SRTP-protects and sends raw RTP/RTCP.

    All senders of a BUNDLE peer connection share it. Raises ConnectionError
    while the transport is not connected.
    """
    send: Callable[[bytes], Awaitable[None]] = sender.transport._send_rtp
    return send


def udp_transport(sender: RTCRtpSender) -> Any | None:
    """The asyncio datagram transport ``sender``'s packets leave through, if connected.

    Reads aioice's nominated candidate pair for RTP (component 1).
    """
    pair = sender.transport.transport._connection._nominated.get(1)
    return getattr(getattr(pair, "protocol", None), "transport", None)


def udp_backlog(sender: RTCRtpSender) -> Callable[[], int]:
    """Return a function giving the bytes queued in user space for ``sender``'s socket.

    asyncio buffers UDP datagrams without limit once the kernel's send buffer
    is full; this is how the relay notices a subscriber it cannot keep up with.
    0 before ICE completes.
    """

    def backlog() -> int:
        transport = udp_transport(sender)
        return int(transport.get_write_buffer_size()) if transport is not None else 0

    return backlog


def set_sender_report(
    sender: RTCRtpSender, ntp_time: int, rtp_timestamp: int, packets: int, octets: int
) -> None:
    """Make the sender's next RTCP sender report describe the packets we sent.

    Receivers use sender reports for RTT and audio/video sync; without this
    aiortc would report zero packets and a zero timestamp for forwarded streams.
    ``ntp_time`` and ``rtp_timestamp`` must describe the same instant.
    """
    for name, value in zip(_TX_COUNTERS, (ntp_time, rtp_timestamp, packets, octets), strict=True):
        setattr(sender, name, value)


def intercept_feedback(
    sender: RTCRtpSender,
    on_nack: NackCallback,
    on_keyframe_request: KeyframeCallback,
    after_nack: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Route a subscriber's NACK and PLI/FIR for ``sender`` to the relay.

    Other RTCP (receiver reports, REMB) still reaches aiortc for its stats.
    ``after_nack`` is awaited after ``on_nack`` (to send the retransmissions).
    """
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            on_nack(list(packet.lost))
            if after_nack is not None:
                await after_nack()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            on_keyframe_request()
        else:
            await original(packet)

    setattr(sender, "_handle_rtcp_packet", handle)  # noqa: B010 - an instance override
