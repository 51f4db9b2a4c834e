"""Real server processes for tests and benchmarks: uvicorn on loopback, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

from dropin.devredis import free_port


@contextlib.contextmanager
def serve(
    env: dict[str, str],
    processes: int = 1,
    timeout: float = 20.0,
    app: str = "dropin.web.asgi:app",
    health: str = "/healthz",
) -> Iterator[list[str]]:
    """Run ``processes`` independent uvicorn servers of ``app``; yields their base URLs."""
    started: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    full_env = {**os.environ, **env}
    try:
        for _ in range(processes):
            port = free_port()
            started.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        app,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--no-access-log",
                        "--log-level",
                        "warning",
                    ],
                    env=full_env,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + timeout
        for proc, url in zip(started, urls, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}{health}", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server at {url} did not start")
                time.sleep(0.1)
        yield urls
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
