"""workers/mail.py against a real SMTP server: aiosmtpd on 127.0.0.1, in its own thread.

The server records every envelope it accepts and can be told to refuse (451, 550, 554), drop
the connection, or hang for the next messages. TLS tests use a self-signed certificate made
here with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import os
import re
import ssl
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dropin.devredis import free_port
from workers import mail
from workers.mail import (
    MailError,
    OutboxFolderMailer,
    SmtpMailer,
    backoff,
    envelope,
    mailer_from_settings,
    parse_smtp_url,
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


# --------------------------------------------------------------------------- delivery


async def test_plain_send_arrives_intact(server: Server, mailer: SmtpMailer) -> None:
    sent = message(7, bcc=BOB)
    await mailer.send(sent)

    [got] = server.handler.received
    assert got.mail_from == SENDER
    assert got.rcpt_tos == [ALICE, BOB]
    received = parse(got.content)
    assert received["Message-ID"] == "<booking-7.invite@dropin.test>"
    assert received["Subject"] == "Drop-in #7 — mardi 8 décembre"
    assert received["Date"] == sent["Date"]
    assert received["Bcc"] is None  # the envelope carries Bcc, the content does not
    assert structure(received) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    parts = list(received.walk())
    assert parts[2].get_content().replace("\r\n", "\n") == "Hello, see you on Tuesday. Café ☕ 7\n"
    assert parts[4].get_content_type() == "text/calendar"
    assert parts[4].get_param("method") == "REQUEST"
    assert parts[4].get_payload(decode=True) == ICS


async def test_one_connection_is_reused(server: Server, mailer: SmtpMailer) -> None:
    for n in range(50):
        await mailer.send(message(n))
    assert len(server.handler.received) == 50
    assert server.handler.connections == 1
    assert server.handler.ehlos == 1
    assert mailer.connections_opened == 1
    ids = [parse(r.content)["Message-ID"] for r in server.handler.received]
    assert ids == [f"<booking-{n}.invite@dropin.test>" for n in range(50)]


async def test_concurrent_sends_share_the_connection(server: Server, mailer: SmtpMailer) -> None:
    await asyncio.gather(*(mailer.send(message(n)) for n in range(30)))
    assert len(server.handler.received) == 30
    assert server.handler.connections == 1


async def test_reconnects_after_max_messages(server: Server) -> None:
    m = make_mailer(server.url, max_messages=10)
    try:
        for n in range(25):
            await m.send(message(n))
    finally:
        await m.close()
    assert len(server.handler.received) == 25
    assert server.handler.connections == 3
    assert m.connections_opened == 3


async def test_reconnects_after_idle_time(server: Server) -> None:
    now = [1000.0]
    m = make_mailer(server.url, max_idle=30.0, clock=lambda: now[0])
    try:
        await m.send(message(1))
        now[0] += 29.0
        await m.send(message(2))
        assert server.handler.connections == 1
        now[0] += 31.0
        await m.send(message(3))
    finally:
        await m.close()
    assert server.handler.connections == 2
    assert len(server.handler.received) == 3


async def test_close_quits_and_a_later_send_reconnects(server: Server, mailer: SmtpMailer) -> None:
    await mailer.send(message(1))
    await mailer.close()
    await mailer.close()  # idempotent
    await mailer.send(message(2))
    assert server.handler.connections == 2
    assert len(server.handler.received) == 2


async def test_partial_refusal_is_delivered_and_logged_without_addresses(
    server: Server, mailer: SmtpMailer, caplog: pytest.LogCaptureFixture
) -> None:
    msg = message(1)
    msg.replace_header("To", f"{ALICE}, {BOB}")
    server.handler.fail_next("rcpt550")
    with caplog.at_level(logging.DEBUG, logger="dropin.mail"):
        await mailer.send(msg)
    [got] = server.handler.received
    assert got.rcpt_tos == [BOB]
    assert "accepted 1 of 2 recipients; refused with 550" in caplog.text
    for address in ADDRESSES:
        assert address not in caplog.text


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [
        ("data451", 451, "smtp 451 4.3.0 try later"),
        ("rcpt451", 451, "smtp 451 4.3.0 <address>: try later"),
    ],
)
async def test_4xx_is_transient(
    server: Server,
    mailer: SmtpMailer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    code: int,
    reason: str,
) -> None:
    server.handler.fail_next(fault)
    with caplog.at_level(logging.DEBUG, logger="dropin.mail"), pytest.raises(MailError) as info:
        await mailer.send(message(1))
    assert info.value.transient
    assert info.value.code == code
    assert info.value.reason == reason
    assert_no_address(info.value, caplog)
    # The refusal left the session usable: the retry goes out on the same connection.
    await mailer.send(message(1))
    assert len(server.handler.received) == 1
    assert server.handler.connections == 1


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [
        ("rcpt550", 550, "smtp 550 5.1.1 <address>: Recipient address rejected: User unknown"),
        ("data554", 554, "smtp 554 5.6.0 message from <address> refused: content rejected"),
    ],
)
async def test_5xx_is_permanent(
    server: Server,
    mailer: SmtpMailer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    code: int,
    reason: str,
) -> None:
    server.handler.fail_next(fault)
    with caplog.at_level(logging.DEBUG, logger="dropin.mail"), pytest.raises(MailError) as info:
        await mailer.send(message(1))
    assert not info.value.transient
    assert info.value.code == code
    assert not info.value.connection_level
    assert info.value.reason == reason
    assert_no_address(info.value, caplog)
    await mailer.send(message(2))
    assert [parse(r.content)["Message-ID"] for r in server.handler.received] == [
        "<booking-2.invite@dropin.test>"
    ]
    assert server.handler.connections == 1


async def test_dropped_connection_is_transient_and_the_next_send_reconnects(
    server: Server, mailer: SmtpMailer
) -> None:
    await mailer.send(message(1))
    server.handler.fail_next("drop")
    with pytest.raises(MailError) as info:
        await mailer.send(message(2))
    assert info.value.transient
    assert info.value.reason in {"connection lost", "connection reset"}
    assert_no_address(info.value)
    await mailer.send(message(2))
    assert len(server.handler.received) == 2
    assert server.handler.connections == 2


async def test_connection_refused_is_transient() -> None:
    port = free_port()  # nothing listens there
    m = make_mailer(f"smtp://127.0.0.1:{port}")
    with pytest.raises(MailError) as info:
        await m.send(message(1))
    assert info.value.transient
    assert info.value.connection_level
    assert info.value.reason == "connection refused"
    assert_no_address(info.value)
    await m.close()


@contextlib.asynccontextmanager
async def silent_server(greeting: bytes) -> AsyncIterator[int]:
    """Accepts connections, optionally greets, then never says anything again."""
    writers: list[asyncio.StreamWriter] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(greeting)
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass

    srv = await asyncio.start_server(client, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        for writer in writers:
            writer.close()
        await srv.wait_closed()


@pytest.mark.parametrize(
    "greeting", [b"", b"220 silent.test ESMTP\r\n"], ids=["no-greeting", "mute"]
)
async def test_a_hanging_server_times_out_as_transient(greeting: bytes) -> None:
    async with silent_server(greeting) as port:
        m = make_mailer(f"smtp://127.0.0.1:{port}", timeout=0.2)
        started = time.monotonic()
        with pytest.raises(MailError) as info:
            await m.send(message(1))
        elapsed = time.monotonic() - started
        await m.close()
    assert info.value.transient
    assert info.value.reason == "timeout"
    assert elapsed < 1.0


async def test_a_server_hanging_after_data_times_out(server: Server) -> None:
    m = make_mailer(server.url, timeout=0.2)
    try:
        await m.send(message(1))
        server.handler.fail_next("hang")
        with pytest.raises(MailError) as info:
            await m.send(message(2))
        assert info.value.transient
        assert info.value.reason == "timeout"
        await m.send(message(3))  # a fresh connection, not the desynced one
    finally:
        await m.close()
    assert server.handler.connections == 2


async def test_a_slow_server_hits_the_deadline_and_the_session_is_replaced(
    server: Server,
) -> None:
    # Each reply comes well within `timeout`, but MAIL + RCPT together exceed `deadline`.
    m = make_mailer(server.url, timeout=1.0, deadline=0.3)
    try:
        await m.send(message(1))
        server.handler.slow = 0.2
        started = time.monotonic()
        with pytest.raises(MailError) as info:
            await m.send(message(2))
        assert time.monotonic() - started < 0.5
        assert info.value.transient
        assert info.value.reason == "timeout"
        server.handler.slow = 0.0
        await m.send(message(3))  # on a new connection, not the one cut mid-command
    finally:
        await m.close()
    ids = [parse(r.content)["Message-ID"] for r in server.handler.received]
    assert ids == ["<booking-1.invite@dropin.test>", "<booking-3.invite@dropin.test>"]
    assert m.connections_opened == 2


def test_classify_table() -> None:
    from aiosmtplib import (
        SMTPAuthenticationError,
        SMTPConnectError,
        SMTPDataError,
        SMTPException,
        SMTPNotSupported,
        SMTPRecipientRefused,
        SMTPRecipientsRefused,
        SMTPSenderRefused,
        SMTPServerDisconnected,
    )

    # The texts aiosmtplib uses.
    utf8 = "An address containing non-ASCII characters was provided, but SMTPUTF8 is not ..."
    no_auth = "The SMTP AUTH extension is not supported by this server."
    no_starttls = "SMTP STARTTLS extension not supported by server."
    refused = [
        SMTPRecipientRefused(550, f"<{ALICE}> unknown", ALICE),
        SMTPRecipientRefused(452, "4.2.2 mailbox full", BOB),
    ]
    table: list[tuple[BaseException, bool, str]] = [
        (SMTPRecipientsRefused(refused[:1]), False, "smtp 550 <address> unknown"),
        (SMTPRecipientsRefused(refused), True, "smtp 452 4.2.2 mailbox full"),
        (SMTPDataError(554, "5.7.1 spam"), False, "smtp 554 5.7.1 spam"),
        (SMTPDataError(421, "4.4.2 closing"), True, "smtp 421 4.4.2 closing"),
        (
            SMTPSenderRefused(553, f"{SENDER} not allowed", SENDER),
            False,
            "smtp 553 <address> not allowed",
        ),
        (
            SMTPAuthenticationError(535, "5.7.8 bad credentials"),
            False,
            "smtp 535 5.7.8 bad credentials",
        ),
        (SMTPAuthenticationError(454, "4.7.0 try later"), True, "smtp 454 4.7.0 try later"),
        (SMTPServerDisconnected("Connection lost"), True, "connection lost"),
        (ConnectionResetError(), True, "connection reset"),
        (TimeoutError(), True, "timeout"),
        (ssl.SSLError("handshake"), True, "tls handshake failed"),
        (ValueError("address contains CR"), False, "invalid address"),
        (SMTPNotSupported(utf8), False, "server does not support smtputf8 addresses"),
    ]
    for exc, transient, reason in table:
        error = mail.classify(exc, addresses=ADDRESSES)
        assert (error.transient, error.reason) == (transient, reason), exc
        assert not error.connection_level
    opening: list[tuple[BaseException, bool, str]] = [
        (SMTPException(no_auth), True, "server does not offer auth"),
        (SMTPException(no_starttls), True, "server does not offer starttls"),
        (SMTPConnectError("Error connecting"), True, "connect failed"),
        (SMTPAuthenticationError(535, "5.7.8 no"), False, "smtp 535 5.7.8 no"),
    ]
    for exc, transient, reason in opening:
        error = mail.classify(exc, addresses=ADDRESSES, connection_level=True)
        assert (error.transient, error.reason, error.connection_level) == (transient, reason, True)


# --------------------------------------------------------------------------- TLS and auth


async def test_starttls(cert: Cert) -> None:
    with run_server(
        "smtp+starttls", tls_context=cert.server_context(), require_starttls=True
    ) as srv:
        m = make_mailer(srv.url, tls_context=cert.client_context())
        try:
            await m.send(message(1))
            await m.send(message(2))
        finally:
            await m.close()
        assert [r.tls for r in srv.handler.received] == [True, True]
        assert srv.handler.connections == 1


async def test_plain_url_does_not_upgrade_and_starttls_url_insists(cert: Cert) -> None:
    with run_server(tls_context=cert.server_context()) as srv:
        plain = make_mailer(srv.url)
        try:
            await plain.send(message(1))
        finally:
            await plain.close()
        assert [r.tls for r in srv.handler.received] == [False]
    with run_server() as srv:  # no STARTTLS offered
        m = make_mailer(srv.url.replace("smtp://", "smtp+starttls://"))
        with pytest.raises(MailError) as info:
            await m.send(message(1))
        await m.close()
        assert info.value.transient
        assert info.value.connection_level
        assert info.value.reason == "server does not offer starttls"
        assert srv.handler.received == []


async def test_untrusted_certificate_is_a_transient_tls_error(cert: Cert) -> None:
    with run_server("smtp+starttls", tls_context=cert.server_context()) as srv:
        m = make_mailer(srv.url)  # system trust store: the self-signed cert is not in it
        with pytest.raises(MailError) as info:
            await m.send(message(1))
        await m.close()
    assert info.value.transient
    assert info.value.reason.startswith("tls certificate not trusted")
    assert srv.handler.received == []


async def test_implicit_tls(cert: Cert) -> None:
    with run_server("smtps", ssl_context=cert.server_context()) as srv:
        m = make_mailer(srv.url, tls_context=cert.client_context())
        try:
            await m.send(message(1))
        finally:
            await m.close()
        [got] = srv.handler.received
        assert got.tls
        assert parse(got.content)["Message-ID"] == "<booking-1.invite@dropin.test>"


USER = "relay@dropin.test"
PASSWORD = "p@ss:w/rd %?"
ENCODED = "relay%40dropin.test:p%40ss%3Aw%2Frd%20%25%3F"


@dataclass
class Authenticator:
    mechanisms: list[str] = field(default_factory=list)

    def __call__(
        self, server: SmtpServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        ok = isinstance(data, LoginPassword) and data == LoginPassword(
            USER.encode(), PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)


AUTH_WITHOUT_TLS = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@AUTH_WITHOUT_TLS
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_auth_with_url_decoded_credentials(mechanism: str) -> None:
    auth = Authenticator()
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    with run_server(
        authenticator=auth,
        auth_required=True,
        auth_require_tls=False,
        auth_exclude_mechanism=[other],
    ) as srv:
        m = make_mailer(srv.url.replace("://", f"://{ENCODED}@"))
        try:
            await m.send(message(1))
            await m.send(message(2))
        finally:
            await m.close()
        assert [r.authenticated for r in srv.handler.received] == [True, True]
    assert auth.mechanisms == [mechanism]  # once: the session is reused


@AUTH_WITHOUT_TLS
async def test_auth_failure_is_permanent_and_names_nobody(caplog: pytest.LogCaptureFixture) -> None:
    auth = Authenticator()
    with run_server(authenticator=auth, auth_required=True, auth_require_tls=False) as srv:
        m = make_mailer(srv.url.replace("://", "://relay%40dropin.test:wrong@"))
        with caplog.at_level(logging.DEBUG, logger="dropin.mail"), pytest.raises(MailError) as info:
            await m.send(message(1))
        await m.close()
        assert srv.handler.received == []
    assert not info.value.transient
    assert info.value.code == 535
    assert info.value.connection_level
    assert info.value.reason.startswith("smtp 535")
    assert_no_address(info.value, caplog)
    assert USER not in caplog.text and "wrong" not in caplog.text


# --------------------------------------------------------------------------- URL and envelope


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "starttls", "user", "password"),
    [
        ("smtp://mail.example.org", "mail.example.org", 25, False, False, None, None),
        ("smtp+starttls://mail.example.org", "mail.example.org", 587, False, True, None, None),
        ("smtps://mail.example.org", "mail.example.org", 465, True, False, None, None),
        ("smtp://127.0.0.1:2525", "127.0.0.1", 2525, False, False, None, None),
        (f"smtps://{ENCODED}@mx:4650", "mx", 4650, True, False, USER, PASSWORD),
        ("SMTP+STARTTLS://u@mx", "mx", 587, False, True, "u", None),
    ],
)
def test_parse_smtp_url(
    url: str,
    host: str,
    port: int,
    tls: bool,
    starttls: bool,
    user: str | None,
    password: str | None,
) -> None:
    target = parse_smtp_url(url)
    assert (target.host, target.port, target.use_tls, target.start_tls) == (
        host,
        port,
        tls,
        starttls,
    )
    assert (target.username, target.password) == (user, password)
    if user == USER:
        assert user not in repr(target)
    if password:
        assert password not in repr(target)
        assert password not in repr(SmtpMailer(url))


@pytest.mark.parametrize("url", ["http://mx", "smtp://", "smtp://mx:port", "mx:25"])
def test_parse_smtp_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP URL"):
        parse_smtp_url(url)


def test_envelope_from_headers() -> None:
    msg = EmailMessage()
    msg["From"] = f'"Drop, In" <{SENDER}>'
    msg["To"] = f'"Parent, Émilie" <{ALICE}>, Zoë <{BOB}>'
    msg["Cc"] = f"{ALICE.upper()}, carol@example.org"
    msg["Bcc"] = "dave@example.org"
    assert envelope(msg) == (SENDER, [ALICE, BOB, "carol@example.org", "dave@example.org"])
    del msg["From"]
    with pytest.raises(MailError, match="no From") as info:
        envelope(msg)
    assert not info.value.transient
    msg["From"] = SENDER
    del msg["To"], msg["Cc"], msg["Bcc"]
    with pytest.raises(MailError, match="no recipient"):
        envelope(msg)


def test_mailer_from_settings(tmp_path: Path) -> None:
    folder = mailer_from_settings(None, tmp_path / "outbox")
    assert isinstance(folder, OutboxFolderMailer)
    assert folder.folder == tmp_path / "outbox"
    assert isinstance(mailer_from_settings("", tmp_path), OutboxFolderMailer)
    smtp = mailer_from_settings("smtp+starttls://u:p@mx.example.org", tmp_path)
    assert isinstance(smtp, SmtpMailer)
    assert smtp.target.display == "smtp+starttls://mx.example.org:587"


def test_mail_error_scrubs_its_reason() -> None:
    error = MailError(f"smtp 550 <{ALICE}>\r\nsecond line", transient=False)
    assert error.reason == "smtp 550 <address> second line"
    assert_no_address(error)
    assert len(MailError("x" * 500, transient=True).reason) <= 120


# --------------------------------------------------------------------------- folder mailer


def listing(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


NAME_RE = re.compile(r"^\d{8}T\d{6}Z-[A-Za-z0-9._-]+\.eml$")


async def test_folder_mailer_writes_eml_files(tmp_path: Path) -> None:
    m = OutboxFolderMailer(tmp_path / "outbox")
    await m.send(message(1))
    await m.send(message(2))
    files = listing(tmp_path / "outbox")
    assert [f.name for f in files if not NAME_RE.match(f.name)] == []
    assert len(files) == 2
    assert files[0].name.startswith("20261124T100000Z-booking-1.invite-dropin.test-")
    written = parse(files[0].read_bytes())
    assert written["Message-ID"] == "<booking-1.invite@dropin.test>"
    assert structure(written) == structure(message(1))
    assert list(written.walk())[4].get_payload(decode=True) == ICS
    assert os.stat(files[0]).st_mode & 0o077 == 0  # addresses inside: owner only


async def test_folder_mailer_same_message_id_is_one_file(tmp_path: Path) -> None:
    m = OutboxFolderMailer(tmp_path)
    first = message(1)
    await m.send(first)
    again = message(1, date=dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC))
    again.replace_header("Subject", "resent")
    await asyncio.gather(m.send(again), m.send(again))
    [only] = listing(tmp_path)
    assert parse(only.read_bytes())["Subject"] == "resent"
    assert only.name.startswith("20261124T100000Z-")  # the first name is kept


async def test_folder_mailer_without_date_or_message_id(tmp_path: Path) -> None:
    m = OutboxFolderMailer(tmp_path, clock=lambda: dt.datetime(2027, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    msg = message(1)
    del msg["Date"], msg["Message-ID"]
    await m.send(msg)
    await m.send(msg)
    [only] = listing(tmp_path)
    assert only.name.startswith("20270102T030405Z-no-message-id-")


async def test_folder_mailer_renames_a_complete_temp_file_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool, bytes]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        seen.append((Path(src).name, Path(dst).exists(), Path(src).read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr("workers.mail.os.replace", spy)
    m = OutboxFolderMailer(tmp_path)
    await m.send(message(1))
    [(temp_name, target_existed, data)] = seen
    assert temp_name.startswith(".") and not temp_name.endswith(".eml")
    assert not target_existed
    [final] = listing(tmp_path)
    assert final.read_bytes() == data
    assert parse(data)["Message-ID"] == "<booking-1.invite@dropin.test>"


async def test_folder_mailer_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("workers.mail.os.fsync", broken)
    m = OutboxFolderMailer(tmp_path)
    with pytest.raises(MailError) as info:
        await m.send(message(1))
    assert info.value.transient
    assert info.value.reason == "outbox folder: No space left on device"
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------- backoff


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


@pytest.mark.parametrize(
    ("attempt", "draw", "kw", "expected"),
    [
        (1, 1.0, {}, 2.0),
        (1, 0.5, {}, 1.0),
        (1, 0.0, {}, 0.0),
        (2, 1.0, {}, 4.0),
        (3, 0.25, {}, 2.0),
        (11, 1.0, {}, 2048.0),
        (12, 1.0, {}, 3600.0),  # 4096 capped
        (12, 0.5, {}, 1800.0),
        (10_000, 0.5, {}, 1800.0),  # no overflow
        (4, 1.0, {"base": 0.5}, 4.0),
        (5, 1.0, {"base": 1.0, "cap": 10.0}, 10.0),
        (3, 1.0, {"cap": 0.0}, 0.0),
    ],
)
def test_backoff_table(attempt: int, draw: float, kw: dict[str, float], expected: float) -> None:
    assert backoff(attempt, rand=fixed(draw), **kw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempt", "draw", "kw"),
    [(0, 0.5, {}), (-1, 0.5, {}), (1, 1.5, {}), (1, -0.1, {}), (1, 0.5, {"base": 0.0})],
)
def test_backoff_rejects(attempt: int, draw: float, kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        backoff(attempt, rand=fixed(draw), **kw)


def test_scrub_hides_local_parts_and_bracketed_names() -> None:
    from workers.mail import scrub

    reply = "550 5.1.1 <jane.doe>: Recipient address rejected: jane.doe unknown"
    cleaned = scrub(reply, ("jane.doe@example.org",))
    assert "jane" not in cleaned and cleaned.startswith("550 5.1.1 <address>")
