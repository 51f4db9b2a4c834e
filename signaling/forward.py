"""RTP forwarding without aiortc: header rewriting, keyframe gate, NACK history, packet queues.

The relay forwards each publisher's RTP packets to every subscriber with only
the header rewritten (SSRC, sequence number, timestamp, payload type and
header extensions of the subscriber's own m-section); payloads are never
parsed beyond the VP8 descriptor needed to find keyframes. Everything here is
plain Python over bytes so it can be tested without a peer connection.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHLL")
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01

#: Packets kept per video stream to answer NACKs (about 1.5 s at 1 Mbit/s).
HISTORY_SIZE = 256
#: A packet older than this many sequence numbers is never forwarded.
MAX_REORDER = 0x4000


_Sent = tuple[int, int, int, bytes, bytes]


class ForwardablePacket(Protocol):
    """The fields of an RTP packet the forwarder reads (aiortc's RtpPacket has them)."""

    sequence_number: int
    timestamp: int
    marker: int
    payload: bytes


def vp8_keyframe_start(payload: bytes) -> bool:
    """True if ``payload`` (an RTP VP8 payload, RFC 7741) starts a VP8 keyframe.

    A keyframe starts in the packet with S=1 and partition id 0, and the VP8
    payload header's inverse-keyframe bit P is 0.
    """
    if len(payload) < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # not the start of partition 0
        return False
    offset = 1
    if first & 0x80:  # X: extended control bits follow
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            offset += 1
    return len(payload) > offset and not payload[offset] & 0x01


def extension_block(elements: list[tuple[int, bytes]]) -> bytes:
    """Build an RTP header extension in the one-byte form (RFC 8285), with its header."""
    body = b"".join(bytes([(ext_id << 4) | (len(value) - 1)]) + value for ext_id, value in elements)
    if not body:
        return b""
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", 0xBEDE, len(body) // 4) + body


def ntp_time(wall: float) -> int:
    """64-bit NTP timestamp for a ``time.time()`` value."""
    return int((wall + _NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


class PacketQueue:
    """A subscriber's bounded packet queue, flushed inline by whoever filled it.

    Every forwarded stream to one participant shares it (they share one BUNDLE
    transport). The publisher's receive path fans a packet out into the
    packet queues and then awaits :meth:`Flusher.flush` in the same task: no
    writer task and no wake-up per subscriber per packet. Two bounds keep a
    slow subscriber from growing memory or delaying others: the queue length,
    and the bytes the subscriber's UDP socket already has buffered
    (``backlog``); over either, its packets are dropped and its video streams
    wait for a keyframe.
    """

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        *,
        flusher: Flusher,
        limit: int = 1024,
        backlog: Callable[[], int] | None = None,
        max_backlog: int = 256 * 1024,
    ) -> None:
        self._send = send
        self._flusher = flusher
        self._limit = limit
        self._backlog = backlog
        self._max_backlog = max_backlog
        self._queue: collections.deque[tuple[bytes, OutStream | None]] = collections.deque()
        self.sent = 0
        self.refused = 0
        self.failed = 0
        self.closed = False

    def push(self, data: bytes, stream: OutStream | None = None) -> bool:
        """Queue ``data``; False (and nothing queued) when the queue is full."""
        if len(self._queue) >= self._limit or self.closed:
            self.refused += 1
            return False
        self._queue.append((data, stream))
        self._flusher.pending.add(self)
        return True

    def __len__(self) -> int:
        return len(self._queue)

    async def flush(self) -> None:
        """Send everything queued (UDP sends complete without waiting)."""
        queue = self._queue
        if self._backlog is not None and queue and self._backlog() > self._max_backlog:
            # The kernel and asyncio already hold this much for the subscriber: drop.
            self.refused += len(queue)
            first: dict[OutStream, int] = {}
            for data, stream in queue:
                if stream is not None and stream not in first:
                    first[stream] = (data[2] << 8) | data[3]
            queue.clear()
            for stream, seq in first.items():
                stream.lost(seq)
            return
        while queue:
            data, _ = queue.popleft()
            try:
                await self._send(data)
            except ConnectionError:
                # Not connected yet, or gone: the packet is lost, as on a network.
                self.failed += 1
            except Exception as exc:  # e.g. SRTP refusing a replayed index
                self.failed += 1
                logger.debug("relay: send failed: %r", exc)
            else:
                self.sent += 1

    def close(self) -> None:
        """Drop whatever is queued and refuse more."""
        self.closed = True
        self._queue.clear()
        self._flusher.pending.discard(self)


class Flusher:
    """The packet queues with queued packets, flushed after each fan-out."""

    def __init__(self) -> None:
        self.pending: set[PacketQueue] = set()

    async def flush(self) -> None:
        """Flush every queue that has packets queued."""
        pending = self.pending
        while pending:
            await pending.pop().flush()


class OutStream:
    """One publisher track forwarded to one subscriber's m-section.

    Keeps the subscriber's view continuous: its own SSRC, a sequence number
    with no gaps across source swaps and keyframe waits, timestamps that keep
    advancing with wall time. Video starts (and restarts after a drop) only
    at a keyframe.
    """

    def __init__(
        self,
        *,
        video: bool,
        ssrc: int,
        payload_type: int,
        clock_rate: int,
        rtx_ssrc: int,
        rtx_payload_type: int | None,
        mid: str | None,
        mid_ext_id: int | None,
        audio_level_ext_id: int | None,
        queue: PacketQueue,
        request_keyframe: Callable[[], None],
        report: Callable[[int, int, int, int], None],
    ) -> None:
        self.video = video
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.rtx_ssrc = rtx_ssrc
        self.rtx_payload_type = rtx_payload_type
        self.queue = queue
        self.request_keyframe = request_keyframe
        self._report = report
        self._mid_element = [(mid_ext_id, mid.encode())] if mid and mid_ext_id else []
        self._audio_level_ext_id = audio_level_ext_id
        self._ext = extension_block(self._mid_element)
        self._ext_cache: dict[tuple[bool, int], bytes] = {}
        self.synced = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._hi_in = 0
        self._span = 0
        self._next_seq = random.randrange(0x8000)  # noqa: S311 - not a secret
        self._last_ts = random.randrange(1 << 32)  # noqa: S311
        self._last_wall = 0.0
        self._rtx_seq = random.randrange(0x8000)  # noqa: S311
        # (sequence number, timestamp, marker, extensions, payload): the payload is
        # the publisher's bytes object, shared by every subscriber's history.
        self._history: list[_Sent | None] = [None] * HISTORY_SIZE if video else []
        self.packets = 0
        self.octets = 0
        self.dropped = 0
        self.retransmitted = 0

    def resync(self) -> None:
        """Wait for a new starting point (a keyframe for video) before forwarding again."""
        self.synced = False

    def lost(self, first_seq: int) -> None:
        """This stream's queued packets from ``first_seq`` on were dropped, unsent.

        Video restarts at a keyframe *from that sequence number*, so the
        subscriber sees no gap: a gap it cannot get repaired stalls a receiver
        (aiortc's jitter buffer waits 512 packets; Chromium keeps NACKing).
        Audio keeps the gap: the decoder conceals it.
        """
        self.dropped += 1
        if not self.video or not self.synced:
            return
        seq = first_seq
        for _ in range(HISTORY_SIZE):  # forget what was never sent
            if seq == self._next_seq:
                break
            entry = self._history[seq % HISTORY_SIZE]
            if entry is not None and entry[0] == seq:
                self._history[seq % HISTORY_SIZE] = None
            seq = (seq + 1) & 0xFFFF
        self._next_seq = first_seq
        self.synced = False
        self.request_keyframe()

    def _start(self, packet: ForwardablePacket) -> None:
        if self._last_wall:
            elapsed = max(1, int((time.time() - self._last_wall) * self.clock_rate))
            self._last_ts = (self._last_ts + elapsed) & 0xFFFFFFFF
        self._seq_offset = (self._next_seq - packet.sequence_number) & 0xFFFF
        self._ts_offset = (self._last_ts - packet.timestamp) & 0xFFFFFFFF
        self._hi_in = packet.sequence_number
        self._span = 0
        self.synced = True

    def _extensions(self, packet: object) -> bytes:
        if self._audio_level_ext_id is None:
            return self._ext
        level = getattr(getattr(packet, "extensions", None), "audio_level", None)
        if level is None:
            return self._ext
        key = (bool(level[0]), int(level[1]) & 0x7F)
        block = self._ext_cache.get(key)
        if block is None:
            value = bytes([(0x80 if key[0] else 0) | key[1]])
            block = extension_block([*self._mid_element, (self._audio_level_ext_id, value)])
            self._ext_cache[key] = block
        return block

    def forward(self, packet: ForwardablePacket, keyframe_start: bool) -> None:
        """Rewrite ``packet`` for this subscriber and queue it."""
        seq_in = packet.sequence_number
        if not self.synced:
            if self.video and not keyframe_start:
                return
            self._start(packet)
        else:
            ahead = (seq_in - self._hi_in) & 0xFFFF
            if ahead < 0x8000:
                self._hi_in = seq_in
                self._span = min(self._span + ahead, MAX_REORDER)
            elif 0x10000 - ahead > self._span:
                return  # from before this stream (re)started: the subscriber never knew it
        seq = (seq_in + self._seq_offset) & 0xFFFF
        ts = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        ext = self._extensions(packet)
        payload = packet.payload
        data = (
            _HEADER.pack(
                0x90 if ext else 0x80,
                (packet.marker << 7) | self.payload_type,
                seq,
                ts,
                self.ssrc,
            )
            + ext
            + payload
        )
        history = self._history
        if history:
            previous = history[seq % HISTORY_SIZE]
            if previous is not None and previous[0] == seq:
                return  # a duplicate (e.g. a late retransmission): sent already
        if not self.queue.push(data, self):
            self.dropped += 1
            if self.video:
                # The subscriber now misses part of a frame: restart cleanly at a keyframe.
                self.synced = False
                self._next_seq = seq
                self.request_keyframe()
            return
        if ((seq - self._next_seq) & 0xFFFF) < 0x8000:
            self._next_seq = (seq + 1) & 0xFFFF
        if history:
            history[seq % HISTORY_SIZE] = (seq, ts, packet.marker, ext, payload)
        now = time.time()
        self._last_ts = ts
        self._last_wall = now
        self.packets += 1
        self.octets += len(payload)
        if not self.packets & 15:
            self._report(ntp_time(now), ts, self.packets, self.octets)

    def retransmit(self, lost: list[int]) -> None:
        """Answer a subscriber's NACK from history, over RTX.

        Without RTX nothing is resent: SRTP refuses to protect a sequence number
        twice on one SSRC.
        """
        if self.rtx_payload_type is None:
            return
        for seq in lost:
            entry = self._history[seq % HISTORY_SIZE] if self._history else None
            if entry is None or entry[0] != seq:
                continue
            _, ts, marker, ext, payload = entry
            rtx = (
                _HEADER.pack(
                    0x90 if ext else 0x80,
                    (marker << 7) | self.rtx_payload_type,
                    self._rtx_seq,
                    ts,
                    self.rtx_ssrc,
                )
                + ext
                + struct.pack("!H", seq)
                + payload
            )
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            if self.queue.push(rtx):
                self.retransmitted += 1


class KeyframeRequester:
    """Rate-limits keyframe requests to one publisher track.

    A request inside the quiet interval is not lost: one trailing request is
    sent when the interval ends, so a late subscriber is never starved.
    """

    def __init__(self, send: Callable[[], None], interval: float) -> None:
        self._send = send
        self._interval = interval
        self._last = float("-inf")
        self._pending: asyncio.TimerHandle | None = None
        self.sent = 0

    def request(self) -> None:
        """Ask for a keyframe now, or at the end of the current quiet interval."""
        if self._pending is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self._interval - loop.time()
        if wait <= 0:
            self._fire()
        else:
            self._pending = loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._last = asyncio.get_running_loop().time()
        self.sent += 1
        self._send()

    def close(self) -> None:
        """Cancel a pending trailing request."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
