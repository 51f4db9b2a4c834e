"""Facilitators' one-click links: confirm / can't make it (``/h/``), accept a swap (``/s/``).

Like RSVP links, opening a link changes nothing by itself (mail scanners open links); the page
confirms itself in a browser with a POST, which is safe to repeat.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import Response

from dropin.errors import DropinError
from dropin.link_paths import HANDOFF, SWAP
from dropin.services import handoff as svc
from dropin.services import sessions
from dropin.web.member import local_time
from dropin.web.pages import error_page, page
from dropin.web.routes import path_for
from dropin.web.state import app_state, utcnow

# The POST routes the pages confirm themselves with (same paths as the links).
HANDOFF_ACT, SWAP_ACT = "handoff_apply", "swap_apply"

SAID = {
    "confirmed": "Thank you: you are confirmed.",
    "already_confirmed": "You had already confirmed. Thank you.",
    "released": "Thank you for letting us know. The rota has asked someone else.",
    "not_facilitating": "You are not facilitating this drop-in (any more): nothing to do.",
    "swapped": "Thank you: the drop-in is yours. You will get an invitation.",
    "swap_not_possible": "The colleague who asked is no longer in this drop-in: nothing changed.",
}


def _confirm_page(title: str, what: str, when: str, action: str, button: str) -> Response:
    return page(
        title,
        f"<p>{html.escape(what)}: {html.escape(when)}</p>"
        f'<form method="post" data-autosubmit action="{html.escape(action)}">'
        f'<button type="submit">{html.escape(button)}</button></form>',
        script="autosubmit.js",
    )


async def handoff_page(request: Request) -> Response:
    state = app_state(request)
    token = request.path_params["token"]
    try:
        link = svc.read_handoff(state.settings.secret_key, token, utcnow())
        view = await sessions.get_session(state.db, link.session_id)
    except DropinError as exc:
        return error_page(exc)
    when = local_time(view.starts_at, view.timezone) + f" ({view.timezone})"
    action = path_for(request, HANDOFF_ACT, token=token)
    if link.step == "confirm":
        return _confirm_page("Confirm you lead", view.title, when, action, "I'll lead it")
    return _confirm_page("Can't make it", view.title, when, action, "I can't make it")


async def handoff_act(request: Request) -> Response:
    state = app_state(request)
    now = utcnow()
    try:
        link = svc.read_handoff(state.settings.secret_key, request.path_params["token"], now)
        outcome = await svc.follow_link(state.db, link, now=now)
    except DropinError as exc:
        return error_page(exc)
    return page("Thank you", f'<p class="notice" role="status">{html.escape(SAID[outcome])}</p>')


async def swap_page(request: Request) -> Response:
    state = app_state(request)
    token = request.path_params["token"]
    try:
        offer = svc.read_swap(state.settings.secret_key, token, utcnow())
        view = await sessions.get_session(state.db, offer.session_id)
    except DropinError as exc:
        return error_page(exc)
    when = local_time(view.starts_at, view.timezone) + f" ({view.timezone})"
    return _confirm_page(
        "Take a colleague's place",
        view.title,
        when,
        path_for(request, SWAP_ACT, token=token),
        "Yes, I'll do it",
    )


async def swap_act(request: Request) -> Response:
    state = app_state(request)
    try:
        outcome = await svc.accept_swap(
            state.db, state.settings.secret_key, request.path_params["token"], now=utcnow()
        )
    except DropinError as exc:
        return error_page(exc)
    return page("Thank you", f'<p class="notice" role="status">{html.escape(SAID[outcome])}</p>')


routes = [
    HANDOFF.route(handoff_page, methods=["GET"]),
    HANDOFF.route(handoff_act, methods=["POST"], name=HANDOFF_ACT),
    SWAP.route(swap_page, methods=["GET"]),
    SWAP.route(swap_act, methods=["POST"], name=SWAP_ACT),
]
