"""What each email says: subject, plain text, HTML and the calendar it carries. Pure.

One function, :func:`compose`, turns an outbox event (what happened) plus the facts of the
session, the recipient's place and their personal links into a message. Words are plain and
calm; times are in the recipient's zone; only the recipient's own links appear; no other
member is ever named. In discreet mode subjects and calendars carry no group name or topic.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dropin.domain.entries import Seat, SessionFacts, entry
from dropin.domain.ical import Method, PartStat, build_invite
from dropin.domain.states import MessageKind

# Every kind of outbox event a message exists for (dropin/domain/states.py).
Kind = MessageKind


@dataclass(frozen=True)
class Recipient:
    display_name: str
    email: str
    timezone: str  # the member's own zone, else the group's
    quiet: bool  # discreet mode in force for this member


@dataclass(frozen=True)
class Sender:
    """The group's sending address: the ORGANIZER of invites and the From of mail."""

    email: str
    name: str


@dataclass(frozen=True)
class MemberLinks:
    page_url: str
    feed_url: str
    join_url: str | None = None
    accept_url: str | None = None
    decline_url: str | None = None
    # Facilitators: confirm leading, say they can't make it, accept a colleague's swap.
    confirm_url: str | None = None
    release_url: str | None = None
    swap_url: str | None = None


@dataclass(frozen=True)
class Composed:
    from_name: str  # the display name for From: neutral in discreet mode
    subject: str
    text: str
    html: str
    calendar: bytes | None
    method: Method | None


def when(instant: datetime, tz: str) -> str:
    """A start time in words, in ``tz``: "Tuesday 14 March 2028 at 19:30 (Europe/London)"."""
    local = instant.astimezone(ZoneInfo(tz))
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} ({tz})"


def compose(
    kind: Kind,
    facts: SessionFacts,
    seat: Seat,
    recipient: Recipient,
    links: MemberLinks,
    sender: Sender,
    *,
    now: datetime,
    extra: str = "",
) -> Composed:
    """The message owed to ``recipient`` because of ``kind``.

    ``extra``: the asking colleague's name (swap_request) or the rota's note (organizer_alert).
    """
    name = "Drop-in" if recipient.quiet else facts.title
    # In discreet mode even the sender's display name must not say what the group is about.
    from_name = "Drop-in" if recipient.quiet else sender.name
    at = when(facts.starts_at, recipient.timezone)
    hello = f"Hello {recipient.display_name},"
    lines: list[str]
    method: Method | None = None
    partstat: PartStat = "ACCEPTED"
    if kind in ("booking_confirmed", "booking_promoted"):
        first = (
            "Good news: a place has come free and it is yours."
            if kind == "booking_promoted"
            else "Your place is booked."
        )
        subject = f"{'A place for you' if kind == 'booking_promoted' else 'Booked'}: {name}, {at}"
        lines = [first, f"When: {at}", *_join_lines(links), _cancel_line(links)]
        method = "REQUEST"
    elif kind == "booking_waitlisted":
        subject = f"On the waitlist: {name}, {at}"
        where = f" You are number {seat.waitlist_position}." if seat.waitlist_position else ""
        lines = [
            f"The session is full, so you are on the waitlist.{where}",
            "If a place frees up it is yours, and we will email you an invitation.",
            f"When: {at}",
            _leave_line(links),
        ]
    elif kind == "booking_cancelled":
        subject = f"Cancelled: your place, {name}, {at}"
        lines = [
            "Your place is cancelled. Thank you for letting the group know.",
            f"It was: {at}",
            f"Changed your mind? Book again here: {links.page_url}",
        ]
        method = "CANCEL"
    elif kind == "session_rescheduled":
        subject = f"New time: {name}, {at}"
        lines = [
            f"This drop-in has moved. The new time is {at}.",
            *_join_lines(links),
            _cancel_line(links),
        ]
        method = "REQUEST"
    elif kind == "session_cancelled":
        subject = f"Cancelled: {name}, {at}"
        lines = [
            f"The drop-in on {at} has been cancelled by the organizer. We are sorry.",
            f"Other sessions: {links.page_url}",
        ]
        method = "CANCEL"
    elif kind == "facilitator_assigned":
        role = "lead" if seat.relation == "lead" else "co-facilitate"
        subject = f"You {role}: {name}, {at}"
        lines = [f"You are asked to {role} this drop-in.", f"When: {at}", *_join_lines(links)]
        if links.release_url:
            lines.append(f"Can't make it? One click and someone else is asked: {links.release_url}")
        method = "REQUEST"
        partstat = "NEEDS-ACTION"
    elif kind == "lead_notice":
        subject = f"Please confirm you lead: {name}, {at}"
        lines = [
            f"You are leading the drop-in on {at}. Please confirm you can.",
            f"Confirm in one click: {links.confirm_url or links.page_url}",
            f"Can't make it? One click and the rota finds someone: "
            f"{links.release_url or links.page_url}",
            "If we have not heard from you 72 hours before, your co-facilitator is asked to lead.",
            *_join_lines(links),
        ]
    elif kind == "facilitator_released":
        subject = f"No longer facilitating: {name}, {at}"
        lines = [f"You are no longer facilitating the drop-in on {at}. Thank you."]
        method = "CANCEL"
    elif kind == "swap_request":
        subject = f"Could you take my place? {name}, {at}"
        lines = [
            f"{extra or 'A colleague'} asks if you can facilitate the drop-in on {at} "
            "in their place.",
            f"Yes, I'll do it (one click): {links.swap_url or links.page_url}",
            "If you can't, there is nothing to do.",
        ]
    elif kind == "organizer_alert":
        subject = f"No one can lead: {name}, {at}"
        lines = [
            f"Nobody is available to lead the drop-in on {at}.",
            f"The rota says: {extra}" if extra else "The group has no facilitator free then.",
            "Please assign a lead (PUT /api/v1/sessions/<id>/facilitators), or cancel the session.",
        ]
    elif kind == "session_invitation":
        subject = f"Invitation: {name}, {at}"
        lines = [
            "You are invited to the next drop-in.",
            f"When: {at}",
            f"Coming? Book your place in one click: {links.accept_url or links.page_url}",
            f"Not this time? Let us know: {links.decline_url or links.page_url}",
            f"Add all your drop-ins to your calendar: {links.feed_url}",
        ]
        method = "REQUEST"
        partstat = "NEEDS-ACTION"
    elif kind in ("reminder_24h", "reminder_1h"):
        soon = "tomorrow" if kind == "reminder_24h" else "in an hour"
        subject = f"Reminder: {name} {soon}, {at}"
        lines = [
            f"A reminder: your drop-in is {soon}.",
            f"When: {at}",
            *_join_lines(links),
            _cancel_line(links),
        ]
    else:  # pragma: no cover - Kind is exhaustive
        raise ValueError(f"unknown message kind {kind}")
    lines.append("Nothing is recorded. What is said in the group stays in the group.")
    calendar = None
    if method is not None:
        # An invitation is not a place yet: in the calendar it is tentative, without a join link.
        shown = Seat("invited", seat.revision) if kind == "session_invitation" else seat
        invite_seat = (
            shown
            if method == "REQUEST"
            else Seat(
                "cancelled", seat.revision, updated_at=seat.updated_at, page_url=links.page_url
            )
        )
        event = entry(facts, _with_links(invite_seat, links), quiet=recipient.quiet)
        calendar = build_invite(
            event,
            method=method,
            organizer_email=sender.email,
            organizer_name=from_name,
            attendee_email=recipient.email,
            attendee_name=recipient.display_name,
            partstat=partstat,
            rsvp=partstat == "NEEDS-ACTION",
            now=now,
        )
    tail = [f"Your drop-ins: {links.page_url}"] if links.page_url else []
    text = "\n\n".join([hello, *lines, *tail]) + "\n"
    return Composed(from_name, subject, text, _html(hello, lines, links), calendar, method)


def _with_links(seat: Seat, links: MemberLinks) -> Seat:
    return Seat(
        relation=seat.relation,
        revision=seat.revision,
        waitlist_position=None,
        updated_at=seat.updated_at,
        join_url=links.join_url if seat.relation in ("confirmed", "lead", "co") else None,
        page_url=links.page_url,
    )


def _join_lines(links: MemberLinks) -> list[str]:
    found = []
    if links.join_url:
        found.append(f"Join from this personal link (it opens 15 minutes before): {links.join_url}")
    found.append(f"Add all your drop-ins to your calendar: {links.feed_url}")
    return found


def _cancel_line(links: MemberLinks) -> str:
    if links.decline_url:
        return f"Can't make it? Cancel your place in one click: {links.decline_url}"
    return f"Can't make it? Cancel your place here: {links.page_url}"


def _leave_line(links: MemberLinks) -> str:
    if links.decline_url:
        return f"To leave the waitlist: {links.decline_url}"
    return f"To leave the waitlist: {links.page_url}"


def _html(hello: str, lines: list[str], links: MemberLinks) -> str:
    def para(line: str) -> str:
        label, sep, url = line.rpartition(": ")
        if sep and url.startswith(("http://", "https://", "webcal://")):
            return (
                f'<p>{html.escape(label)}: <a href="{html.escape(url)}">{html.escape(url)}</a></p>'
            )
        return f"<p>{html.escape(line)}</p>"

    tail = [f"Your drop-ins: {links.page_url}"] if links.page_url else []
    body = "".join(para(line) for line in [hello, *lines, *tail])
    return (
        '<!doctype html><html><body style="font-family:system-ui,sans-serif;'
        f'line-height:1.5;color:#1d2a33">{body}</body></html>'
    )
