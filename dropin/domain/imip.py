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

import hashlib
import re
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime
from typing import cast

from icalendar import Calendar

__all__ = ["INVITE_FILENAME", "build_imip", "build_notice", "calendar_method"]

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
    """Build the invite email for one recipient.

    `method` is written as the text/calendar part's ``method`` parameter and must equal the
    calendar's METHOD (RFC 6047 2.4): a mismatch makes clients ignore or misapply the invite,
    so it raises ValueError. `message_id` may be given with or without angle brackets; `date`
    becomes the Date header when given (the caller owns the clock).
    """
    found = calendar_method(calendar)
    if found is None or found != method.upper():
        raise ValueError(f"method {method!r} does not match the calendar's METHOD {found!r}")
    message_id = _message_id(message_id)
    msg = _headed(subject, sender, recipient, message_id, date, reply_to)

    alternative = MIMEPart(policy=_POLICY)
    alternative.make_alternative()
    alternative.set_boundary(_boundary(message_id, "alt"))
    # Quoted-printable keeps the bodies readable and can never contain a boundary ("=_").
    alternative.attach(_text_part(text, "plain"))
    alternative.attach(_text_part(html, "html"))
    inline = MIMEPart(policy=_POLICY)
    inline.set_content(
        calendar,
        maintype="text",
        subtype="calendar",
        cte="base64",  # base64 carries the calendar's CRLFs and folding through every relay
        params={"method": found, "charset": "utf-8"},
    )
    alternative.attach(inline)

    attachment = MIMEPart(policy=_POLICY)
    attachment.set_content(
        calendar,
        maintype="application",
        subtype="ics",
        cte="base64",
        disposition="attachment",
        filename=INVITE_FILENAME,
        params={"name": INVITE_FILENAME},
    )

    msg.make_mixed()
    msg.set_boundary(_boundary(message_id, "mixed"))
    # typeshed wants an EmailMessage here; a MIMEPart is what the stdlib means (no stray
    # MIME-Version header on every part).
    msg.attach(cast(EmailMessage, alternative))
    msg.attach(cast(EmailMessage, attachment))
    return msg


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
    """A plain notice (waitlist place, reminder): ``multipart/alternative`` text and HTML."""
    message_id = _message_id(message_id)
    msg = _headed(subject, sender, recipient, message_id, date, reply_to)
    msg.make_alternative()
    msg.set_boundary(_boundary(message_id, "alt"))
    msg.attach(cast(EmailMessage, _text_part(text, "plain")))
    msg.attach(cast(EmailMessage, _text_part(html, "html")))
    return msg


def _message_id(value: str) -> str:
    message_id = value.strip().strip("<>")
    if not message_id or "@" not in message_id or any(c in message_id for c in "<> \r\n"):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    return message_id


def _headed(
    subject: str,
    sender: str | Address,
    recipient: str | Address,
    message_id: str,
    date: datetime | None,
    reply_to: str | Address | None,
) -> EmailMessage:
    if date is not None and date.utcoffset() is None:
        raise ValueError("date must be an aware datetime")
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = recipient
    if reply_to is not None:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    if date is not None:
        msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{message_id}>"
    msg["MIME-Version"] = "1.0"
    # RFC 3834: keeps vacation responders quiet; calendar replies (iTIP REPLY) still flow.
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def _text_part(body: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    part.set_content(body, subtype=subtype, charset="utf-8", cte="quoted-printable")
    return part


def _boundary(message_id: str, kind: str) -> str:
    digest = hashlib.sha256(f"{kind}:{message_id}".encode()).hexdigest()[:32]
    return f"=_dropin_{kind}_{digest}"
