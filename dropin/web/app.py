"""``create_app(settings)``: the one Starlette application (API, pages, rooms)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from dropin.config import Settings
from dropin.services import outbox
from dropin.services.room_access import DatabaseRoomAccess, room_settings
from dropin.store.db import Database
from dropin.web import api, feeds, handoff, member, pages
from dropin.web.dispatch import OutboxNudger
from dropin.web.errors import EXCEPTION_HANDLERS
from dropin.web.openapi import openapi_spec
from dropin.web.render import json_response
from dropin.web.state import AppState, app_state, utcnow
from signaling import seam, ws
from signaling.hub import RoomHub


async def healthz(request: Request) -> Response:
    """Liveness plus what an operator needs to see: database, outbox queue, worker heartbeat."""
    state = app_state(request)
    try:
        async with state.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        queue = await outbox.stats(state.db, now=utcnow())
    except Exception:  # the database being down is what this endpoint reports
        return json_response({"status": "unavailable", "database": "down"}, 503)
    body: dict[str, object] = {
        "status": "ok",
        "database": "ok",
        "outbox": {
            "pending": queue.pending,
            "sending": queue.sending,
            "failed": queue.failed,
            "oldest_pending_seconds": queue.oldest_pending_seconds,
        },
    }
    if state.nudger is not None:
        body["worker"] = await state.nudger.worker_health()
    if state.rooms is not None:
        live = state.rooms.stats()
        body["rooms"] = {"open": live["rooms"], "connections": live.get("connections", 0)}
    return json_response(body)


async def openapi(request: Request) -> Response:
    return json_response(openapi_spec(app_state(request).settings.public_url))


def create_app(settings: Settings, *, db: Database | None = None) -> Starlette:
    """The application. ``db`` may be passed in (tests); otherwise the lifespan makes one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState | RoomHub]]:
        database = db or Database(settings.database_url)
        nudger = OutboxNudger(settings.redis_url) if settings.redis_url else None
        if nudger is not None:
            await nudger.start()
            # Enqueue after commit: every transaction that wrote outbox rows says so.
            database.on_outbox_rows = nudger.nudge
        seam.use_host_addresses(settings.media_addresses)
        hub = RoomHub(
            DatabaseRoomAccess(database), settings.secret_key, room_settings(settings), clock=utcnow
        )
        state = AppState(settings=settings, db=database, nudger=nudger, rooms=hub)
        try:
            yield {"dropin": state, ws.HUB_STATE_KEY: hub}
        finally:
            await hub.close()
            if nudger is not None:
                database.on_outbox_rows = None
                await nudger.stop()
            if db is None:
                await database.dispose()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Mount("/api/v1", routes=api.routes),
            *feeds.routes,
            *member.routes,
            *handoff.routes,
            *pages.routes,
            *ws.routes,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
