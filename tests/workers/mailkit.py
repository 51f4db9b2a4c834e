"""A real SMTP server for the mailer's tests, and TLS material; fixtures ``server``, ``mailer``
and ``cert`` (registered in tests/workers/conftest.py).

The server is aiosmtpd on 127.0.0.1 in its own thread. It records every envelope it accepts and
can be told to refuse (451, 550, 554), drop the connection, or hang for the next messages. TLS
tests use a self-signed certificate made here with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import re
import ssl
import threading
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dropin.devredis import free_port
from workers.mail import (
    MailError,
    SmtpMailer,
)

SENDER = "dropin@example.net"
ALICE = "alice.parent@example.org"
BOB = "bob.parent@example.org"
ADDRESSES = (SENDER, ALICE, BOB)
ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//dropin//test//EN\r\nMETHOD:REQUEST\r\n"
    b"BEGIN:VEVENT\r\nUID:s1@dropin.test\r\nDTSTAMP:20261124T100000Z\r\n"
    b"DTSTART:20261208T193000Z\r\nSUMMARY:Drop-in\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


# --------------------------------------------------------------------------- the server


@dataclass
class Received:
    mail_from: str | None
    rcpt_tos: list[str]
    content: bytes
    peer: Any
    tls: bool
    authenticated: bool | None


@dataclass
class Recorder:
    """aiosmtpd handler: records accepted envelopes; faults apply to the next messages.

    Fault kinds: ``drop`` (at MAIL: connection aborted), ``rcpt451``, ``rcpt550`` (the reply
    echoes the address, as real servers do), ``data451``, ``data554``, ``hang`` (at DATA).
    """

    received: list[Received] = field(default_factory=list)
    ehlos: int = 0
    peers: list[Any] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    slow: float = 0.0  # seconds each MAIL and RCPT reply is delayed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, kind: str, count: int = 1) -> None:
        with self.lock:
            self.faults.extend([kind] * count)

    def _take(self, *kinds: str) -> str | None:
        with self.lock:
            if self.faults and self.faults[0] in kinds:
                return self.faults.pop(0)
        return None

    @property
    def connections(self) -> int:
        """Distinct client connections that sent MAIL."""
        return len(set(self.peers))

    async def handle_EHLO(
        self,
        server: SmtpServer,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname  # what aiosmtpd does when there is no hook
        return responses

    async def handle_MAIL(
        self,
        server: SmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._take("drop"):
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "250 OK"
        await asyncio.sleep(self.slow)
        self.peers.append(session.peer)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        await asyncio.sleep(self.slow)
        fault = self._take("rcpt451", "rcpt550")
        if fault == "rcpt451":
            return f"451 4.3.0 <{address}>: try later"
        if fault == "rcpt550":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:
        fault = self._take("data451", "data554", "hang")
        if fault == "data451":
            return "451 4.3.0 try later"
        if fault == "data554":
            return f"554 5.6.0 message from {envelope.mail_from} refused: content rejected"
        if fault == "hang":
            await asyncio.sleep(5)  # the client gives up first; stop() cancels this
        content = envelope.original_content
        assert isinstance(content, bytes)
        assert server.transport is not None
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                peer=session.peer,
                tls=session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
                authenticated=session.authenticated,
            )
        )
        return "250 2.0.0 accepted"


@dataclass
class Server:
    url: str
    port: int
    handler: Recorder


@contextlib.contextmanager
def run_server(scheme: str = "smtp", **kw: Any) -> Iterator[Server]:
    handler = Recorder()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5, **kw)
    controller.start()
    try:
        yield Server(f"{scheme}://127.0.0.1:{port}", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    with run_server() as running:
        yield running


def make_mailer(url: str, **kw: Any) -> SmtpMailer:
    kw.setdefault("timeout", 2.0)
    return SmtpMailer(url, local_hostname="worker.test", **kw)


@pytest.fixture
async def mailer(server: Server) -> AsyncIterator[SmtpMailer]:
    m = make_mailer(server.url)
    yield m
    await m.close()


def message(
    n: int = 1, *, to: str = ALICE, bcc: str | None = None, date: dt.datetime | None = None
) -> EmailMessage:
    """A multipart invite-shaped message with a non-ASCII subject and body."""
    msg = EmailMessage()
    msg["From"] = f"dropin <{SENDER}>"
    msg["To"] = f"Alice <{to}>"
    if bcc:
        msg["Bcc"] = bcc
    msg["Subject"] = f"Drop-in #{n} — mardi 8 décembre"
    msg["Message-ID"] = f"<booking-{n}.invite@dropin.test>"
    msg["Date"] = email.utils.format_datetime(
        date or dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
    )
    msg.set_content(f"Hello, see you on Tuesday. Café ☕ {n}\n")
    msg.add_alternative(f"<p>Hello, see you on Tuesday. Café ☕ {n}</p>\n", subtype="html")
    msg.add_attachment(
        ICS,
        maintype="text",
        subtype="calendar",
        filename="invite.ics",
        params={"method": "REQUEST"},
    )
    return msg


def parse(content: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def structure(msg: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in msg.walk()]


def assert_no_address(error: MailError, caplog: pytest.LogCaptureFixture | None = None) -> None:
    texts = [error.reason, str(error), repr(error), "".join(traceback.format_exception(error))]
    if caplog is not None:
        texts.append(caplog.text)
    for text in texts:
        for address in ADDRESSES:
            assert address not in text, text
        assert "alice" not in text and "bob" not in text, text
        assert not re.search(r"\S@\S", text), text


# --------------------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dropin test smtp")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Cert(folder / "cert.pem", folder / "key.pem")
