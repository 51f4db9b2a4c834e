"""workers/mail.py against a real SMTP server: delivery, and how failures are classified."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator

import pytest

from dropin.devredis import free_port
from tests.workers.mailkit import (
    ADDRESSES,
    ALICE,
    BOB,
    ICS,
    SENDER,
    Server,
    assert_no_address,
    make_mailer,
    message,
    parse,
    structure,
)
from workers import mail
from workers.mail import (
    MailError,
    SmtpMailer,
)

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
