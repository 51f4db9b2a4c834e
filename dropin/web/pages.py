"""Pages for people following links: the join page and its data, the shared layout.

Plain HTML with a strict Content-Security-Policy (no inline scripts or styles). A bad link
gets a calm, clear page with a 4xx status, never a 500.
"""

from __future__ import annotations

import functools
import html
import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

import signaling
from dropin.errors import DropinError
from dropin.link_paths import JOIN
from dropin.services import join_page, links
from dropin.services.room_access import exchange
from dropin.web.render import json_response
from dropin.web.state import app_state, utcnow


class RevalidatedFiles(StaticFiles):
    """Static files a browser checks before each use (a 304 when unchanged, by ETag).

    The files carry no version in their names; without this a browser could keep an old
    module beside a new page after an upgrade and break the call."""

    def file_response(
        self,
        full_path: os.PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


STATIC = RevalidatedFiles(packages=[("dropin.web", "static")])
# The join page: plain HTML, CSS and JavaScript modules, no build step (signaling/static).
ROOM_STATIC = RevalidatedFiles(packages=[("signaling", "static")])
JOIN_HTML = Path(signaling.__file__).parent / "static" / "join.html"

# Links carry bearer tokens in their paths: never leak them to other sites, never cache.
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def page(title: str, body: str, status: int = 200, *, script: str | None = None) -> HTMLResponse:
    """A page in the shared layout; ``body`` must already be escaped."""
    extra = f'<script src="/static/{script}" defer></script>' if script else ""
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="/static/page.css">{extra}</head>
<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"""
    return HTMLResponse(document, status, headers=PAGE_HEADERS)


def error_page(exc: DropinError) -> HTMLResponse:
    """A calm page for a link that does not work, with the error's status."""
    return page(
        "This link does not work",
        f'<p class="problem">{html.escape(str(exc.detail))}.</p>'
        "<p>If you need a new link, ask the organizer of your group.</p>",
        exc.status,
    )


@functools.cache
def join_html() -> str:
    """The join page's HTML, read once (it is the same for every link)."""
    return JOIN_HTML.read_text(encoding="utf-8")


def join_headers(public_url: str) -> dict[str, str]:
    """Headers of the join page: strict CSP, no referrer, camera and microphone for it alone."""
    ws_origin = "ws" + public_url.removeprefix("http")
    return {
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src 'self' blob: mediastream:; connect-src 'self' {ws_origin}; "
            "font-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "Permissions-Policy": (
            "camera=(self), microphone=(self), autoplay=(self), display-capture=(), "
            "geolocation=(), payment=(), usb=(), interest-cohort=()"
        ),
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


async def join_landing(request: Request) -> Response:
    """The join page (a static app, ``signaling/static/join.html``) for a genuine link."""
    state = app_state(request)
    try:
        links.read_join_token(state.settings.secret_key, request.path_params["token"], utcnow())
    except DropinError as exc:
        return error_page(exc)
    return HTMLResponse(join_html(), headers=join_headers(state.settings.public_url))


async def join_page_info(request: Request) -> Response:
    """What the join page shows: the session, the member, whether the room is open."""
    state = app_state(request)
    info = await join_page.join_info(
        state.db, state.links, request.path_params["token"], now=utcnow()
    )
    following = info.next_session
    return json_response(
        {
            "status": info.status,
            "session_id": info.session_id,
            "title": info.title,
            "starts_at": info.starts_at.isoformat(),
            "ends_at": info.ends_at.isoformat(),
            "opens_at": info.opens_at.isoformat(),
            "seconds_until_open": info.seconds_until_open,
            "timezone": info.timezone,
            "when": info.when,
            "display_name": info.display_name,
            "role": info.role,
            "discreet": info.discreet,
            "next_session": None
            if following is None
            else {
                "title": following.title,
                "starts_at": following.starts_at.isoformat(),
                "when": following.when,
            },
            "page_url": info.page_url,
            "feed_url": info.feed_url,
        },
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def room_token(request: Request) -> Response:
    """Exchange a join link for a short-lived room token (docs/signaling.md)."""
    state = app_state(request)
    found = await exchange(
        state.db, state.settings.secret_key, request.path_params["token"], now=utcnow()
    )
    ws_url = "ws" + state.settings.public_url.removeprefix("http") + "/rooms/ws"
    return json_response(
        {
            "token": found.token,
            "expires_in": found.expires_in,
            "role": found.role,
            "session_id": found.session_id,
            "ws_url": ws_url,
        },
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def room_leave(request: Request) -> Response:
    """Leave the room by the join link: the page's "Leave" while its WebSocket was down, so
    the others do not see "reconnecting" for the whole grace window. 204 whether or not the
    member was in the room (leaving twice is fine); a genuine link is all it takes."""
    state = app_state(request)
    claim = links.read_join_token(state.settings.secret_key, request.path_params["token"], utcnow())
    if state.rooms is not None:
        state.rooms.leave(claim.session_id, claim.member_id)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


routes = [
    JOIN.route(join_landing, methods=["GET"]),
    # What the join page itself calls (relative to its own URL: signaling/static).
    Route(JOIN.path + "/leave", room_leave, methods=["POST"], name="join_leave"),
    Route(JOIN.path + "/info", join_page_info, methods=["GET"], name="join_info"),
    Route(JOIN.path + "/room-token", room_token, methods=["POST"], name="join_room_token"),
    Mount("/static", app=STATIC, name="static"),
    Mount("/rooms/static", app=ROOM_STATIC, name="room-static"),
]
