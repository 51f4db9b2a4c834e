"""What a leak test counts: resident memory, descriptors, threads, tasks, peer connections."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import threading
from pathlib import Path

from aiortc import RTCPeerConnection


def rss_mib() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def threads() -> list[str]:
    """Thread names, minus the default executor's pool (it grows on demand up to a cap)."""
    return sorted(
        re.sub(r"\d+", "N", t.name)
        for t in threading.enumerate()
        if not t.name.startswith(("ThreadPoolExecutor", "asyncio_"))
    )


def task_names() -> list[str]:
    """Running tasks by coroutine name: comparable across cycles, readable when it fails."""
    return sorted(t.get_coro().__qualname__ for t in asyncio.all_tasks())  # type: ignore[union-attr]


def peer_connections() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))
