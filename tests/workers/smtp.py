"""A real SMTP server on loopback (aiosmtpd) that records what it accepts."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from dropin.devredis import free_port

_MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>\r\n]+>)", re.M | re.I)


@dataclass
class Recorder:
    """aiosmtpd handler: keeps every accepted message; can be slowed down."""

    delay: float = 0.0
    # Parse messages (tests look inside them); a benchmark only needs their Message-IDs.
    parse: bool = True
    # Refuse recipients in this domain for good (550), as a server does for a bad address.
    refuse: str | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    # Message-IDs as received, kept apart so that polling them is cheap.
    received_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse and address.endswith("@" + self.refuse):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        parsed = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
            self.received_ids.append(str(parsed["Message-ID"]))
        return "250 OK"

    def ids(self) -> list[str]:
        with self.lock:
            return list(self.received_ids)

    def unique(self) -> int:
        with self.lock:
            return len(set(self.received_ids))

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


class SmtpServer:
    """Start, stop and restart an aiosmtpd server on one loopback port."""

    def __init__(self, delay: float = 0.0, *, parse: bool = True) -> None:
        self.port = free_port()
        self.recorder = Recorder(delay=delay, parse=parse)
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def calendar_method(message: EmailMessage) -> str | None:
    """The ``method`` of a message's text/calendar part, or None for a plain notice."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return str(part.get_param("method"))
    return None


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
