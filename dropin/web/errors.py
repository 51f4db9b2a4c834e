"""The one mapping from errors to HTTP responses: ``{"error": code, "detail": ...}``."""

from __future__ import annotations

import logging
import traceback

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dropin.errors import DropinError
from dropin.web.pages import page
from dropin.web.render import json_response

log = logging.getLogger("dropin.web")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


async def dropin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DropinError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return json_response({"error": exc.code, "detail": exc.detail}, exc.status, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return json_response(
        {"error": code, "detail": exc.detail},
        exc.status_code,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # Never echo internals. Log the handler's name, not the path: join, feed and page paths
    # carry personal tokens. (Bound SQL parameters are hidden by the engine.)
    endpoint = request.scope.get("endpoint")
    where = getattr(endpoint, "__qualname__", "unknown handler")
    # Frames only: an exception's message may quote data (PostgreSQL's DETAIL quotes keys).
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method, where, frames)
    if not request.url.path.startswith("/api/"):
        return page(
            "Something went wrong",
            "<p>Sorry, something went wrong on our side. Please try again in a minute.</p>",
            500,
        )
    return json_response({"error": "internal_error", "detail": "something went wrong"}, 500)


EXCEPTION_HANDLERS = {
    DropinError: dropin_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
