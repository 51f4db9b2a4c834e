"""Pure iMIP (RFC 6047) email building: an invite email that every mail client can act on.

The shape follows what Google Calendar and Outlook send and accept::

    multipart/mixed
      multipart/alternative
        text/plain; charset=utf-8
        text/html; charset=utf-8
        text/calendar; charset=utf-8; method=REQUEST   <- what calendar clients act on
      application/ics; name=invite.ics                 <- the same bytes, for everyone else

No I/O and no randomness: MIME boundaries are derived from the Message-ID, so the same inputs
give the same message, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

from icalendar import Calendar

__all__ = [
    "INVITE_FILENAME",
    "RenderedMail",
    "build_imip",
    "build_notice",
    "calendar_method",
    "render_imip",
    "render_notice",
    "rendered",
]

INVITE_FILENAME = "invite.ics"
_METHOD = re.compile(rb"^METHOD:([A-Za-z-]+)\r?$", re.M)

# SMTP policy: CRLF line endings and RFC 2047/6532-correct headers when serialised.
_POLICY = policy.SMTP


def calendar_method(calendar: bytes) -> str | None:
    """The METHOD of an iCalendar object, upper-cased, or None when it has none.

    Read from the VCALENDAR's own properties (before its first component) without parsing
    the whole object: this runs for every email sent.
    """
    head = calendar.split(b"\nBEGIN:", 1)[0] if calendar.startswith(b"BEGIN:VCALENDAR") else b""
    if not head:
        method = Calendar.from_ical(calendar).get("METHOD")
        return str(method).upper() if method is not None else None
    found = _METHOD.search(head)
    return found.group(1).decode().upper() if found else None


def build_imip(
    *,
    subject: str,
    sender: str | Address,
    recipient: str | Address,
    text: str,
    html: str,
    calendar: bytes,
    method: str,
    message_id: str,
    date: datetime | None = None,
    reply_to: str | Address | None = None,
) -> EmailMessage:
    """Build the invite email for one recipient, as an :class:`EmailMessage`.

    The bytes come from :func:`render_imip` (what the workers send), so what is checked here
    is exactly what goes out.
    """
    return _parse(
        render_imip(
            subject=subject,
            sender=sender,
            recipient=recipient,
            text=text,
            html=html,
            calendar=calendar,
            method=method,
            message_id=message_id,
            date=date,
            reply_to=reply_to,
        )
    )


def render_imip(
    *,
    subject: str,
    sender: str | Address,
    recipient: str | Address,
    text: str,
    html: str,
    calendar: bytes,
    method: str,
    message_id: str,
    date: datetime | None = None,
    reply_to: str | Address | None = None,
) -> bytes:
    """The invite email's bytes (CRLF, ASCII, ready for SMTP).

    `method` is written as the text/calendar part's ``method`` parameter and must equal the
    calendar's METHOD (RFC 6047 2.4): a mismatch makes clients ignore or misapply the invite,
    so it raises ValueError. `message_id` may be given with or without angle brackets; `date`
    becomes the Date header when given (the caller owns the clock). Written directly rather
    than through the stdlib's email object model, which costs more than everything else a
    worker does per message.
    """
    found = calendar_method(calendar)
    if found is None or found != method.upper():
        raise ValueError(f"method {method!r} does not match the calendar's METHOD {found!r}")
    message_id = _message_id(message_id)
    mixed, alt = _boundary(message_id, "mixed"), _boundary(message_id, "alt")
    ics = _base64(calendar)
    parts = [
        _head(subject, sender, recipient, message_id, date, reply_to),
        f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n',
        f"--{mixed}\r\n",
        f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n',
        f"--{alt}\r\n",
        _text(text, "plain"),
        f"--{alt}\r\n",
        _text(html, "html"),
        f"--{alt}\r\n",
        f'Content-Type: text/calendar; charset="utf-8"; method="{found}"\r\n'
        # base64 carries the calendar's CRLFs and folding through every relay.
        "Content-Transfer-Encoding: base64\r\n\r\n",
        ics,
        f"--{alt}--\r\n",
        f"--{mixed}\r\n",
        f'Content-Type: application/ics; name="{INVITE_FILENAME}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{INVITE_FILENAME}"\r\n\r\n',
        ics,
        f"--{mixed}--\r\n",
    ]
    return "".join(parts).encode("ascii")


def build_notice(
    *,
    subject: str,
    sender: str | Address,
    recipient: str | Address,
    text: str,
    html: str,
    message_id: str,
    date: datetime | None = None,
    reply_to: str | Address | None = None,
) -> EmailMessage:
    """A plain notice (waitlist place, reminder) as an :class:`EmailMessage`."""
    return _parse(
        render_notice(
            subject=subject,
            sender=sender,
            recipient=recipient,
            text=text,
            html=html,
            message_id=message_id,
            date=date,
            reply_to=reply_to,
        )
    )


def render_notice(
    *,
    subject: str,
    sender: str | Address,
    recipient: str | Address,
    text: str,
    html: str,
    message_id: str,
    date: datetime | None = None,
    reply_to: str | Address | None = None,
) -> bytes:
    """A plain notice's bytes: ``multipart/alternative`` text and HTML."""
    message_id = _message_id(message_id)
    alt = _boundary(message_id, "alt")
    parts = [
        _head(subject, sender, recipient, message_id, date, reply_to),
        f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n',
        f"--{alt}\r\n",
        _text(text, "plain"),
        f"--{alt}\r\n",
        _text(html, "html"),
        f"--{alt}--\r\n",
    ]
    return "".join(parts).encode("ascii")


@dataclass(frozen=True)
class RenderedMail:
    """A message rendered to bytes with its SMTP envelope: what the outbox hands the mailer."""

    data: bytes
    sender: str
    recipients: tuple[str, ...]
    message_id: str
    date: datetime | None = None


def rendered(
    data: bytes,
    *,
    sender: str | Address,
    recipient: str | Address,
    message_id: str,
    date: datetime | None,
) -> RenderedMail:
    """Wrap bytes from :func:`render_imip` / :func:`render_notice` with their envelope."""
    return RenderedMail(
        data, _addr_spec(sender), (_addr_spec(recipient),), _message_id(message_id), date
    )


def _parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=_POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _addr_spec(value: str | Address) -> str:
    if isinstance(value, Address):
        return value.addr_spec
    return parseaddr(value)[1]


def _address(value: str | Address) -> str:
    if isinstance(value, Address):
        name, spec = value.display_name, value.addr_spec
    else:
        name, spec = parseaddr(value)
    if any(c in spec for c in "\r\n<>") or "@" not in spec:
        raise ValueError(f"not an email address: {spec!r}")
    return formataddr((name, spec), charset="utf-8")


def _header(name: str, value: str) -> str:
    charset = "us-ascii" if value.isascii() else "utf-8"
    folded = Header(value, charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n"


def _head(
    subject: str,
    sender: str | Address,
    recipient: str | Address,
    message_id: str,
    date: datetime | None,
    reply_to: str | Address | None,
) -> str:
    if date is not None and date.utcoffset() is None:
        raise ValueError("date must be an aware datetime")
    if any(c in subject for c in "\r\n"):
        raise ValueError("subject must be one line")
    lines = [f"From: {_address(sender)}\r\n", f"To: {_address(recipient)}\r\n"]
    if reply_to is not None:
        lines.append(f"Reply-To: {_address(reply_to)}\r\n")
    lines.append(_header("Subject", subject))
    if date is not None:
        lines.append(f"Date: {format_datetime(date)}\r\n")
    lines += [
        f"Message-ID: <{message_id}>\r\n",
        "MIME-Version: 1.0\r\n",
        # RFC 3834: keeps vacation responders quiet; calendar replies (iTIP REPLY) still flow.
        "Auto-Submitted: auto-generated\r\n",
    ]
    return "".join(lines)


def _text(body: str, subtype: str) -> str:
    # Quoted-printable keeps the bodies readable and can never contain a boundary ("=_").
    normalized = body.replace("\r\n", "\n")
    if not normalized.endswith("\n"):
        normalized += "\n"  # as the stdlib does: a body ends with a line break
    encoded = quopri.encodestring(normalized.encode("utf-8")).decode("ascii")
    # The CRLF before the next boundary line belongs to the boundary, not to the body.
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + encoded.replace("\n", "\r\n")
        + "\r\n"
    )


def _base64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def _message_id(value: str) -> str:
    message_id = value.strip().strip("<>")
    if not message_id or "@" not in message_id or any(c in message_id for c in "<> \r\n"):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    return message_id


def _boundary(message_id: str, kind: str) -> str:
    digest = hashlib.sha256(f"{kind}:{message_id}".encode()).hexdigest()[:32]
    return f"=_dropin_{kind}_{digest}"
