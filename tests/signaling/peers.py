"""aiortc client peers for relay tests: publish synthetic VP8 + Opus, count decoded frames.

Everything runs over 127.0.0.1 only (see :func:`loopback_only`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import aioice.ice
import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from signaling.relay import Relay

VIDEO_CLOCK = 90_000


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Make aioice gather host candidates on 127.0.0.1 only (it normally skips loopback)."""
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


class SyntheticVideo(VideoStreamTrack):
    """A moving grey ramp, small so that client-side encoding stays cheap."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        shade = (self.count * 7) % 200
        for index, plane in enumerate(frame.planes):
            value = shade if index == 0 else 128
            row = bytes((value + x) % 256 for x in range(plane.line_size))
            plane.update(row * (plane.buffer_size // plane.line_size))
        frame.pts = pts
        frame.time_base = time_base
        self.count += 1
        return frame


def publish_mids(offer_sdp: str) -> set[str]:
    """Mids of the m-sections the server offers receive-only: the client publishes there."""
    mids = set()
    for section in offer_sdp.split("\nm=")[1:]:
        mid = re.search(r"a=mid:(\S+)", section)
        if mid and re.search(r"^a=recvonly\s*$", section, re.MULTILINE):
            mids.add(mid.group(1))
    return mids


async def answer_offer(
    pc: RTCPeerConnection,
    sdp: str,
    *,
    video: MediaStreamTrack | None,
    audio: MediaStreamTrack | None,
) -> str:
    """Apply the server's offer and return the answer, publishing ``video``/``audio`` (if
    given) in the sections the server receives on. VP8 and Opus only, like the relay."""
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    mids = publish_mids(sdp)
    for t in pc.getTransceivers():
        t.setCodecPreferences(_prefs(t.kind))
        track = video if t.kind == "video" else audio
        if t.mid in mids and track is not None and t.sender.track is None:
            t.sender.replaceTrack(track)
            t.direction = "sendonly"
    await pc.setLocalDescription(await pc.createAnswer())
    answer: str = pc.localDescription.sdp
    return answer


def _prefs(kind: str) -> list[Any]:
    wanted = ("audio/opus",) if kind == "audio" else ("video/vp8", "video/rtx")
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() in wanted]


class Client:
    """One participant: an aiortc peer connection answering the relay's offers."""

    def __init__(self, relay: Relay, pid: str, *, publish: bool = True) -> None:
        self.relay = relay
        self.pid = pid
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.publish = publish
        self.video = SyntheticVideo() if publish else None
        self.audio = AudioStreamTrack() if publish else None
        self.frames: dict[str, list[float]] = {}  # mid -> arrival times of decoded frames
        self.offers = 0
        self.errors: list[BaseException] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answering = asyncio.Lock()
        self.pc.on("track", self._on_track)

    # -- negotiation
    async def join(self) -> None:
        offer = await self.relay.add_participant(self.pid)
        await self.answer(offer)

    def on_offer(self, sdp: str) -> None:
        """Called (via the relay's on_offer) for renegotiations."""
        self._spawn(self.answer(sdp))

    async def answer(self, sdp: str) -> None:
        async with self._answering:
            try:
                self.offers += 1
                answer = await answer_offer(self.pc, sdp, video=self.video, audio=self.audio)
                await self.relay.handle_answer(self.pid, answer)
            except Exception as exc:
                self.errors.append(exc)
                raise

    # -- receiving
    def _on_track(self, track: Any) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        assert mid is not None
        self.frames.setdefault(mid, [])
        self._spawn(self._consume(mid, track))

    async def _consume(self, mid: str, track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames[mid].append(time.monotonic())

    def frames_from(self, publisher: str, kind: str) -> list[float]:
        """Decoded frame times on the m-section currently carrying ``publisher``'s ``kind``."""
        for slot in self.relay.slots(self.pid):
            if slot.publisher == publisher and slot.kind == kind and slot.mid is not None:
                return self.frames.get(slot.mid, [])
        return []

    def mid_of(self, publisher: str, kind: str) -> str | None:
        for slot in self.relay.slots(self.pid):
            if slot.publisher == publisher and slot.kind == kind:
                return slot.mid
        return None

    def direction_of(self, mid: str) -> str | None:
        for t in self.pc.getTransceivers():
            if t.mid == mid:
                return t.currentDirection
        return None

    # -- lifecycle
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Room:
    """A relay plus the clients it talks to, routing offers to the right client."""

    def __init__(self, **relay_kwargs: Any) -> None:
        self.clients: dict[str, Client] = {}
        self.failures: list[tuple[str, str]] = []
        self.relay = Relay(on_offer=self._on_offer, on_failed=self._on_failed, **relay_kwargs)

    async def _on_offer(self, pid: str, sdp: str) -> None:
        self.clients[pid].on_offer(sdp)

    async def _on_failed(self, pid: str, reason: str) -> None:
        self.failures.append((pid, reason))

    async def join(self, pid: str, *, publish: bool = True) -> Client:
        client = Client(self.relay, pid, publish=publish)
        self.clients[pid] = client
        await client.join()
        return client

    async def leave(self, pid: str) -> None:
        """The relay drops the participant (idempotent), then the client hangs up."""
        client = self.clients.pop(pid)
        await self.relay.remove_participant(pid)
        await client.close()

    async def close(self) -> None:
        await self.relay.close()
        for client in list(self.clients.values()):
            await client.close()
        self.clients.clear()


async def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,  # noqa: ASYNC109 - a polling helper with an explicit deadline
    interval: float = 0.02,
    what: str = "",
) -> float:
    """Poll ``condition`` until true; return the seconds it took, fail after ``timeout``."""
    start = time.monotonic()
    deadline = start + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(interval)
    return time.monotonic() - start
