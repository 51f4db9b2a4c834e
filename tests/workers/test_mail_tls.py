"""workers/mail.py over TLS and with authentication; SMTP URLs and envelopes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.workers.mailkit import (
    ALICE,
    BOB,
    SENDER,
    Cert,
    assert_no_address,
    make_mailer,
    message,
    parse,
    run_server,
)
from workers.mail import (
    MailError,
    OutboxFolderMailer,
    SmtpMailer,
    envelope,
    mailer_from_settings,
    parse_smtp_url,
)

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
