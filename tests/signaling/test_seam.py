"""Regression tests for signaling.seam: fail loudly if an aiortc upgrade moves the seam.

Each test names the aiortc 1.16.0 internal it depends on, so a failure says
what to re-check in signaling/seam.py.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.rtp import RtcpPsfbPacket, RtcpRtpfbPacket

from signaling import seam
from tests.signaling.peers import SyntheticVideo, wait_until

pytestmark = pytest.mark.usefixtures("loopback")


def test_aiortc_is_the_pinned_version() -> None:
    import aiortc

    assert aiortc.__version__ == seam.PINNED_AIORTC_VERSION, (
        "aiortc changed version: re-check every private member signaling/seam.py uses"
    )
    seam.check_seam()


def test_private_members_used_by_the_seam_exist() -> None:
    # Receiver: the jitter buffer fed once per packet from _handle_rtp_packet.
    src = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__jitter_buffer.add(packet)" in src
    assert "unwrap_rtx" in src  # RTX is unwrapped before the tap sees the packet
    assert list(inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters) == [
        "self",
        "media_ssrc",
    ]
    # Sender: the counters its sender reports read, and its RTCP entry point.
    init = inspect.getsource(RTCRtpSender.__init__)
    for name in ("__ntp_timestamp", "__rtp_timestamp", "__packet_count", "__octet_count"):
        assert f"self.{name} = 0" in init, name
    assert "self._ssrc = " in init and "self._rtx_ssrc = " in init
    # Without a track the sender polls every 20 ms; ParkedTrack avoids that.
    assert "await asyncio.sleep(0.02)" in inspect.getsource(RTCRtpSender._run_rtp)
    # Transceiver: negotiated codecs and header extensions.
    tinit = inspect.getsource(RTCRtpTransceiver.__init__)
    assert "self._codecs" in tinit and "self._headerExtensions" in tinit


async def _connected_pair() -> tuple[RTCPeerConnection, RTCPeerConnection, Any, Any]:
    """A sends synthetic VP8 to B; returns (a, b, a's transceiver, b's transceiver)."""
    cfg = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    a, b = RTCPeerConnection(cfg), RTCPeerConnection(cfg)
    ta = a.addTransceiver(SyntheticVideo(), direction="sendonly")
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    tb = b.getTransceivers()[0]
    return a, b, ta, tb


async def test_tap_sees_every_packet_and_nothing_is_decoded() -> None:
    a, b, _ta, tb = await _connected_pair()
    packets: list[Any] = []
    after: list[int] = []

    async def flush() -> None:
        after.append(len(packets))

    seam.tap_receiver(tb.receiver, packets.append, flush)
    try:
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await wait_until(lambda: len(packets) >= 20, timeout=5, what="tapped RTP packets")
        assert all(p.payload_type == tb._codecs[0].payloadType for p in packets)
        # The "after" hook runs once per packet, after the tap saw it.
        assert after[:3] == [1, 2, 3]
        # aioice's nominated pair leads to the asyncio transport whose buffer we bound.
        assert hasattr(seam.udp_transport(tb.sender), "get_write_buffer_size")
        assert seam.udp_backlog(tb.sender)() == 0
        # Nothing reached the decoder, so the remote track never yields a frame.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(tb.receiver.track.recv(), 0.3)
    finally:
        await a.close()
        await b.close()


async def test_pli_through_the_receiver_reaches_the_publisher() -> None:
    a, b, ta, tb = await _connected_pair()
    packets: list[Any] = []
    seam.tap_receiver(tb.receiver, packets.append)
    seen: list[Any] = []
    original = ta.sender._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        seen.append(packet)
        await original(packet)

    ta.sender._handle_rtcp_packet = spy
    try:
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await wait_until(lambda: bool(packets), timeout=5, what="first packet")
        await seam.send_pli(tb.receiver, packets[0].ssrc)
        await wait_until(
            lambda: any(isinstance(p, RtcpPsfbPacket) and p.fmt == 1 for p in seen),
            timeout=3,
            what="PLI at the publisher's sender",
        )
    finally:
        await a.close()
        await b.close()


async def test_raw_send_path_and_feedback_hook() -> None:
    """Raw RTP written on a parked sender reaches the peer; its NACK/PLI come back to us."""
    cfg = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    a, b = RTCPeerConnection(cfg), RTCPeerConnection(cfg)
    ta = a.addTransceiver(seam.ParkedTrack("video"), direction="sendonly")
    nacks: list[list[int]] = []
    plis: list[bool] = []
    seam.intercept_feedback(ta.sender, nacks.append, lambda: plis.append(True))
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    tb = b.getTransceivers()[0]
    got: list[Any] = []
    seam.tap_receiver(tb.receiver, got.append)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    try:
        await wait_until(lambda: a.connectionState == "connected", timeout=5, what="connect")
        params = seam.send_params(ta)
        assert params.ssrc == ta.sender._ssrc and params.mid == ta.mid
        send = seam.transport_sender(ta.sender)
        for seq in (100, 101, 105):  # 102-104 "lost": b's receiver NACKs them
            header = bytes([0x80, 0x80 | params.payload_type]) + seq.to_bytes(2, "big")
            await send(
                header
                + (1000 + seq).to_bytes(4, "big")
                + params.ssrc.to_bytes(4, "big")
                + b"\x10\x00\x00\x00"
            )
        await wait_until(lambda: len(got) == 3, timeout=3, what="raw packets at the peer")
        assert [p.sequence_number for p in got] == [100, 101, 105]
        await wait_until(lambda: bool(nacks), timeout=3, what="NACK routed to the hook")
        assert set(nacks[0]) == {102, 103, 104}
        await seam.send_pli(tb.receiver, params.ssrc)
        await wait_until(lambda: bool(plis), timeout=3, what="PLI routed to the hook")
        seam.set_sender_report(ta.sender, 1 << 32, 1234, 3, 12)
        stats = await ta.sender.getStats()
        outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
        assert outbound[0].packetsSent == 3
    finally:
        await a.close()
        await b.close()


def test_rtcp_feedback_classes_unchanged() -> None:
    nack = RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=2)
    assert nack.lost == [] and nack.media_ssrc == 2
    assert RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=2).media_ssrc == 2
