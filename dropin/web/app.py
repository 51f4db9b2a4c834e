"""``create_app(settings)``: the one Starlette application (API, pages, later rooms)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from dropin.config import Settings
from dropin.store.db import Database
from dropin.web import api, feeds, member, pages
from dropin.web.errors import EXCEPTION_HANDLERS
from dropin.web.openapi import openapi_spec
from dropin.web.render import json_response
from dropin.web.state import AppState, app_state


async def healthz(request: Request) -> Response:
    state = app_state(request)
    try:
        async with state.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # the database being down is what this endpoint reports
        return json_response({"status": "unavailable", "database": "down"}, 503)
    return json_response({"status": "ok", "database": "ok"})


async def openapi(request: Request) -> Response:
    return json_response(openapi_spec(app_state(request).settings.public_url))


def create_app(settings: Settings, *, db: Database | None = None) -> Starlette:
    """The application. ``db`` may be passed in (tests); otherwise the lifespan makes one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        database = db or Database(settings.database_url)
        try:
            yield {"dropin": AppState(settings=settings, db=database)}
        finally:
            if db is None:
                await database.dispose()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Mount("/api/v1", routes=api.routes),
            *feeds.routes,
            *member.routes,
            *pages.routes,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
