"""The relay with a real browser: headless Chromium and aiortc participants together.

Skipped (and said so) where no Chromium is installed. Chromium is driven over
the DevTools protocol; its page publishes a canvas video and an oscillator,
like a camera and microphone would, and reports what it decoded via getStats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.signaling.peers import Room, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Never skipped: scripts/install-system-deps.sh installs Debian's chromium; without it the
# browser fixture fails with a message saying so.
MISSING = "no chromium binary: run scripts/install-system-deps.sh (apt-get install chromium)"

PAGE_JS = r"""
window.pc = new RTCPeerConnection({bundlePolicy: 'max-bundle'});
// A "camera": a canvas that changes every frame. A "microphone": an oscillator.
const canvas = document.createElement('canvas');
canvas.width = 320;
canvas.height = 240;
const ctx = canvas.getContext('2d');
let i = 0;
setInterval(() => {
  i += 1;
  ctx.fillStyle = `rgb(${(i * 5) % 255}, 100, ${(i * 3) % 255})`;
  ctx.fillRect(0, 0, 320, 240);
  ctx.fillStyle = 'white';
  ctx.fillText(String(i), 10 + (i % 200), 50);
}, 33);
window.vtrack = canvas.captureStream(30).getVideoTracks()[0];
const ac = new AudioContext();
const osc = ac.createOscillator();
const dst = ac.createMediaStreamDestination();
osc.connect(dst);
osc.start();
window.atrack = dst.stream.getAudioTracks()[0];
pc.ontrack = (e) => {
  const v = document.createElement('video');
  v.muted = true;
  v.autoplay = true;
  v.srcObject = new MediaStream([e.track]);
  document.body.appendChild(v);
  v.play().catch(() => {});
};
// What the join page will do with each offer: publish into the server's
// receive-only m-sections, answer once ICE gathering is complete.
window.answerOffer = async (sdp) => {
  await pc.setRemoteDescription({type: 'offer', sdp});
  const publish = new Set();
  for (const section of sdp.split('\r\nm=').slice(1)) {
    const mid = /a=mid:(\S+)/.exec(section);
    if (mid && /\r\na=recvonly/.test('\r\n' + section)) publish.add(mid[1]);
  }
  for (const t of pc.getTransceivers()) {
    if (publish.has(t.mid) && !t.sender.track) {
      const video = t.receiver.track.kind === 'video';
      await t.sender.replaceTrack(video ? window.vtrack : window.atrack);
      t.direction = 'sendonly';
    }
  }
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    }));
  }
  return pc.localDescription.sdp;
};
window.inbound = async () => {
  const out = {};
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    out[s.mid] = {
      kind: s.kind,
      framesDecoded: s.framesDecoded,
      nackCount: s.nackCount,
      packetsLost: s.packetsLost,
      packetsReceived: s.packetsReceived,
      totalSamplesReceived: s.totalSamplesReceived,
      concealedSamples: s.concealedSamples,
    };
  });
  return out;
};
true;
"""


class Browser:
    """One Chromium page as a relay participant (answers offers like the join page will)."""

    def __init__(self, ws: Any, room: Room, pid: str) -> None:
        self.ws, self.room, self.pid = ws, room, pid
        self._next = 0
        self._lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    async def eval(self, expression: str) -> Any:
        async with self._lock:
            self._next += 1
            await self.ws.send(
                json.dumps(
                    {
                        "id": self._next,
                        "method": "Runtime.evaluate",
                        "params": {
                            "expression": expression,
                            "awaitPromise": True,
                            "returnByValue": True,
                        },
                    }
                )
            )
            while True:
                message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
                if message.get("id") == self._next:
                    result = message["result"]
                    assert "exceptionDetails" not in result, result["exceptionDetails"]
                    return result["result"].get("value")

    async def answer(self, sdp: str) -> None:
        answer = await self.eval(f"answerOffer({json.dumps(sdp)})")
        await self.room.relay.handle_answer(self.pid, answer)

    def on_offer(self, sdp: str) -> None:
        task = asyncio.ensure_future(self.answer(sdp))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def join(self) -> None:
        self.room.clients[self.pid] = self  # type: ignore[assignment]
        await self.answer(await self.room.relay.add_participant(self.pid))

    async def inbound(self) -> dict[str, dict[str, Any]]:
        stats: dict[str, dict[str, Any]] = await self.eval("inbound()")
        return stats

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()


def _page_url(profile: str) -> list[str]:
    """The DevTools WebSocket URL of Chromium's page, once it is up (blocking, quick)."""
    port_file = Path(profile) / "DevToolsActivePort"
    if not port_file.exists() or not port_file.read_text().strip():
        return []
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as response:
        targets = json.loads(response.read())
    return [t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"][:1]


@pytest.fixture
async def browser_ws(loopback: None) -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.fail(MISSING, pytrace=False)
    profile = tempfile.mkdtemp(prefix="dropin-chromium-")
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped in finally
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        urls: list[str] = []

        def up() -> bool:
            urls.extend(_page_url(profile))
            return bool(urls)

        await wait_until(up, timeout=15, what="chromium's DevTools endpoint")
        async with websockets.connect(urls[0], max_size=None) as ws:
            yield ws
    finally:
        # Chromium's helpers (zygote, renderer, GPU) live in the session it was
        # started in: end that whole group, and only it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        shutil.rmtree(profile, ignore_errors=True)


async def test_chromium_and_aiortc_see_each_other_through_renegotiations(browser_ws: Any) -> None:
    room = Room()
    browser = Browser(browser_ws, room, "chrome")
    try:
        assert await browser.eval(PAGE_JS)
        a = await room.join("a")
        await wait_until(lambda: a.pc.connectionState == "connected", timeout=5)
        await asyncio.sleep(0.3)  # a is publishing; no periodic keyframes from here on

        start = time.monotonic()
        await browser.join()  # Chromium joins late: it needs the relay's PLI to a
        while True:
            video = [s for s in (await browser.inbound()).values() if s["kind"] == "video"]
            if video and (video[0].get("framesDecoded") or 0) > 0:
                break
            assert time.monotonic() - start < 5, "chromium decoded no video"
            await asyncio.sleep(0.05)
        first = time.monotonic() - start
        print(f"chromium: first decoded frame {first * 1000:.0f} ms after joining")
        assert first < 1.0
        await wait_until(
            lambda: len(a.frames_from("chrome", "video")) > 20,
            timeout=5,
            what=f"a decodes chrome (a's errors {a.errors}, relay failures {room.failures})",
        )

        c = await room.join("c")  # renegotiates Chromium; c needs Chromium's keyframe
        await wait_until(
            lambda: len(c.frames_from("chrome", "video")) > 10, timeout=5, what="c decodes chrome"
        )
        await asyncio.sleep(1.0)
        stats = await browser.inbound()
        mids = {slot.publisher + "/" + slot.kind: slot.mid for slot in room.relay.slots("chrome")}  # type: ignore[operator]
        for key in ("a/video", "c/video"):
            s = stats[str(mids[key])]
            assert s["framesDecoded"] > 10, (key, s)
            assert s["framesDecoded"] >= s["packetsReceived"] - 2, (key, s)  # all decodable
        # Audio in the steady state: Chromium's jitter buffer conceals a little while it
        # settles after a stream starts (up to ~120 ms seen), so measure a later window.
        await asyncio.sleep(1.5)
        later = await browser.inbound()
        for key in ("a/audio", "c/audio"):
            s, t = stats[str(mids[key])], later[str(mids[key])]
            received = t["totalSamplesReceived"] - s["totalSamplesReceived"]
            concealed = t["concealedSamples"] - s["concealedSamples"]
            assert s["packetsReceived"] > 20 and concealed < 0.05 * received, (key, s, t)

        # Loss between the relay and Chromium is repaired hop by hop: Chromium
        # NACKs, the relay answers over RTX from its own history.
        chrome = room.relay._participants["chrome"]
        a_video = next(
            s for s in chrome.slots if s.source and s.source.owner == "a" and s.kind == "video"
        )
        assert a_video.out is not None
        media_pt = a_video.out.payload_type
        send = chrome.queue._send
        count = 0

        async def lossy(data: bytes) -> None:
            nonlocal count
            ssrc = int.from_bytes(data[8:12], "big")
            if data[1] & 0x7F == media_pt and ssrc == a_video.out.ssrc:  # type: ignore[union-attr]
                count += 1
                if count % 25 == 0:
                    return  # lost on the way
            await send(data)

        chrome.queue._send = lossy
        before = stats[str(mids["a/video"])]
        await asyncio.sleep(2.0)
        chrome.queue._send = send
        after = (await browser.inbound())[str(mids["a/video"])]
        assert count // 25 >= 1 and a_video.out.retransmitted >= count // 25
        assert after["nackCount"] >= before["nackCount"] + count // 25
        # Every frame sent in the window was decoded (one packet per frame here),
        # the dropped ones included: repaired, not concealed or frozen. (Chromium
        # still counts a packet repaired over RTX in packetsLost.)
        assert after["framesDecoded"] - before["framesDecoded"] >= count - 3

        await room.leave("c")  # Chromium's m-sections for c go inactive, no reconnect
        directions = await browser.eval(
            "new Promise(r => setTimeout(() => r(pc.getTransceivers().map("
            "t => [t.mid, t.currentDirection])), 500))"
        )
        assert [mids["c/audio"], "inactive"] in directions
        assert [mids["c/video"], "inactive"] in directions
        assert await browser.eval("pc.connectionState") == "connected"
    finally:
        await browser.close()
        room.clients.pop("chrome", None)
        await room.close()
