"""Test helpers: an API client on the real app, and builders for common set-ups."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from dropin.config import Settings
from dropin.services import keys
from dropin.store.db import Database
from dropin.web.app import create_app


class Api:
    """An httpx client on the app with the organizer key set, plus shortcuts."""

    last_state: Any = None
    asgi_get: Any = None

    def __init__(self, client: httpx.AsyncClient, key: str, db: Database, settings: Settings):
        self.client = client
        self.key = key
        self.db = db
        self.settings = settings

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, settings: Settings, db: Database) -> AsyncIterator[Api]:
        app = create_app(settings, db=db)
        new = await keys.create_key(db, "tests", now=datetime.now(UTC))
        async with app.router.lifespan_context(app) as state:
            # For benchmarks and tests that look inside the running app's state.
            cls.last_state = (state or {}).get("dropin")

            async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
                # What an ASGI server does with the lifespan's state.
                scope["state"] = dict(state or {})
                await app(scope, receive, send)

            async def asgi_get(path: str, headers: dict[str, str] | None = None) -> int:
                """GET ``path`` by calling the app directly; returns the status (benchmarks)."""
                status = 0
                scope = {
                    "type": "http",
                    "http_version": "1.1",
                    "method": "GET",
                    "scheme": "http",
                    "path": path,
                    "raw_path": path.encode(),
                    "query_string": b"",
                    "root_path": "",
                    "server": ("127.0.0.1", 8000),
                    "client": ("127.0.0.1", 1),
                    "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
                }

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": b"", "more_body": False}

                async def send(message: Any) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]

                await with_state(scope, receive, send)
                return status

            transport = httpx.ASGITransport(app=with_state, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://127.0.0.1:8000",
                headers={"Authorization": f"Bearer {new.key}"},
            ) as client:
                api = cls(client, new.key, db, settings)
                api.asgi_get = asgi_get
                yield api

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return await self.client.request(method, url, **kw)

    async def ok(self, method: str, url: str, status: int = 200, **kw: Any) -> Any:
        response = await self.client.request(method, url, **kw)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    async def group(self, timezone: str = "Europe/London", **kw: Any) -> dict[str, Any]:
        body = {"name": "Monthly NVR parents circle", "timezone": timezone, **kw}
        return await self.ok("POST", "/api/v1/groups", 201, json=body)  # type: ignore[no-any-return]

    async def member(
        self, group_id: str, name: str, role: str = "parent", email: str | None = None
    ) -> dict[str, Any]:
        body = {"display_name": name, "email": email or f"{name.lower()}@example.org", "role": role}
        return await self.ok(  # type: ignore[no-any-return]
            "POST", f"/api/v1/groups/{group_id}/members", 201, json=body
        )

    async def series(self, group_id: str, **kw: Any) -> dict[str, Any]:
        body = {
            "title": "Evening drop-in",
            "rrule": "FREQ=MONTHLY;BYDAY=2TU",
            "first_start": "2026-01-13T19:30:00",
            "duration_minutes": 75,
            "capacity": 10,
            **kw,
        }
        return await self.ok(  # type: ignore[no-any-return]
            "POST", f"/api/v1/groups/{group_id}/series", 201, json=body
        )

    async def sessions(self, group_id: str, **params: str) -> list[dict[str, Any]]:
        data = await self.ok("GET", f"/api/v1/groups/{group_id}/sessions", params=params)
        return data["sessions"]  # type: ignore[no-any-return]

    async def book(self, session_id: str, member_id: str, status: int = 201) -> dict[str, Any]:
        return await self.ok(  # type: ignore[no-any-return]
            "POST", f"/api/v1/sessions/{session_id}/bookings", status, json={"member_id": member_id}
        )
