"""Mail transport for the outbox worker: SMTP (aiosmtplib) or, in dev, ``.eml`` files in a folder.

Both implement :class:`Mailer`. A failed send raises :class:`MailError`, which says whether
retrying can help (``transient``) and carries a short ``reason`` safe to store in the database
and to log: it never contains an email address (server replies are scrubbed, and the SMTP
exception that caused it, which does carry addresses, is not chained).

Classification (see :func:`classify`):

==========================================================  =========  ======================
failure                                                     transient  reason (example)
==========================================================  =========  ======================
4xx reply at any stage (greeting, MAIL, RCPT, DATA, AUTH)   yes        ``smtp 451 4.3.0 ...``
5xx reply (550 recipient, 554 data, 553 sender, 535 auth)   no         ``smtp 550 5.1.1 ...``
all recipients refused, at least one with a 4xx             yes        ``smtp 450 ...``
connection refused / reset / lost, host not found           yes        ``connection refused``
timeout (connect, greeting, any reply; ``timeout=``)        yes        ``timeout``
TLS handshake or certificate failure (smtps / STARTTLS)     yes        ``tls certificate ...``
server lacks STARTTLS or AUTH that the URL asks for         yes        ``server does not ...``
a reply code outside 4xx/5xx (protocol confusion)           yes        ``smtp 354 ...``
message without From/To, address unsafe on the wire,        no         ``message has no ...``
non-ASCII address to a server without SMTPUTF8
==========================================================  =========  ======================

A recipient refused while others were accepted is not an error (the message went out; a
retry would duplicate it for the others): it is logged with the codes, without addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import re
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from dropin.domain.imip import RenderedMail

__all__ = [
    "MailError",
    "Mailer",
    "OutboxFolderMailer",
    "SmtpMailer",
    "SmtpTarget",
    "backoff",
    "classify",
    "envelope",
    "mailer_from_settings",
    "parse_smtp_url",
]

log = logging.getLogger("dropin.mail")

_SCHEMES = {
    # scheme: (default port, implicit TLS, STARTTLS)
    "smtp": (25, False, False),
    "smtp+starttls": (587, False, True),
    "smtps": (465, True, False),
}
_ADDRESS_RE = re.compile(r"<?[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+>?")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_REASON_MAX = 120


# --------------------------------------------------------------------------- errors


def scrub(text: str, addresses: tuple[str, ...] = ()) -> str:
    """``text`` on one line, short, with every email address replaced by ``<address>``."""
    for address in addresses:
        if address:
            text = re.sub(f"<?{re.escape(address)}>?", "<address>", text, flags=re.IGNORECASE)
            # Servers also quote just the local part ("<jane.doe>: Recipient address rejected").
            local = address.rpartition("@")[0]
            if local:
                text = re.sub(
                    rf"<?\b{re.escape(local)}\b>?", "<address>", text, flags=re.IGNORECASE
                )
    text = _ADDRESS_RE.sub("<address>", text)
    # Anything else in angle brackets in a server's reply is an address or a part of one.
    text = re.sub(r"<[^<>\s]{1,254}>", "<address>", text)
    text = " ".join(_CONTROL_RE.sub(" ", text).split())
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 3] + "..."


class MailError(Exception):
    """A message could not be sent.

    ``transient``: retrying later can succeed (back off and retry); otherwise the message is
    refused for good (mark it failed). ``reason`` is short and never contains an address.
    ``code`` is the SMTP reply code when there was one. ``connection_level`` is true when the
    failure happened while opening the session (connect, TLS, greeting, EHLO, AUTH) rather
    than for this message: such a failure says nothing about the message itself.
    """

    def __init__(
        self,
        reason: str,
        *,
        transient: bool,
        code: int | None = None,
        connection_level: bool = False,
    ) -> None:
        self.reason = scrub(reason) or "error"
        self.transient = transient
        self.code = code
        self.connection_level = connection_level
        super().__init__(self.reason)

    def __repr__(self) -> str:
        kind = "transient" if self.transient else "permanent"
        return f"MailError({self.reason!r}, {kind})"


def _reply_reason(code: int, message: str, addresses: tuple[str, ...]) -> str:
    return f"smtp {code} {scrub(message, addresses)}".strip()


def _response_error(
    code: int, message: str, addresses: tuple[str, ...], connection_level: bool
) -> MailError:
    # Anything that is not a clean 5xx (4xx, or a code that makes no sense here) may pass
    # on a later attempt; only a 5xx is the server saying "never".
    return MailError(
        _reply_reason(code, message, addresses),
        transient=not 500 <= code <= 599,
        code=code,
        connection_level=connection_level,
    )


def _network_reason(exc: BaseException) -> str | None:
    """A reason for network, TLS and timeout failures, looking through the cause chain."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, TimeoutError):  # includes aiosmtplib's timeout errors
            return "timeout"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"tls certificate not trusted: {seen.verify_message or 'verify failed'}"
        if isinstance(seen, ssl.SSLError):
            return "tls handshake failed"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return "connection reset"
        if isinstance(seen, aiosmtplib.SMTPServerDisconnected):
            return "connection lost"
        if isinstance(seen, socket.gaierror):
            return "host not found"
        if isinstance(seen, OSError) and not isinstance(seen, aiosmtplib.SMTPException):
            if seen.errno is not None:
                return f"connect failed: {errno.errorcode.get(seen.errno, 'error')}"
            if "Connect call failed" in str(seen):  # several addresses, all refused
                return "connection refused"
            return "connect failed"
        seen = seen.__cause__ or seen.__context__
    return None


def classify(
    exc: BaseException, *, addresses: tuple[str, ...] = (), connection_level: bool = False
) -> MailError:
    """Turn an exception from aiosmtplib (or the network under it) into a :class:`MailError`.

    ``addresses`` are the envelope's, scrubbed from any server text that echoes them.
    """
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        retryable = [r for r in refused if not 500 <= r.code <= 599]
        first = (retryable or refused)[0] if refused else None
        if first is None:
            return MailError("smtp recipients refused", transient=True)
        return _response_error(first.code, first.message, addresses, connection_level)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _response_error(exc.code, exc.message, addresses, connection_level)
    reason = _network_reason(exc)
    if reason is not None:
        return MailError(reason, transient=True, connection_level=connection_level)
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return MailError("connect failed", transient=True, connection_level=True)
    if isinstance(exc, aiosmtplib.SMTPException):
        text = str(exc).lower()
        if not connection_level and ("smtputf8" in text or "non-ascii" in text):
            return MailError("server does not support smtputf8 addresses", transient=False)
        if "starttls" in text:
            reason = "server does not offer starttls"
        elif "auth extension" in text:
            reason = "server does not offer auth"
        elif "authentication method" in text:
            reason = "server offers no usable auth method"
        else:
            reason = f"smtp: {scrub(str(exc), addresses)}"
        # The server's configuration or state, not this message: waiting is the right answer.
        return MailError(reason, transient=True, connection_level=connection_level)
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address unsafe on the wire
        return MailError("invalid address", transient=False)
    return MailError(f"unexpected {type(exc).__name__}", transient=True)


def _chainable(exc: BaseException) -> bool:
    """Whether ``exc`` can be chained to a MailError: network errors carry hosts, not addresses."""
    return (
        not isinstance(
            exc,
            aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused | ValueError,
        )
        and _network_reason(exc) is not None
    )


# --------------------------------------------------------------------------- protocol


class Mailer(Protocol):
    """What the outbox worker sends with."""

    async def send(self, message: EmailMessage | RenderedMail) -> None:
        """Deliver ``message`` or raise MailError. An EmailMessage's envelope comes from its
        From/To/Cc/Bcc headers; a RenderedMail (the outbox's fast path) carries its own."""

    async def close(self) -> None:
        """Release connections; a later :meth:`send` may open them again."""


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """The envelope sender (From) and recipients (To, Cc, Bcc; once each) of ``message``.

    Raises a permanent :class:`MailError` when either is missing.
    """
    senders = [a for _, a in getaddresses([str(v) for v in message.get_all("From", [])]) if a]
    if not senders:
        raise MailError("message has no From address", transient=False)
    values = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    recipients: list[str] = []
    seen: set[str] = set()
    for _, address in getaddresses(values):
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    if not recipients:
        raise MailError("message has no recipient", transient=False)
    return senders[0], recipients


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class SmtpTarget:
    """A parsed ``DROPIN_SMTP_URL``."""

    host: str
    port: int
    use_tls: bool
    start_tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        """Safe to log: no credentials."""
        mode = "smtps" if self.use_tls else "smtp+starttls" if self.start_tls else "smtp"
        return f"{mode}://{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://[user:pass@]host[:port]``.

    User and password are URL-decoded (``%40`` for ``@`` in a user name, and so on).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError("SMTP URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("SMTP URL has an invalid port") from exc
    default_port, use_tls, start_tls = _SCHEMES[scheme]
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpTarget(
        host=parts.hostname,
        port=port or default_port,
        use_tls=use_tls,
        start_tls=start_tls,
        username=username or None,
        password=password if username else None,
    )


class SmtpMailer:
    """Sends over one reused SMTP connection (aiosmtplib), serialized by a lock.

    The connection is opened on the first send and kept: it is replaced after
    ``max_messages`` messages, after ``max_idle`` seconds without use, and after any failure
    that leaves it in doubt (a refused recipient or a 5xx DATA reply does not: the client
    resets the envelope and the connection stays). ``timeout`` bounds every network step
    (connect, TLS handshake, each reply); ``deadline`` (default three times ``timeout``)
    bounds a whole send, so a server that answers each step just in time cannot stall it.
    ``tls_context`` replaces the default (system trust store, hostname checked).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 20,
        deadline: float | None = None,
        max_messages: int = 500,
        max_idle: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        deadline = 3 * timeout if deadline is None else deadline
        if timeout <= 0 or deadline <= 0 or max_messages < 1 or max_idle < 0:
            raise ValueError("timeouts must be positive, max_messages at least 1")
        self.target = parse_smtp_url(url)
        self._timeout = float(timeout)
        self._deadline = float(deadline)
        self._max_messages = max_messages
        self._max_idle = max_idle
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._clock = clock
        self._lock = asyncio.Lock()
        self._smtp: aiosmtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._last_used = 0.0
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"SmtpMailer({self.target.display})"

    async def send(self, message: EmailMessage | RenderedMail) -> None:
        if isinstance(message, RenderedMail):
            sender, recipients = message.sender, list(message.recipients)
            if not sender or not recipients:
                raise MailError("message has no sender or recipient", transient=False)
        else:
            sender, recipients = envelope(message)
        addresses = (sender, *recipients)
        async with self._lock:
            try:
                async with asyncio.timeout(self._deadline):
                    smtp = await self._connection(addresses)
                    if isinstance(message, RenderedMail):
                        errors, _ = await smtp.sendmail(sender, recipients, message.data)
                    else:
                        errors, _ = await smtp.send_message(
                            message, sender=sender, recipients=recipients
                        )
            except MailError:
                raise
            except Exception as exc:
                keep = (
                    isinstance(
                        exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused
                    )
                    and self._smtp is not None
                    and self._smtp.is_connected
                )
                if not keep:
                    self._drop()
                error = classify(exc, addresses=addresses)
                log.debug("smtp send failed: %s (%s)", error.reason, self.target.display)
                if _chainable(exc):
                    raise error from exc
                raise error from None
            except BaseException:  # cancelled mid-conversation: the session is in doubt
                self._drop()
                raise
            self._sent_on_connection += 1
            self._last_used = self._clock()
            if errors:
                codes = ",".join(sorted({str(r.code) for r in errors.values()}))
                log.warning(
                    "smtp accepted %d of %d recipients; refused with %s",
                    len(recipients) - len(errors),
                    len(recipients),
                    codes,
                )

    async def close(self) -> None:
        async with self._lock:
            await self._quit()

    async def _connection(self, addresses: tuple[str, ...]) -> aiosmtplib.SMTP:
        smtp = self._smtp
        if smtp is not None and smtp.is_connected:
            worn = self._sent_on_connection >= self._max_messages
            idle = self._clock() - self._last_used > self._max_idle
            if not (worn or idle):
                return smtp
            await self._quit()
        else:
            self._drop()
        smtp = aiosmtplib.SMTP(
            hostname=self.target.host,
            port=self.target.port,
            username=self.target.username,
            password=self.target.password,
            local_hostname=self._local_hostname,
            timeout=self._timeout,
            use_tls=self.target.use_tls,
            start_tls=self.target.start_tls,
            tls_context=self._tls_context,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
        except Exception as exc:
            smtp.close()
            error = classify(exc, addresses=addresses, connection_level=True)
            log.debug("smtp connect failed: %s (%s)", error.reason, self.target.display)
            if _chainable(exc):
                raise error from exc
            raise error from None
        except BaseException:
            smtp.close()
            raise
        # getfqdn() runs once, not per connection.
        self._local_hostname = smtp.local_hostname
        self._smtp = smtp
        self._sent_on_connection = 0
        self._last_used = self._clock()
        self.connections_opened += 1
        log.debug("smtp connected (%s)", self.target.display)
        return smtp

    async def _quit(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await smtp.quit(timeout=min(self._timeout, 2.0))
        smtp.close()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


# --------------------------------------------------------------------------- dev folder


class OutboxFolderMailer:
    """Dev mode: each message becomes ``<folder>/<timestamp>-<message-id-slug>.eml``.

    The timestamp is the message's Date (UTC), else the time of writing. Files are written
    to a hidden temporary name and renamed into place, so a reader never sees half a file;
    the same Message-ID always lands in the same file (overwritten, not duplicated).
    """

    def __init__(self, folder: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.folder = Path(folder)
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"OutboxFolderMailer({str(self.folder)!r})"

    async def send(self, message: EmailMessage | RenderedMail) -> None:
        if isinstance(message, RenderedMail):
            message = _parsed(message)
        envelope(message)  # same contract as SMTP: no From or no recipient is refused
        try:
            path = await asyncio.to_thread(self.write, message)
        except OSError as exc:
            reason = f"outbox folder: {exc.strerror or type(exc).__name__}"
            raise MailError(reason, transient=True) from exc
        log.debug("mail written to %s", path.name)

    async def close(self) -> None:
        return None

    def path_for(self, message: EmailMessage) -> Path:
        """Where ``message`` goes: an existing file for its Message-ID, else a new name."""
        slug = message_id_slug(message)
        existing = sorted(self.folder.glob(f"*-{slug}.eml"))
        if existing:
            return existing[0]
        return self.folder / f"{self._timestamp(message)}-{slug}.eml"

    def write(self, message: EmailMessage) -> Path:
        """Write ``message`` atomically (synchronous; :meth:`send` runs it in a thread)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        target = self.path_for(message)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".eml.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    def _timestamp(self, message: EmailMessage) -> str:
        when: datetime | None = None
        raw = message.get("Date")
        if raw is not None:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                when = parsedate_to_datetime(str(raw))
        if when is None or when.tzinfo is None:
            when = self._clock()
        return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parsed(mail: RenderedMail) -> EmailMessage:
    # Dev mode only: writing a file is not the hot path, and one writer keeps one naming rule.
    parsed = message_from_bytes(mail.data, policy=policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    return parsed


def message_id_slug(message: EmailMessage) -> str:
    """A file-name-safe, stable slug of the Message-ID (of the content when there is none)."""
    raw = message.get("Message-ID")
    if raw is None or not str(raw).strip("<> \t\r\n"):
        digest = hashlib.sha256(message.as_bytes()).hexdigest()[:16]
        return f"no-message-id-{digest}"
    mid = str(raw).strip().strip("<>")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", mid).strip("-.")[:80]
    # The short hash keeps ids that clean to the same text apart.
    return f"{cleaned}-{hashlib.sha256(mid.encode()).hexdigest()[:8]}"


# --------------------------------------------------------------------------- helpers


def mailer_from_settings(smtp_url: str | None, outbox_dir: Path) -> Mailer:
    """SMTP when ``DROPIN_SMTP_URL`` is set, else ``.eml`` files in the outbox folder."""
    if smtp_url:
        return SmtpMailer(smtp_url)
    return OutboxFolderMailer(outbox_dir)


def backoff(
    attempt: int, *, base: float = 2.0, cap: float = 3600.0, rand: Callable[[], float]
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = after the first failure).

    Exponential with full jitter: uniform in ``[0, min(cap, base * 2 ** (attempt - 1))]``,
    where ``rand()`` gives the uniform draw in ``[0, 1]`` (e.g. ``random.random``).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if base <= 0 or cap < 0:
        raise ValueError("base must be positive and cap not negative")
    draw = rand()
    if not 0.0 <= draw <= 1.0:
        raise ValueError("rand() must return a number in [0, 1]")
    # Past 2**64 the ceiling is the cap anyway; clamping keeps huge attempts from overflowing.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return draw * ceiling
