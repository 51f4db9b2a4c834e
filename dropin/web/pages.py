"""Server-rendered pages for people following links: the join landing page, shared layout.

Plain HTML with a strict Content-Security-Policy (no inline scripts or styles). A bad link
gets a calm, clear page with a 4xx status, never a 500.
"""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dropin.errors import DropinError
from dropin.services import links, sessions
from dropin.web.render import json_response
from dropin.web.state import app_state, utcnow
from signaling.access import exchange

STATIC = StaticFiles(packages=[("dropin.web", "static")])

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


async def join_landing(request: Request) -> Response:
    state = app_state(request)
    now = utcnow()
    try:
        admission = await links.admit(
            state.db, state.settings.secret_key, request.path_params["token"], now
        )
        view = await sessions.get_session(state.db, admission.session_id)
    except DropinError as exc:
        return error_page(exc)
    local = view.starts_at.astimezone(ZoneInfo(view.timezone))
    text = local.strftime("%A %d %B %Y, %H:%M") + f" ({view.timezone})"
    return page(
        view.title,
        f"<p>{html.escape(text)}</p><p>The room opens 15 minutes before the start. "
        "Keep this link: it is personal to you.</p>",
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


routes = [
    Route("/j/{token}", join_landing, methods=["GET"]),
    Route("/j/{token}/room-token", room_token, methods=["POST"]),
    Mount("/static", app=STATIC, name="static"),
]
