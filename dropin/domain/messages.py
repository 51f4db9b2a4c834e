"""What each email says: subject, plain text, HTML and the calendar it carries. Pure.

One function, :func:`compose`, turns an outbox event (what happened) plus the facts of the
session, the recipient's place and their personal links into a message. Words are plain and
calm; times are in the recipient's zone; only the recipient's own links appear; no other
member is ever named. In discreet mode subjects and calendars carry no group name or topic.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dropin.domain.entries import ACTIVE, Seat, SessionFacts, entry
from dropin.domain.ical import Method, PartStat, build_invite
from dropin.domain.states import MessageKind


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


@dataclass(frozen=True)
class _Said:
    """What every kind's wording may draw on."""

    name: str  # the session's title, or "Drop-in" in discreet mode
    at: str  # the start, in words, in the recipient's zone
    seat: Seat
    links: MemberLinks
    extra: str


@dataclass(frozen=True)
class _Draft:
    """One kind's wording, and the calendar method it carries (None: no calendar)."""

    subject: str
    lines: list[str]
    method: Method | None = None
    partstat: PartStat = "ACCEPTED"


def _booked(s: _Said) -> _Draft:
    return _Draft(
        f"Booked: {s.name}, {s.at}",
        ["Your place is booked.", f"When: {s.at}", *_join_lines(s.links), _cancel_line(s.links)],
        "REQUEST",
    )


def _promoted(s: _Said) -> _Draft:
    first = "Good news: a place has come free and it is yours."
    return _Draft(
        f"A place for you: {s.name}, {s.at}",
        [first, f"When: {s.at}", *_join_lines(s.links), _cancel_line(s.links)],
        "REQUEST",
    )


def _waitlisted(s: _Said) -> _Draft:
    position = s.seat.waitlist_position
    where = f" You are number {position}." if position else ""
    return _Draft(
        f"On the waitlist: {s.name}, {s.at}",
        [
            f"The session is full, so you are on the waitlist.{where}",
            "If a place frees up it is yours, and we will email you an invitation.",
            f"When: {s.at}",
            _leave_line(s.links),
        ],
    )


def _booking_cancelled(s: _Said) -> _Draft:
    return _Draft(
        f"Cancelled: your place, {s.name}, {s.at}",
        [
            "Your place is cancelled. Thank you for letting the group know.",
            f"It was: {s.at}",
            f"Changed your mind? Book again here: {s.links.page_url}",
        ],
        "CANCEL",
    )


def _rescheduled(s: _Said) -> _Draft:
    return _Draft(
        f"New time: {s.name}, {s.at}",
        [
            f"This drop-in has moved. The new time is {s.at}.",
            *_join_lines(s.links),
            _cancel_line(s.links),
        ],
        "REQUEST",
    )


def _session_cancelled(s: _Said) -> _Draft:
    return _Draft(
        f"Cancelled: {s.name}, {s.at}",
        [
            f"The drop-in on {s.at} has been cancelled by the organizer. We are sorry.",
            f"Other sessions: {s.links.page_url}",
        ],
        "CANCEL",
    )


def _assigned(s: _Said) -> _Draft:
    role = "lead" if s.seat.relation == "lead" else "co-facilitate"
    lines = [f"You are asked to {role} this drop-in.", f"When: {s.at}", *_join_lines(s.links)]
    if s.links.release_url:
        lines.append(f"Can't make it? One click and someone else is asked: {s.links.release_url}")
    return _Draft(f"You {role}: {s.name}, {s.at}", lines, "REQUEST", "NEEDS-ACTION")


def _lead_notice(s: _Said) -> _Draft:
    return _Draft(
        f"Please confirm you lead: {s.name}, {s.at}",
        [
            f"You are leading the drop-in on {s.at}. Please confirm you can.",
            f"Confirm in one click: {s.links.confirm_url or s.links.page_url}",
            f"Can't make it? One click and the rota finds someone: "
            f"{s.links.release_url or s.links.page_url}",
            "If we have not heard from you 72 hours before, your co-facilitator is asked to lead.",
            *_join_lines(s.links),
        ],
    )


def _released(s: _Said) -> _Draft:
    return _Draft(
        f"No longer facilitating: {s.name}, {s.at}",
        [f"You are no longer facilitating the drop-in on {s.at}. Thank you."],
        "CANCEL",
    )


def _swap_request(s: _Said) -> _Draft:
    return _Draft(
        f"Could you take my place? {s.name}, {s.at}",
        [
            f"{s.extra or 'A colleague'} asks if you can facilitate the drop-in on {s.at} "
            "in their place.",
            f"Yes, I'll do it (one click): {s.links.swap_url or s.links.page_url}",
            "If you can't, there is nothing to do.",
        ],
    )


def _organizer_alert(s: _Said) -> _Draft:
    return _Draft(
        f"No one can lead: {s.name}, {s.at}",
        [
            f"Nobody is available to lead the drop-in on {s.at}.",
            f"The rota says: {s.extra}" if s.extra else "The group has no facilitator free then.",
            "Please assign a lead (PUT /api/v1/sessions/<id>/facilitators), or cancel the session.",
        ],
    )


def _invitation(s: _Said) -> _Draft:
    return _Draft(
        f"Invitation: {s.name}, {s.at}",
        [
            "You are invited to the next drop-in.",
            f"When: {s.at}",
            f"Coming? Book your place in one click: {s.links.accept_url or s.links.page_url}",
            f"Not this time? Let us know: {s.links.decline_url or s.links.page_url}",
            f"Add all your drop-ins to your calendar: {s.links.feed_url}",
        ],
        "REQUEST",
        "NEEDS-ACTION",
    )


def _reminder(soon: str) -> Callable[[_Said], _Draft]:
    def draft(s: _Said) -> _Draft:
        return _Draft(
            f"Reminder: {s.name} {soon}, {s.at}",
            [
                f"A reminder: your drop-in is {soon}.",
                f"When: {s.at}",
                *_join_lines(s.links),
                _cancel_line(s.links),
            ],
        )

    return draft


def _links_changed(s: _Said) -> _Draft:
    return _Draft(
        f"New links: {s.name}",
        [
            "Your email address has been updated, so your personal links have changed too.",
            "The links in earlier emails no longer work; please use the ones below.",
            f"Add all your drop-ins to your calendar: {s.links.feed_url}",
            "If you added the old calendar link before, please replace it with this one.",
        ],
    )


# What each kind says. Every MessageKind has exactly one entry (tests check it).
WORDING: dict[MessageKind, Callable[[_Said], _Draft]] = {
    MessageKind.BOOKING_CONFIRMED: _booked,
    MessageKind.BOOKING_PROMOTED: _promoted,
    MessageKind.BOOKING_WAITLISTED: _waitlisted,
    MessageKind.BOOKING_CANCELLED: _booking_cancelled,
    MessageKind.SESSION_RESCHEDULED: _rescheduled,
    MessageKind.SESSION_CANCELLED: _session_cancelled,
    MessageKind.FACILITATOR_ASSIGNED: _assigned,
    MessageKind.LEAD_NOTICE: _lead_notice,
    MessageKind.FACILITATOR_RELEASED: _released,
    MessageKind.SWAP_REQUEST: _swap_request,
    MessageKind.ORGANIZER_ALERT: _organizer_alert,
    MessageKind.SESSION_INVITATION: _invitation,
    MessageKind.REMINDER_24H: _reminder("tomorrow"),
    MessageKind.REMINDER_1H: _reminder("in an hour"),
    MessageKind.LINKS_CHANGED: _links_changed,
}


def compose(
    kind: MessageKind,
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
    if kind not in WORDING:  # pragma: no cover - WORDING covers every MessageKind
        raise ValueError(f"unknown message kind {kind}")
    draft = WORDING[kind](_Said(name, at, seat, links, extra))
    lines = [*draft.lines, "Nothing is recorded. What is said in the group stays in the group."]
    calendar = None
    if draft.method is not None:
        # An invitation is not a place yet: in the calendar it is tentative, without a join link.
        shown = Seat("invited", seat.revision) if kind == MessageKind.SESSION_INVITATION else seat
        invite_seat = (
            shown
            if draft.method == "REQUEST"
            else Seat(
                "cancelled", seat.revision, updated_at=seat.updated_at, page_url=links.page_url
            )
        )
        event = entry(facts, _with_links(invite_seat, links), quiet=recipient.quiet)
        calendar = build_invite(
            event,
            method=draft.method,
            organizer_email=sender.email,
            organizer_name=from_name,
            attendee_email=recipient.email,
            attendee_name=recipient.display_name,
            partstat=draft.partstat,
            rsvp=draft.partstat == "NEEDS-ACTION",
            now=now,
        )
    return _written(from_name, hello, draft.subject, lines, links, calendar, draft.method)


def compose_about_member(
    kind: MessageKind, recipient: Recipient, links: MemberLinks, sender: Sender
) -> Composed:
    """A message about the member themselves, not a session (their links changed): no time,
    no calendar. ``sender.name`` is the group's name, never shown in discreet mode."""
    quiet = recipient.quiet
    name = from_name = "Drop-in" if quiet else sender.name
    draft = WORDING[kind](_Said(name, "", Seat("public"), links, ""))
    lines = [*draft.lines, "Nothing is recorded. What is said in the group stays in the group."]
    hello = f"Hello {recipient.display_name},"
    return _written(from_name, hello, draft.subject, lines, links, None, None)


def _written(
    from_name: str,
    hello: str,
    subject: str,
    lines: list[str],
    links: MemberLinks,
    calendar: bytes | None,
    method: Method | None,
) -> Composed:
    tail = [f"Your drop-ins: {links.page_url}"] if links.page_url else []
    text = "\n\n".join([hello, *lines, *tail]) + "\n"
    html_body = _html(hello, lines, links)
    return Composed(from_name, subject, text, html_body, calendar, method)


def _with_links(seat: Seat, links: MemberLinks) -> Seat:
    return Seat(
        relation=seat.relation,
        revision=seat.revision,
        waitlist_position=None,
        updated_at=seat.updated_at,
        join_url=links.join_url if seat.relation in ACTIVE else None,
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
