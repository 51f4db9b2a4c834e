"""dropin.domain.imip: the RFC 6047 invite email."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from dropin.domain.ical import CalendarEvent, build_invite
from dropin.domain.imip import INVITE_FILENAME, build_imip, calendar_method

NOW = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
START = datetime(2026, 1, 13, 19, 30, tzinfo=ZoneInfo("Europe/London"))
EVENT = CalendarEvent(
    uid="session-1@dropin.test",
    sequence=0,
    starts_at=START,
    ends_at=START + timedelta(minutes=75),
    timezone="Europe/London",
    summary="Drop-in",
    description="Join: https://dropin.test/j/7f3a",
    url="https://dropin.test/j/7f3a",
    last_modified=NOW,
)


def calendar(method: str = "REQUEST") -> bytes:
    return build_invite(
        EVENT,
        method=method,  # type: ignore[arg-type]
        organizer_email="circle@dropin.test",
        organizer_name="NVR circle",
        attendee_email="sam@example.test",
        attendee_name="Sam Ødegård",
        now=NOW,
    )


def message(method: str = "REQUEST", **kw: object) -> EmailMessage:
    args: dict[str, object] = {
        "subject": "Drop-in, Tuesday 13 January 19:30",
        "sender": "NVR circle <circle@dropin.test>",
        "recipient": "Sam Ødegård <sam@example.test>",
        "text": "Hello Sam,\nJoin: https://dropin.test/j/7f3a\n",
        "html": "<p>Hello Sam, <a href='https://dropin.test/j/7f3a'>join</a></p>",
        "method": method,
        "message_id": "invite-1.session-1@dropin.test",
        "date": NOW,
    }
    args.update(kw)
    if "calendar" not in args:
        args["calendar"] = calendar(method.upper())
    return build_imip(**args)  # type: ignore[arg-type]


def reparse(msg: EmailMessage) -> EmailMessage:
    """What a mail client sees: the message as sent, parsed back."""
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def shape(part: EmailMessage) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [shape(p) for p in part.iter_parts()])  # type: ignore[arg-type]
    return part.get_content_type()


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_structure(method: str) -> None:
    msg = reparse(message(method))
    assert shape(msg) == (
        "multipart/mixed",
        [
            ("multipart/alternative", ["text/plain", "text/html", "text/calendar"]),
            "application/ics",
        ],
    )


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_calendar_parts(method: str) -> None:
    msg = reparse(message(method))
    alternative, attachment = msg.iter_parts()
    *_, inline = alternative.iter_parts()  # type: ignore[attr-defined]
    assert inline.get_content_type() == "text/calendar"
    assert inline.get_param("method") == method
    assert inline.get_content_charset() == "utf-8"
    assert inline.get_content_disposition() is None  # inline, for the calendar client
    assert attachment.get_filename() == INVITE_FILENAME
    assert attachment.get_content_disposition() == "attachment"
    sent = calendar(method)
    assert inline.get_payload(decode=True) == sent  # byte for byte, CRLFs included
    assert attachment.get_payload(decode=True) == sent
    assert calendar_method(inline.get_payload(decode=True)) == method


def test_bodies_round_trip() -> None:
    msg = reparse(message())
    alternative, _ = msg.iter_parts()
    plain, html, _ = alternative.iter_parts()  # type: ignore[attr-defined]
    # On the wire every line break is CRLF (RFC 5322); the words are what was passed.
    assert plain.get_content() == "Hello Sam,\r\nJoin: https://dropin.test/j/7f3a\r\n"
    assert "href='https://dropin.test/j/7f3a'" in html.get_content()
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"


def test_headers() -> None:
    msg = reparse(message())
    assert msg["Subject"] == "Drop-in, Tuesday 13 January 19:30"
    assert msg["From"] == "NVR circle <circle@dropin.test>"
    assert msg["To"] == "Sam Ødegård <sam@example.test>"
    assert msg["Message-ID"] == "<invite-1.session-1@dropin.test>"
    assert msg["Date"] == "Mon, 01 Dec 2025 09:00:00 +0000"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Auto-Submitted"] == "auto-generated"
    raw = message().as_bytes()
    assert raw.isascii()  # non-ASCII names are RFC 2047-encoded
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_deterministic() -> None:
    assert message().as_bytes() == message().as_bytes()
    other = message(message_id="invite-2.session-1@dropin.test").as_bytes()
    assert other != message().as_bytes()


@pytest.mark.parametrize("given", ["<abc@dropin.test>", "abc@dropin.test", " <abc@dropin.test> "])
def test_message_id_forms(given: str) -> None:
    assert message(message_id=given)["Message-ID"] == "<abc@dropin.test>"


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a b@c", "a@b>\r\nBcc: x@y"])
def test_bad_message_id(bad: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        message(message_id=bad)


@pytest.mark.parametrize(
    "cal_method,param", [("REQUEST", "CANCEL"), ("CANCEL", "REQUEST"), ("REQUEST", "PUBLISH")]
)
def test_method_must_match_calendar(cal_method: str, param: str) -> None:
    with pytest.raises(ValueError, match="does not match"):
        message(calendar=calendar(cal_method), method=param)


def test_calendar_without_method_is_refused() -> None:
    bare = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nEND:VCALENDAR\r\n"
    assert calendar_method(bare) is None
    with pytest.raises(ValueError, match="does not match"):
        message(calendar=bare)


def test_lowercase_method_parameter_is_normalised() -> None:
    inline = list(reparse(message(method="request")).walk())[4]
    assert inline.get_param("method") == "REQUEST"


def test_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        message(date=datetime(2025, 12, 1))


def test_reply_to_and_no_date() -> None:
    msg = message(reply_to="replies@dropin.test", date=None)
    assert msg["Reply-To"] == "replies@dropin.test"
    assert msg["Date"] is None
