"""The member's "my drop-ins" page (``/m/{token}``) and RSVP links (``/r/{token}``)."""

from __future__ import annotations

import html
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dropin.errors import DropinError
from dropin.link_paths import MEMBER_PAGE, RSVP
from dropin.services import member_page as svc
from dropin.services import sessions
from dropin.web import ids  # noqa: F401 - the {name:id} path convertor
from dropin.web.pages import PAGE_HEADERS, error_page, page
from dropin.web.routes import path_for
from dropin.web.state import app_state, utcnow

# The page's buttons (routes of this module only).
BOOK, CANCEL = "member_book", "member_cancel"

NOTICES = {
    "booked": "Your place is booked. See you there.",
    "waitlisted": "The session is full, so you are on the waitlist. If a place frees up, it is "
    "yours and we will email you.",
    "cancelled": "Done: your place is cancelled. Thank you for letting the group know.",
    "already_booked": "You already have a place (or a waitlist place) in this session.",
    "nothing_to_cancel": "There was no place to cancel: nothing has changed.",
}
STATUS_TEXT = {
    "confirmed": "You have a place",
    "waitlisted": "On the waitlist",
    "lead": "You are leading",
    "co": "You are co-facilitating",
    None: "No place booked",
}


def local_time(value: datetime, tz: str) -> str:
    """A start time for pages: \"Tuesday 14 March, 19:30\" in ``tz``."""
    return value.astimezone(ZoneInfo(tz)).strftime("%A %d %B, %H:%M")


def _button(action: str, label: str, *, secondary: bool = False) -> str:
    cls = ' class="secondary"' if secondary else ""
    return (
        f'<form method="post" action="{html.escape(action)}">'
        f'<button type="submit"{cls}>{html.escape(label)}</button></form>'
    )


async def member_home(request: Request) -> Response:
    state = app_state(request)
    token = request.path_params["token"]
    try:
        found = await svc.load_page(state.db, state.links, token, now=utcnow())
    except DropinError as exc:
        return error_page(exc)
    parts: list[str] = [
        f"<p>Hello {html.escape(found.display_name)}. Times are shown in "
        f"{html.escape(found.timezone)}.</p>"
    ]
    notice = NOTICES.get(request.query_params.get("done", ""))
    if notice:
        parts.append(f'<p class="notice" role="status">{html.escape(notice)}</p>')
    parts.append("<h2>Upcoming drop-ins</h2>")
    if not found.entries:
        parts.append('<p class="muted">No sessions are scheduled yet.</p>')
    parts.append('<ul class="sessions">')
    for e in found.entries:
        s = e.session
        status = STATUS_TEXT.get(e.relation, "")
        if e.relation == "waitlisted" and e.waitlist_position:
            status = f"On the waitlist (number {e.waitlist_position})"
        if s.status == "cancelled":
            status = "Cancelled by the organizer"
        actions: list[str] = []
        if e.join_url:
            actions.append(f'<a class="button" href="{html.escape(e.join_url)}">Join now</a>')
        if s.status == "scheduled":
            if e.relation is None:
                full = s.confirmed_count >= s.capacity
                actions.append(
                    _button(
                        path_for(request, BOOK, token=token, session_id=s.id),
                        "Join the waitlist" if full else "Book a place",
                    )
                )
            elif e.relation in ("confirmed", "waitlisted"):
                label = "Cancel my place" if e.relation == "confirmed" else "Leave the waitlist"
                action = path_for(request, CANCEL, token=token, session_id=s.id)
                actions.append(_button(action, label, secondary=True))
        parts.append(
            f'<li><div class="when">{html.escape(local_time(s.starts_at, found.timezone))}</div>'
            f"<div>{html.escape(s.title)}</div>"
            f'<div class="status">{html.escape(status)}</div>'
            f'<div class="actions">{"".join(actions)}</div></li>'
        )
    parts.append("</ul>")
    feed = found.feed_url
    webcal = "webcal://" + feed.split("://", 1)[1]
    google = "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe="")
    parts.append(
        "<h2>Put your drop-ins in your calendar</h2>"
        '<p class="muted">Your calendar then updates by itself when a session moves or is '
        "cancelled. The link is personal: please do not share it.</p>"
        '<div class="actions">'
        f'<a class="button" href="{html.escape(webcal)}">Subscribe (Apple, Outlook)</a>'
        f'<a class="button secondary" href="{html.escape(google)}" rel="noreferrer">'
        "Add to Google Calendar</a>"
        f'<a class="button secondary" href="{html.escape(feed)}" download="dropin.ics">'
        "Download .ics</a></div>"
    )
    return page("Your drop-ins", "".join(parts))


async def member_book(request: Request) -> Response:
    return await _act(request, "book")


async def member_cancel(request: Request) -> Response:
    return await _act(request, "cancel")


async def _act(request: Request, what: str) -> Response:
    state = app_state(request)
    token, session_id = request.path_params["token"], request.path_params["session_id"]
    try:
        if what == "book":
            view = await svc.book_from_page(state.db, state.links, token, session_id, now=utcnow())
            done = "booked" if view.status == "confirmed" else "waitlisted"
        else:
            cancelled = await svc.cancel_from_page(
                state.db, state.links, token, session_id, now=utcnow()
            )
            done = "cancelled" if cancelled else "nothing_to_cancel"
    except DropinError as exc:
        if exc.code == "already_booked":
            done = "already_booked"
        else:
            return error_page(exc)
    # Post/redirect/get: a reload never repeats the action.
    home = path_for(request, MEMBER_PAGE.name, token=token)
    return RedirectResponse(f"{home}?done={done}", 303, headers=PAGE_HEADERS)


async def rsvp_confirm(request: Request) -> Response:
    """The page an email's accept / decline link opens; it confirms itself in a browser."""
    state = app_state(request)
    now = utcnow()
    try:
        rsvp = svc.read_rsvp(state.settings.secret_key, request.path_params["token"], now)
        view = await sessions.get_session(state.db, rsvp.session_id)
    except DropinError as exc:
        return error_page(exc)
    what = "Book my place" if rsvp.action == "accept" else "Cancel my place"
    action = path_for(request, "rsvp_apply", token=rsvp_token(request))
    text = local_time(view.starts_at, view.timezone) + f" ({view.timezone})"
    return page(
        "Confirm" if rsvp.action == "accept" else "Cancel your place",
        f"<p>{html.escape(view.title)}: {html.escape(text)}</p>"
        f'<form method="post" data-autosubmit action="{html.escape(action)}">'
        f'<button type="submit">{what}</button></form>',
        script="autosubmit.js",
    )


def rsvp_token(request: Request) -> str:
    return str(request.path_params["token"])


async def rsvp_apply(request: Request) -> Response:
    state = app_state(request)
    now = utcnow()
    try:
        rsvp = svc.read_rsvp(state.settings.secret_key, rsvp_token(request), now)
        outcome = await svc.apply_rsvp(state.db, rsvp, now=now)
    except DropinError as exc:
        return error_page(exc)
    title = {
        "booked": "You're booked",
        "waitlisted": "You're on the waitlist",
        "cancelled": "Place cancelled",
    }.get(outcome, "Nothing changed")
    return page(title, f'<p class="notice" role="status">{html.escape(NOTICES[outcome])}</p>')


routes = [
    MEMBER_PAGE.route(member_home, methods=["GET"]),
    Route(
        MEMBER_PAGE.path + "/sessions/{session_id:id}/book",
        member_book,
        methods=["POST"],
        name=BOOK,
    ),
    Route(
        MEMBER_PAGE.path + "/sessions/{session_id:id}/cancel",
        member_cancel,
        methods=["POST"],
        name=CANCEL,
    ),
    RSVP.route(rsvp_confirm, methods=["GET"]),
    RSVP.route(rsvp_apply, methods=["POST"], name="rsvp_apply"),
]
