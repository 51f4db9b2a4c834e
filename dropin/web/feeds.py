"""Calendar feed endpoints: ``/feeds/{token}.ics`` (a member's) and ``/feeds/groups/{id}.ics``.

Conditional requests are answered from the feed's version alone (304 without a build).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropin.link_paths import MEMBER_FEED
from dropin.services import feeds
from dropin.web import ids  # noqa: F401 - the {name:id} path convertor
from dropin.web.state import app_state, utcnow

CALENDAR = "text/calendar; charset=utf-8"


def _not_modified(request: Request, feed: feeds.Feed) -> bool:
    tags = request.headers.get("if-none-match")
    if tags is not None:
        wanted = {t.strip().removeprefix("W/") for t in tags.split(",")}
        return "*" in wanted or feed.etag in wanted
    since = request.headers.get("if-modified-since")
    if since:
        try:
            parsed = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if parsed.tzinfo is None:
            return False
        return feed.last_modified.replace(microsecond=0) <= parsed
    return False


def _respond(request: Request, feed: feeds.Feed, filename: str) -> Response:
    headers = {
        "ETag": feed.etag,
        "Last-Modified": _http_date(feed.last_modified),
        # Personal: never stored by shared caches; apps revalidate with the ETag.
        "Cache-Control": "private, max-age=300",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    if _not_modified(request, feed):
        return Response(status_code=304, headers=headers)
    headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return Response(feed.body, headers=headers, media_type=CALENDAR)


def _http_date(value: datetime) -> str:
    return format_datetime(value.replace(microsecond=0), usegmt=True)


async def member_feed(request: Request) -> Response:
    state = app_state(request)
    feed = await feeds.member_feed(
        state.db, state.links, request.path_params["token"], now=utcnow(), cache=state.feed_cache
    )
    return _respond(request, feed, "dropin.ics")


async def group_feed(request: Request) -> Response:
    state = app_state(request)
    feed = await feeds.group_feed(
        state.db,
        request.path_params["group_id"],
        now=utcnow(),
        cache=state.feed_cache,
        public_url=state.settings.public_url,
    )
    return _respond(request, feed, "dropin-group.ics")


GROUP_FEED = "group_feed"

routes = [
    Route("/feeds/groups/{group_id:id}.ics", group_feed, methods=["GET"], name=GROUP_FEED),
    MEMBER_FEED.route(member_feed, methods=["GET"]),
]
