"""Headless Chromium driven by Playwright, one browser context per participant.

Debian's ``chromium`` package (installed by scripts/install-system-deps.sh) with fake camera
and microphone devices, permission prompts accepted, loopback ICE candidates allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
ARGS = [
    # A fake camera and microphone; at up to 30 fps (the fake camera defaults to 20).
    "--use-fake-device-for-media-stream=fps=30",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


@contextlib.asynccontextmanager
async def chromium(
    extra_args: tuple[str, ...] = (), fake_ui: bool = True
) -> AsyncIterator[Browser]:
    """A headless Chromium; fails (never skips) when Debian's chromium is missing."""
    if not HAVE_CHROMIUM:
        pytest.fail("no chromium: run scripts/install-system-deps.sh", pytrace=False)
    args = [a for a in ARGS if fake_ui or a != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*args, *extra_args]
        )
        try:
            yield browser
        finally:
            await browser.close()


class Person:
    """One participant's page."""

    def __init__(self, name: str, page: Page) -> None:
        self.name = name
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )

    @classmethod
    async def open(
        cls, browser: Browser, name: str, url: str, viewport: dict[str, int] = DESKTOP
    ) -> Person:
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = await context.new_page()
        person = cls(name, page)
        await page.goto(url)
        return person

    async def view(self, view: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await self.page.wait_for_selector(f"#{view}-view:not([hidden])", timeout=timeout * 1000)

    async def until(self, expression: str, timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        """Poll a JavaScript expression until it is truthy; returns its value.

        Not ``page.wait_for_function``: Playwright 1.65 evaluates a string predicate
        with ``eval`` inside the page, which the join page's CSP (no 'unsafe-eval') refuses.
        ``page.evaluate`` goes through the DevTools protocol, outside the page's CSP.
        """
        deadline = time.monotonic() + timeout
        value: Any = None
        while True:
            try:
                value = await asyncio.wait_for(self.page.evaluate(expression), timeout)
            except PlaywrightError as exc:  # e.g. evaluated mid-navigation: try again
                value = f"error: {exc.message}"
            else:
                if value:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: still {value!r} after {timeout}s: {expression}")
            await asyncio.sleep(0.05)

    async def ask(self, *, camera: bool = True) -> None:
        """From the pre-join view: camera on (if asked), agree, ask to join."""
        await self.view("prejoin")
        if camera:
            await self.page.click("#prejoin-camera")
            await self.page.wait_for_selector("#preview-video:not([hidden])")
        await self.page.check("#agree")
        await self.page.click("#ask")

    async def state(self) -> Any:
        return await self.page.evaluate("window.__dropin.state()")

    async def stats(self) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = await self.page.evaluate("window.__dropin.stats()")
        return result

    async def pid(self) -> str:
        me: str = (await self.state())["me"]
        return me

    async def screenshot(self, name: str) -> None:
        """Write docs/screenshots/<name>.png, only when DROPIN_SCREENSHOTS=1 asks for it.

        Taken either way, so a page that cannot be drawn still fails the test.
        """
        image = await self.page.screenshot()
        if os.environ.get("DROPIN_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / f"{name}.png").write_bytes(image)

    async def close(self) -> None:
        await self.page.context.close()


async def receiving(
    person: Person,
    others: list[str],
    frames: int = 10,
    timeout: float = 20.0,  # noqa: ASYNC109
) -> dict[str, Any]:
    """Wait until ``person`` has decoded ``frames`` video frames from each of ``others``
    (participant ids) and received their audio; returns the stats."""
    deadline = time.monotonic() + timeout
    while True:
        last = await person.stats()
        if all(
            last.get(o, {}).get("framesDecoded", 0) >= frames
            and last.get(o, {}).get("totalSamplesReceived", 0) > 0
            for o in others
        ):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{person.name} is not receiving from {others}: {last}")
        await asyncio.sleep(0.25)
