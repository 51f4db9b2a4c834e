"""Fixtures shared by the room tests: loopback-only ICE and a headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser

from signaling.protocol import Role
from tests.signaling.browser import chromium
from tests.signaling.peers import loopback_only
from tests.signaling.roomkit import Harness


@pytest.fixture
def loopback() -> Iterator[None]:
    """aioice offers 127.0.0.1 only (it normally skips loopback): every peer stays local."""
    with loopback_only():
        yield


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Debian Chromium with fake camera and microphone."""
    async with chromium() as b:
        yield b


# The room state machine's harness (tests/signaling/roomkit.py) ----------------------------


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture
def room_with_facilitator(h: Harness) -> Harness:
    h.enter("f", "fran@example.org", Role.FACILITATOR)
    return h
