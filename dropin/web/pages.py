"""Server-rendered pages for people following links (join link landing page for now).

Plain HTML, no scripts. A bad link gets a calm, clear page with a 4xx status, never a 500.
"""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from dropin.errors import DropinError
from dropin.services import links, sessions
from dropin.web.state import app_state, utcnow

# Join links carry a bearer token in the path: never leak it to other sites.
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A minimal, mobile-friendly HTML page; ``body`` must already be escaped."""
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;
line-height:1.5;color:#1d2a33}}h1{{font-size:1.4rem}}</style></head>
<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"""
    return HTMLResponse(document, status, headers=PAGE_HEADERS)


async def join_landing(request: Request) -> Response:
    state = app_state(request)
    now = utcnow()
    try:
        claim = links.read_join_token(state.settings.secret_key, request.path_params["token"], now)
        view = await sessions.get_session(state.db, claim.session_id)
        role = await links.member_role(state.db, claim.session_id, claim.member_id)
    except DropinError as exc:
        return page(
            "This link does not work",
            f"<p>{html.escape(str(exc.detail))}.</p>"
            "<p>Ask the organizer of your group for a new link.</p>",
            exc.status,
        )
    if view.status == "cancelled":
        return page("This drop-in is cancelled", "<p>This session has been cancelled.</p>", 410)
    if role is None:
        return page(
            "This link does not work", "<p>You no longer have a place in this session.</p>", 403
        )
    local = view.starts_at.astimezone(ZoneInfo(view.timezone))
    when = local.strftime("%A %d %B %Y, %H:%M") + f" ({view.timezone})"
    return page(
        view.title,
        f"<p>{html.escape(when)}</p><p>The room opens 15 minutes before the start. "
        "Keep this link: it is personal to you.</p>",
    )


routes = [Route("/j/{token}", join_landing, methods=["GET"])]
