"""Pure RTP forwarding: keyframe detection, header rewriting, gaps, NACK answers."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest

from signaling.forward import (
    Flusher,
    KeyframeRequester,
    OutStream,
    PacketQueue,
    extension_block,
    vp8_keyframe_start,
)

# VP8 descriptors as aiortc and Chromium write them: X=1, I=1 with a 15-bit picture id.
KEY_START = bytes([0x90, 0x80, 0x80, 0x01, 0x10])  # S=1 PID=0, then P=0: keyframe
DELTA_START = bytes([0x90, 0x80, 0x80, 0x02, 0x11])  # P=1: inter frame
CONTINUATION = bytes([0x80, 0x80, 0x80, 0x01, 0x10])  # S=0


@dataclass
class Pkt:
    sequence_number: int
    timestamp: int
    payload: bytes
    marker: int = 0
    extensions: Any = field(default=None)


def test_vp8_keyframe_detection() -> None:
    assert vp8_keyframe_start(KEY_START)
    assert not vp8_keyframe_start(DELTA_START)
    assert not vp8_keyframe_start(CONTINUATION)
    assert vp8_keyframe_start(bytes([0x10, 0x00]))  # no extension bytes at all
    assert not vp8_keyframe_start(bytes([0x11, 0x00]))  # partition 1
    assert not vp8_keyframe_start(b"\x90")  # truncated


def test_extension_block_is_one_byte_form_padded() -> None:
    block = extension_block([(1, b"3")])
    assert block == b"\xbe\xde\x00\x01" + bytes([0x10]) + b"3" + b"\x00\x00"
    assert extension_block([]) == b""


class _Sink:
    def __init__(self, limit: int = 100) -> None:
        self.sent: list[bytes] = []
        self.limit = limit

    def push(self, data: bytes, stream: object = None) -> bool:
        if len(self.sent) >= self.limit:
            return False
        self.sent.append(data)
        return True


def _stream(sink: _Sink, *, video: bool = True, keyframes: list[bool] | None = None) -> OutStream:
    requests = keyframes if keyframes is not None else []
    return OutStream(
        video=video,
        ssrc=0xABCD,
        payload_type=96,
        clock_rate=90_000,
        rtx_ssrc=0xBEEF,
        rtx_payload_type=97,
        mid="4",
        mid_ext_id=1,
        audio_level_ext_id=None,
        queue=sink,  # type: ignore[arg-type]
        request_keyframe=lambda: requests.append(True),
        report=lambda *a: None,
    )


def _seq(data: bytes) -> int:
    return int(struct.unpack_from("!H", data, 2)[0])


def test_video_waits_for_a_keyframe_then_rewrites_headers() -> None:
    sink = _Sink()
    out = _stream(sink)
    out.forward(Pkt(10, 1000, DELTA_START), keyframe_start=False)
    assert sink.sent == []  # gate closed until a keyframe
    out.forward(Pkt(11, 4000, KEY_START + b"k"), keyframe_start=True)
    out.forward(Pkt(12, 4000, CONTINUATION + b"k2", marker=1), keyframe_start=False)
    out.forward(Pkt(9, 1000, DELTA_START), keyframe_start=False)  # from before the start
    assert len(sink.sent) == 2
    first, second = sink.sent
    assert struct.unpack_from("!L", first, 8)[0] == 0xABCD
    assert first[1] & 0x7F == 96 and second[1] & 0x80  # payload type, marker kept
    assert _seq(second) == (_seq(first) + 1) & 0xFFFF
    assert first[12:16] == b"\xbe\xde\x00\x01"  # mid extension of the subscriber's m-section
    assert first.endswith(KEY_START + b"k")


def test_source_swap_keeps_the_subscriber_sequence_continuous() -> None:
    sink = _Sink()
    out = _stream(sink)
    out.forward(Pkt(100, 5000, KEY_START), keyframe_start=True)
    out.resync()  # a new publisher takes over this m-section
    out.forward(Pkt(60000, 77, KEY_START), keyframe_start=True)
    assert _seq(sink.sent[1]) == (_seq(sink.sent[0]) + 1) & 0xFFFF
    ts0, ts1 = (struct.unpack_from("!L", d, 4)[0] for d in sink.sent)
    assert (ts1 - ts0) & 0xFFFFFFFF < 90_000  # timestamps move on, not back


def test_full_queue_drops_then_restarts_at_a_keyframe_without_gap() -> None:
    sink = _Sink(limit=2)
    requests: list[bool] = []
    out = _stream(sink, keyframes=requests)
    out.forward(Pkt(1, 0, KEY_START), keyframe_start=True)
    out.forward(Pkt(2, 0, CONTINUATION), keyframe_start=False)
    out.forward(Pkt(3, 3000, DELTA_START), keyframe_start=False)  # refused: queue full
    assert out.dropped == 1 and requests == [True]
    sink.limit = 10
    out.forward(Pkt(4, 6000, DELTA_START), keyframe_start=False)  # still waiting
    out.forward(Pkt(5, 9000, KEY_START), keyframe_start=True)
    assert len(sink.sent) == 3
    assert _seq(sink.sent[2]) == (_seq(sink.sent[1]) + 1) & 0xFFFF


def test_nack_is_answered_over_rtx_from_history() -> None:
    sink = _Sink()
    out = _stream(sink)
    out.forward(Pkt(1, 0, KEY_START + b"abc"), keyframe_start=True)
    lost = _seq(sink.sent[0])
    out.retransmit([lost, (lost + 50) & 0xFFFF])  # the second was never sent
    assert len(sink.sent) == 2
    rtx = sink.sent[1]
    assert rtx[1] & 0x7F == 97 and struct.unpack_from("!L", rtx, 8)[0] == 0xBEEF
    assert rtx[12:20] == sink.sent[0][12:20]  # same extensions
    assert rtx[20:22] == struct.pack("!H", lost)  # original sequence number
    assert rtx[22:] == KEY_START + b"abc"


def test_audio_is_forwarded_from_the_first_packet() -> None:
    sink = _Sink()
    out = _stream(sink, video=False)
    out.forward(Pkt(7, 960, b"opus"), keyframe_start=False)
    assert len(sink.sent) == 1 and sink.sent[0].endswith(b"opus")


async def test_outbox_is_bounded_and_flushed_in_order() -> None:
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    flusher = Flusher()
    queue = PacketQueue(send, flusher=flusher, limit=3)
    assert [queue.push(bytes([i])) for i in range(5)] == [True, True, True, False, False]
    assert flusher.pending == {queue} and sent == []
    await flusher.flush()
    assert sent == [b"\x00", b"\x01", b"\x02"] and len(queue) == 0 and not flusher.pending
    queue.close()
    assert not queue.push(b"late")


async def test_outbox_drops_for_a_subscriber_whose_socket_is_backed_up() -> None:
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    backlog = [10_000_000]
    flusher = Flusher()
    queue = PacketQueue(send, flusher=flusher, backlog=lambda: backlog[0], max_backlog=1000)
    requests: list[bool] = []
    stream = _stream(_Sink(), keyframes=requests)
    stream.queue = queue
    backlog[0] = 0
    stream.forward(Pkt(1, 0, KEY_START), keyframe_start=True)
    await flusher.flush()
    backlog[0] = 10_000_000
    stream.forward(Pkt(2, 0, CONTINUATION), keyframe_start=False)
    stream.forward(Pkt(3, 3000, DELTA_START), keyframe_start=False)
    await flusher.flush()
    assert len(sent) == 1 and stream.dropped == 1 and requests == [True]
    assert not stream.synced  # waits for the next keyframe
    backlog[0] = 0
    stream.forward(Pkt(4, 6000, DELTA_START), keyframe_start=False)
    stream.forward(Pkt(5, 9000, KEY_START), keyframe_start=True)
    await flusher.flush()
    assert len(sent) == 2
    assert _seq(sent[1]) == (_seq(sent[0]) + 1) & 0xFFFF  # no gap where packets were dropped


async def test_send_errors_do_not_stop_the_outbox() -> None:
    calls: list[bytes] = []

    async def send(data: bytes) -> None:
        calls.append(data)
        if data == b"bad":
            raise RuntimeError("srtp replay check failed")

    flusher = Flusher()
    queue = PacketQueue(send, flusher=flusher)
    for data in (b"bad", b"good"):
        queue.push(data)
    await flusher.flush()
    assert calls == [b"bad", b"good"] and queue.failed == 1 and queue.sent == 1


def test_duplicate_packets_are_not_forwarded_twice() -> None:
    sink = _Sink()
    out = _stream(sink)
    out.forward(Pkt(1, 0, KEY_START), keyframe_start=True)
    out.forward(Pkt(2, 0, CONTINUATION), keyframe_start=False)
    out.forward(Pkt(2, 0, CONTINUATION), keyframe_start=False)  # a late retransmission
    assert len(sink.sent) == 2


async def test_keyframe_requests_are_rate_limited_but_never_lost() -> None:
    fired: list[float] = []
    loop = asyncio.get_running_loop()
    requester = KeyframeRequester(lambda: fired.append(loop.time()), interval=0.1)
    for _ in range(5):
        requester.request()
    assert len(fired) == 1
    await asyncio.sleep(0.15)
    assert len(fired) == 2  # one trailing request for the suppressed ones
    assert fired[1] - fired[0] == pytest.approx(0.1, abs=0.03)
    requester.close()


def test_audio_level_is_carried_over() -> None:
    sink = _Sink()
    out = OutStream(
        video=False,
        ssrc=1,
        payload_type=111,
        clock_rate=48_000,
        rtx_ssrc=2,
        rtx_payload_type=None,
        mid="2",
        mid_ext_id=1,
        audio_level_ext_id=2,
        queue=sink,  # type: ignore[arg-type]
        request_keyframe=lambda: None,
        report=lambda *a: None,
    )

    class Ext:
        audio_level = (True, 30)

    out.forward(Pkt(1, 0, b"opus", extensions=Ext()), keyframe_start=False)
    # mid "2" (id 1) then audio level (id 2, one byte: V=1, level 30), padded to 4 bytes.
    assert sink.sent[0][12:20] == b"\xbe\xde\x00\x01" + b"\x102" + b"\x20" + bytes([0x80 | 30])
