"""A small, cheap HTTP/1.1 load generator over raw asyncio streams (keep-alive, loopback).

Cheaper per request than a full client library, so on a 2-core machine most of the CPU goes
to the server being measured. Bounded in requests and time; talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Connection:
    """One keep-alive connection to 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        if body:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = None


RequestFactory = Callable[[int], tuple[str, str, bytes] | None]


async def run(
    port: int,
    make: RequestFactory,
    *,
    concurrency: int,
    total: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    keep_bodies: bool = False,
    request_timeout: float = 30.0,
) -> Result:
    """Send up to ``total`` requests (``make(i)`` builds each; None stops) from ``concurrency``
    connections, for at most ``seconds``."""
    result = Result()
    counter = iter(range(total))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = Connection(port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                spec = make(i)
                if spec is None:
                    return
                method, path, body = spec
                start = time.perf_counter()
                try:
                    status, payload = await asyncio.wait_for(
                        conn.request(method, path, body, headers), request_timeout
                    )
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    result.errors += 1
                    await conn.close()
                    continue
                result.latencies.append(time.perf_counter() - start)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if keep_bodies:
                    result.bodies.append(payload)
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result
