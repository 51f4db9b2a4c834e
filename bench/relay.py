"""Benchmark the forwarding relay (or aiortc's stock MediaRelay) with aiortc peers.

    python bench/relay.py --participants N --seconds S [--baseline]

The relay runs in a subprocess (so its CPU can be read from /proc apart from
the clients'), driven over a JSON-lines pipe that stands in for the WebSocket.
Clients replay a pre-encoded 640x360 30 fps VP8 clip and Opus packets (no
encoding per client) and count frames with a receive tap (no decoding), so
the client process stays as cheap as aiortc allows. In the same run a direct
aiortc peer-to-peer pair carries the same clip: relay-added latency is the
relay path's p50 minus the direct path's p50 (first packet of each frame,
publisher send to subscriber receipt, one clock).

Prints a markdown table row per run and updates the ``bench:relay`` section
of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aioice.ice  # noqa: E402
import av  # noqa: E402
from aiortc import (  # noqa: E402
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay  # noqa: E402
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402

from bench.report import write_section  # noqa: E402
from signaling import seam  # noqa: E402
from signaling.relay import Relay  # noqa: E402

FPS = 30
CLIP_FRAMES = 90  # 3 s, keyframe every second (replayed clips cannot answer a PLI)
WIDTH, HEIGHT = 640, 360
BITRATE = 800_000


def loopback_only() -> None:
    """Gather 127.0.0.1 host candidates only (aioice normally skips loopback)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def prefs(kind: str) -> list[Any]:
    wanted = ("audio/opus",) if kind == "audio" else ("video/vp8", "video/rtx")
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() in wanted]


# ----------------------------------------------------------------------------- the clip


def encode_clip() -> tuple[list[bytes], list[bytes]]:
    """Encode the VP8 clip and one second of Opus once; return the packets' bytes."""
    video = av.CodecContext.create("libvpx", "w")
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.bit_rate, video.gop_size = BITRATE, FPS
    video.time_base = fractions.Fraction(1, FPS)
    video.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(BITRATE),
        "maxrate": str(BITRATE),
        "bufsize": str(BITRATE),
    }
    frames: list[bytes] = []
    for i in range(CLIP_FRAMES):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for index, plane in enumerate(frame.planes):
            row = bytes((i * 5 + x + index * 50) % 256 for x in range(plane.line_size))
            data = bytearray(row * (plane.buffer_size // plane.line_size))
            data[: plane.line_size * 8] = os.urandom(plane.line_size * 8)  # some texture
            plane.update(bytes(data))
        frame.pts = i
        frames += [bytes(p) for p in video.encode(frame)]
    frames += [bytes(p) for p in video.encode(None)]
    audio = av.CodecContext.create("libopus", "w")
    audio.sample_rate, audio.layout, audio.format, audio.bit_rate = 48000, "stereo", "s16", 32000
    opus: list[bytes] = []
    for i in range(50):
        sound = av.AudioFrame(format="s16", layout="stereo", samples=960)
        sound.planes[0].update(bytes((i * 7 + x) % 256 for x in range(960 * 4)))
        sound.sample_rate, sound.pts = 48000, i * 960
        opus += [bytes(p) for p in audio.encode(sound)]
    return frames, opus


def frame_key(data: bytes) -> bytes:
    """Identifies a clip frame from its first bytes (what a receiver sees after the descriptor)."""
    return data[:48]


def vp8_offset(payload: bytes) -> int | None:
    """Offset of the VP8 data in a packet that starts a frame, else None."""
    if len(payload) < 2 or not payload[0] & 0x10 or payload[0] & 0x07:
        return None
    offset = 1
    if payload[0] & 0x80:
        ext, offset = payload[1], 2
        if ext & 0x80:
            offset += 2 if payload[offset] & 0x80 else 1
        offset += bool(ext & 0x40) + bool(ext & 0x30)
    return offset


class Replay(MediaStreamTrack):
    """Replays pre-encoded packets at their real rate, as av.Packet (aiortc only packs them)."""

    def __init__(self, kind: str, packets: list[bytes], rate: int, clock: int, log: Any) -> None:
        super().__init__()
        self.kind = kind
        self._packets, self._rate, self._clock, self._log = packets, rate, clock, log
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._index / self._rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        data = self._packets[self._index % len(self._packets)]
        packet = av.Packet(data)
        packet.pts = self._index * self._clock // self._rate
        packet.time_base = fractions.Fraction(1, self._clock)
        if self._log is not None:
            self._log[self._index % len(self._packets)] = time.monotonic()
        self._index += 1
        return packet


# ----------------------------------------------------------------------------- clients


class Stats:
    """Per (subscriber, publisher) frame counts and latencies, measured in the window."""

    def __init__(self, keys: dict[bytes, int], sent: dict[str, dict[int, float]]) -> None:
        self.keys, self.sent = keys, sent
        self.measuring = False
        self.frames: dict[tuple[str, str], int] = {}
        self.audio: dict[tuple[str, str], int] = {}
        self.latency: dict[str, list[float]] = {"relay": [], "direct": []}

    def on_video(self, sub: str, pub: str, payload: bytes) -> None:
        offset = vp8_offset(payload)
        if offset is None or not self.measuring:
            return
        now = time.monotonic()
        self.frames[(sub, pub)] = self.frames.get((sub, pub), 0) + 1
        index = self.keys.get(frame_key(payload[offset:]))
        sent = self.sent.get(pub, {}).get(index) if index is not None else None
        if sent is not None and 0 <= now - sent < 1.0:
            self.latency["direct" if pub == "direct" else "relay"].append(now - sent)

    def on_audio(self, sub: str, pub: str) -> None:
        if self.measuring:
            self.audio[(sub, pub)] = self.audio.get((sub, pub), 0) + 1


class BenchClient:
    """A participant: publishes the replayed clip, taps what it receives."""

    def __init__(self, pid: str, clip: tuple[list[bytes], list[bytes]], stats: Stats) -> None:
        self.pid, self.stats = pid, stats
        self.pc = RTCPeerConnection(config())
        stats.sent[pid] = {}
        self.video = Replay("video", clip[0], FPS, 90_000, stats.sent[pid])
        self.audio = Replay("audio", clip[1], 50, 48_000, None)
        self.mid_owner: dict[str, str] = {}
        self.tapped: set[int] = set()

    def tap(self, publisher_of: Any) -> None:
        for t in self.pc.getTransceivers():
            if id(t.receiver) in self.tapped or t.mid is None:
                continue
            self.tapped.add(id(t.receiver))
            mid, kind = t.mid, t.kind

            def on_packet(packet: Any, mid: str = mid, kind: str = kind) -> None:
                pub = publisher_of(mid)
                if pub is None:
                    return
                if kind == "video":
                    self.stats.on_video(self.pid, pub, packet.payload)
                else:
                    self.stats.on_audio(self.pid, pub)

            seam.tap_receiver(t.receiver, on_packet)

    async def answer(self, sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for section in sdp.split("\nm=")[1:]:
            mid = re.search(r"a=mid:(\S+)", section)
            msid = re.search(r"a=msid:(\S+)", section)
            if mid and msid:
                self.mid_owner[mid.group(1)] = msid.group(1)
        publish = {
            m.group(1)
            for s in sdp.split("\nm=")[1:]
            if (m := re.search(r"a=mid:(\S+)", s)) and re.search(r"^a=recvonly\s*$", s, re.M)
        }
        for t in self.pc.getTransceivers():
            t.setCodecPreferences(prefs(t.kind))
            if t.mid in publish and t.sender.track is None:
                t.sender.replaceTrack(self.video if t.kind == "video" else self.audio)
                t.direction = "sendonly"
        self.tap(self.mid_owner.get)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)


async def direct_pair(clip: tuple[list[bytes], list[bytes]], stats: Stats) -> list[Any]:
    """Two aiortc peers linked directly, carrying the same clip: the latency reference."""
    sender, receiver = RTCPeerConnection(config()), RTCPeerConnection(config())
    stats.sent["direct"] = {}
    t = sender.addTransceiver(
        Replay("video", clip[0], FPS, 90_000, stats.sent["direct"]), direction="sendonly"
    )
    t.setCodecPreferences(prefs("video"))
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    for rt in receiver.getTransceivers():
        seam.tap_receiver(rt.receiver, lambda p: stats.on_video("direct-rx", "direct", p.payload))
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    return [sender, receiver]


# ----------------------------------------------------------------------------- relay process


async def serve(participants: int, baseline: bool) -> None:
    """Relay side: JSON lines on stdin/stdout stand in for the signaling WebSocket."""
    loopback_only()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def on_offer(pid: str, sdp: str) -> None:
        emit({"op": "offer", "pid": pid, "sdp": sdp})

    server: Any = StockRelay(participants) if baseline else Relay(on_offer=on_offer)
    while line := await reader.readline():
        msg = json.loads(line)
        if msg["op"] == "join":
            emit(
                {"op": "offer", "pid": msg["pid"], "sdp": await server.add_participant(msg["pid"])}
            )
        elif msg["op"] == "answer":
            await server.handle_answer(msg["pid"], msg["sdp"])
        elif msg["op"] == "quit":
            break
    await server.close()


class StockRelay:
    """aiortc's MediaRelay: decode each publisher once, re-encode per subscriber.

    Everyone's m-sections are created at join for all ``n`` participants, so no
    renegotiation is needed; tracks are wired once everyone has answered.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.media = MediaRelay()
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.order: list[str] = []

    async def add_participant(self, pid: str) -> str:
        pc = RTCPeerConnection(config())
        self.pcs[pid] = pc
        self.order.append(pid)
        for kind in ("audio", "video"):
            pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(prefs(kind))
        for other in (f"p{i}" for i in range(self.n) if f"p{i}" != pid):
            for kind in ("audio", "video"):
                t = pc.addTransceiver(kind, direction="sendonly")
                t.setCodecPreferences(prefs(kind))
                seam.set_stream_id(t.sender, other)  # the client reads the publisher from msid
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)

    async def handle_answer(self, pid: str, sdp: str) -> None:
        await self.pcs[pid].setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if len(self.order) == self.n:
            for sub in self.order:
                slots = self.pcs[sub].getTransceivers()[2:]
                pubs = [p for p in self.order if p != sub]
                for i, pub in enumerate(pubs):
                    for j in range(2):
                        track = self.pcs[pub].getTransceivers()[j].receiver.track
                        slots[2 * i + j].sender.replaceTrack(self.media.subscribe(track))

    async def close(self) -> None:
        for pc in self.pcs.values():
            await pc.close()


# ----------------------------------------------------------------------------- driver


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(n: int, seconds: float, baseline: bool, warmup: float) -> dict[str, Any]:
    loopback_only()
    clip = encode_clip()
    keys = {frame_key(f): i for i, f in enumerate(clip[0])}
    stats = Stats(keys, {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        "--participants",
        str(n),
        *(["--baseline"] if baseline else []),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None
    clients: dict[str, BenchClient] = {}
    answered: dict[str, asyncio.Event] = {}

    async def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(message) + "\n").encode())
        await proc.stdin.drain()

    async def pump() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            msg = json.loads(line)
            client = clients[msg["pid"]]
            sdp = await client.answer(msg["sdp"])
            await send({"op": "answer", "pid": msg["pid"], "sdp": sdp})
            answered[msg["pid"]].set()

    pump_task = asyncio.create_task(pump())
    pcs = await direct_pair(clip, stats)
    try:
        for i in range(n):
            pid = f"p{i}"
            clients[pid] = BenchClient(pid, clip, stats)
            answered[pid] = asyncio.Event()
            await send({"op": "join", "pid": pid})
            await asyncio.wait_for(answered[pid].wait(), 10)
        await asyncio.sleep(warmup)
        stats.measuring = True
        cpu0, own0, t0 = cpu_seconds(proc.pid), cpu_seconds(os.getpid()), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, own1, t1 = cpu_seconds(proc.pid), cpu_seconds(os.getpid()), time.monotonic()
        stats.measuring = False
    finally:
        with contextlib.suppress(Exception):
            await send({"op": "quit"})
            await asyncio.wait_for(proc.wait(), 10)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        pump_task.cancel()
        for pc in [*pcs, *(c.pc for c in clients.values())]:
            await pc.close()
    elapsed = t1 - t0
    pairs = [(s, p) for s in clients for p in clients if s != p]
    fps = [stats.frames.get(pair, 0) / elapsed for pair in pairs]
    relay_lat, direct_lat = stats.latency["relay"], stats.latency["direct"]

    def pct(values: list[float], q: int) -> float:
        return (
            statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")
        )

    return {
        "relay": "MediaRelay (stock)" if baseline else "forwarding",
        "participants": n,
        "video_streams": len(pairs),
        "seconds": round(elapsed, 1),
        "cpu": 100 * (cpu1 - cpu0) / elapsed,
        "client_cpu": 100 * (own1 - own0) / elapsed,
        "fps_min": min(fps) if fps else 0.0,
        "fps_mean": statistics.mean(fps) if fps else 0.0,
        "p50": pct(relay_lat, 50),
        "p95": pct(relay_lat, 95),
        "direct_p50": pct(direct_lat, 50),
        "added_p50": pct(relay_lat, 50) - pct(direct_lat, 50),
    }


HEADER = (
    "| relay | participants | video streams | relay CPU (% of one core) | fps per subscriber "
    "(min / mean) | latency p50 / p95 (ms) | direct p50 (ms) | relay-added p50 (ms) "
    "| clients' CPU (%) |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def row(r: dict[str, Any]) -> str:
    # Re-encoded frames cannot be matched to the frames sent: no latency for the baseline.
    latency = f"{r['p50']:.1f} / {r['p95']:.1f}" if r["p50"] == r["p50"] else "n/a (re-encoded)"
    added = f"{r['added_p50']:.1f}" if r["added_p50"] == r["added_p50"] else "n/a"
    return (
        f"| {r['relay']} | {r['participants']} | {r['video_streams']} | {r['cpu']:.1f} "
        f"| {r['fps_min']:.1f} / {r['fps_mean']:.1f} | {latency} "
        f"| {r['direct_p50']:.1f} | {added} | {r['client_cpu']:.0f} |"
    )


def update_docs(rows: list[str], note: str) -> None:
    """Replace only the bench:relay section of docs/benchmarks.md (shared helper)."""
    write_section("relay", f"## Media relay\n\n{note}\n\n{HEADER}\n" + "\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, nargs="+", default=[3])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--baseline", action="store_true", help="also run aiortc's MediaRelay")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        profile = os.environ.get("RELAY_BENCH_PROFILE")  # write a cProfile of the relay here
        if profile:
            import cProfile

            cProfile.runctx(
                "asyncio.run(serve(args.participants[0], args.baseline))",
                globals(),
                {"args": args},
                profile,
            )
        else:
            asyncio.run(serve(args.participants[0], args.baseline))
        return
    rows = []
    print(HEADER)
    for n in args.participants:
        for baseline in [False, True] if args.baseline else [False]:
            result = asyncio.run(run(n, args.seconds, baseline, args.warmup))
            rows.append(row(result))
            print(rows[-1], flush=True)
    if not args.no_docs:
        note = (
            f"`python bench/relay.py --participants {' '.join(map(str, args.participants))} "
            f"--seconds {args.seconds:g}{' --baseline' if args.baseline else ''}`. "
            f"Each participant sends {WIDTH}x{HEIGHT} VP8 at {FPS} fps (~{BITRATE // 1000} kbit/s, "
            "pre-encoded, replayed) plus Opus. CPU is the relay process only; latency is "
            "publisher send to subscriber receipt of each frame's first packet."
        )
        update_docs(rows, note)


if __name__ == "__main__":
    main()
