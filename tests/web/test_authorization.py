"""Every JSON API route x every kind of caller, against a table: who may do what.

The routes come from the served ``/openapi.json`` (so a new route without a row here fails),
each called with a valid body on a group organized by one account. Callers: nobody, a
facilitator account, the organizer of another group, the organizer of this group, an admin.
Another organization's resources answer 404 with their usual code, never 403 (ids are not
confirmed), and a refused call changes nothing in the database.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from dropin.config import Settings
from dropin.domain.states import AccountRole
from dropin.services import accounts, keys
from dropin.store.db import Database
from dropin.store.tables import metadata, outbox
from dropin.web.api import routes as api_routes
from tests.helpers import Api

ANON, FACILITATOR, OTHER, ORGANIZER, ADMIN = (
    "anonymous",
    "facilitator",
    "other organizer",
    "organizer",
    "admin",
)
REFUSED = (ANON, FACILITATOR, OTHER)

# A valid body for each route that takes one ({...} filled from the world's ids).
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/groups"): {"name": "Another circle", "timezone": "UTC"},
    ("patch", "/api/v1/groups/{group_id}"): {"name": "Renamed circle"},
    ("put", "/api/v1/groups/{group_id}/organizers"): {"emails": ["{organizer_email}"]},
    ("post", "/api/v1/groups/{group_id}/members"): {
        "display_name": "Bo",
        "email": "bo@example.org",
    },
    ("patch", "/api/v1/members/{member_id}"): {"display_name": "Annie"},
    ("put", "/api/v1/members/{member_id}/unavailable"): {"days": ["2028-03-01"]},
    ("post", "/api/v1/groups/{group_id}/series"): {
        "title": "Morning",
        "rrule": "FREQ=MONTHLY;BYDAY=1MO",
        "first_start": "2028-01-01T10:00:00",
        "duration_minutes": 60,
        "capacity": 5,
    },
    ("patch", "/api/v1/series/{series_id}"): {"title": "Evening drop-in (renamed)"},
    ("patch", "/api/v1/sessions/{session_id}"): {"capacity": 12},
    ("put", "/api/v1/sessions/{session_id}/facilitators"): {
        "lead_member_id": "{lead_id}",
        "co_member_id": None,
    },
    ("post", "/api/v1/sessions/{session_id}/bookings"): {"member_id": "{cy_id}"},
    ("post", "/api/v1/sessions/{session_id}/join-links"): {"member_id": "{member_id}"},
    ("post", "/api/v1/sessions/{session_id}/swap-requests"): {
        "from_member_id": "{lead_id}",
        "to_member_id": "{other_facilitator_id}",
    },
}

# What the callers who reach nothing get where the answer is not 401 / 404.
UNSCOPED: dict[tuple[str, str], dict[str, int]] = {
    ("get", "/api/v1/groups"): {FACILITATOR: 200, OTHER: 200},
    ("post", "/api/v1/groups"): {FACILITATOR: 403, OTHER: 201},
    ("get", "/api/v1/outbox"): {FACILITATOR: 200, OTHER: 200},
}


_worlds = itertools.count()


@dataclass
class World:
    api: Api
    keys: dict[str, str]
    ids: dict[str, str]


async def _key(db: Database, email: str, role: AccountRole) -> str:
    now = datetime.now(UTC)
    account = await accounts.create_account(db, email, email.split("@")[0], role, now=now)
    return (await keys.create_key(db, email, account_id=account.id, now=now)).key


@contextlib.asynccontextmanager
async def world(settings: Settings, db: Database) -> AsyncIterator[World]:
    """A group organized by ``organizer``, with a series, people, a booking and failed mail."""
    n = next(_worlds)  # several worlds share one database: each has its own accounts
    async with Api.start(settings, db) as api:  # the admin's key
        by = {
            FACILITATOR: await _key(db, f"fran.f{n}@staff.example", AccountRole.FACILITATOR),
            OTHER: await _key(db, f"olga{n}@other.example", AccountRole.ORGANIZER),
            ORGANIZER: await _key(db, f"oscar{n}@this.example", AccountRole.ORGANIZER),
            ADMIN: api.key,
        }
        as_organizer = {"Authorization": f"Bearer {by[ORGANIZER]}"}

        async def ok(method: str, url: str, status: int, **kw: Any) -> Any:
            r = await api.client.request(method, url, headers=as_organizer, **kw)
            assert r.status_code == status, r.text
            return r.json()

        group = await ok("POST", "/api/v1/groups", 201, json={"name": "Ours", "timezone": "UTC"})
        g = group["id"]
        s = await ok(
            "POST",
            f"/api/v1/groups/{g}/series",
            201,
            json={
                "title": "Evening drop-in",
                "rrule": "FREQ=MONTHLY;BYDAY=2TU",
                "first_start": "2028-01-01T19:30:00",
                "duration_minutes": 75,
                "capacity": 10,
            },
        )
        people = {}
        for name, role in [("Ann", "parent"), ("Cy", "parent"), ("Lee", "facilitator"),
                           ("Kim", "facilitator")]:  # fmt: skip
            body = {"display_name": name, "email": f"{name.lower()}@example.org", "role": role}
            people[name] = (await ok("POST", f"/api/v1/groups/{g}/members", 201, json=body))["id"]
        sessions = await ok(
            "GET", f"/api/v1/groups/{g}/sessions?from=2028-03-01&to=2028-03-31", 200
        )
        session = sessions["sessions"][0]["id"]
        await ok(
            "PUT",
            f"/api/v1/sessions/{session}/facilitators",
            200,
            json={"lead_member_id": people["Lee"], "co_member_id": None},
        )
        booking = await ok(
            "POST", f"/api/v1/sessions/{session}/bookings", 201, json={"member_id": people["Ann"]}
        )
        async with db.write() as conn:
            failed = (
                await conn.execute(
                    select(func.max(outbox.c.id)).where(outbox.c.session_id == session)
                )
            ).scalar_one()
            await conn.execute(outbox.update().where(outbox.c.id == failed).values(status="failed"))
        ids = {
            "group_id": g,
            "series_id": s["id"],
            "session_id": session,
            "member_id": people["Ann"],
            "cy_id": people["Cy"],
            "lead_id": people["Lee"],
            "other_facilitator_id": people["Kim"],
            "booking_id": booking["id"],
            "row_id": str(failed),
            "organizer_email": f"oscar{n}@this.example",
            "other_email": f"olga{n}@other.example",
            "facilitator_email": f"fran.f{n}@staff.example",
        }
        yield World(api, by, ids)


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def _call(w: World, role: str, method: str, path: str) -> httpx.Response:
    body = BODIES.get((method, path))
    kw: dict[str, Any] = {} if body is None else {"json": _fill(body, w.ids)}
    request = w.api.client.build_request(method.upper(), path.format(**w.ids), **kw)
    # The test client sends the admin's key by default: each caller sends only their own.
    del request.headers["authorization"]
    if role != ANON:
        request.headers["authorization"] = f"Bearer {w.keys[role]}"
    return await w.api.client.send(request)


async def _snapshot(db: Database) -> dict[str, int]:
    """Rows per table, and how many times anything was updated (sum of updated_at stamps)."""
    counts = {}
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            counts[table.name] = (
                await conn.execute(select(func.count()).select_from(table))
            ).scalar_one()
            if "updated_at" in table.c:
                stamps = (await conn.execute(select(table.c.updated_at))).scalars().all()
                counts[f"{table.name}.updated"] = hash(tuple(sorted(stamps)))
    return counts


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, int]]:
    found = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            success = min(int(code) for code in op["responses"] if code.startswith("2"))
            found.append((method, path, success))
    return sorted(found)


async def test_every_route_answers_each_caller_as_the_table_says(
    settings: Settings, db: Database
) -> None:
    async with world(settings, db) as w:
        spec = (await w.api.client.get("/openapi.json")).json()
    operations = _operations(spec)
    routed = sum(len((r.methods or set()) - {"HEAD"}) for r in api_routes)
    assert len(operations) == routed, operations  # every route of the API, none missing
    unknown = {k for k in (*BODIES, *UNSCOPED) if k not in {(m, p) for m, p, _ in operations}}
    assert not unknown, f"rows for routes that do not exist: {unknown}"
    failures = []
    for method, path, success in operations:
        async with world(settings, db) as w:
            before = await _snapshot(db)
            for role in REFUSED:
                r = await _call(w, role, method, path)
                expected = 401 if role == ANON else UNSCOPED.get((method, path), {}).get(role, 404)
                if r.status_code != expected:
                    failures.append(f"{role} {method.upper()} {path}: {r.status_code} {r.text}")
                listed = r.json().get("items", []) if r.status_code == 200 else []
                if (method, path) == ("get", "/api/v1/groups") and any(
                    i["id"] == w.ids["group_id"] for i in listed
                ):
                    failures.append(f"{role} sees the group in GET /groups")
                if (method, path) == ("get", "/api/v1/outbox") and listed:
                    failures.append(f"{role} sees the group's mail in GET /outbox")
            created_elsewhere = (method, path) == ("post", "/api/v1/groups")
            if not created_elsewhere and await _snapshot(db) != before:
                failures.append(f"a refused {method.upper()} {path} changed the database")
            r = await _call(w, ORGANIZER, method, path)
            if r.status_code != success:
                failures.append(f"organizer {method.upper()} {path}: {r.status_code} {r.text}")
        async with world(settings, db) as w:
            r = await _call(w, ADMIN, method, path)
            if r.status_code != success:
                failures.append(f"admin {method.upper()} {path}: {r.status_code} {r.text}")
    assert not failures, "\n".join(failures)


async def test_another_organizer_is_told_404_with_the_resource_s_own_code(
    settings: Settings, db: Database
) -> None:
    async with world(settings, db) as w:
        for path, code in [
            ("/api/v1/groups/{group_id}/members", "group_not_found"),
            ("/api/v1/members/{member_id}", "member_not_found"),
            ("/api/v1/series/{series_id}", "series_not_found"),
            ("/api/v1/sessions/{session_id}", "session_not_found"),
            ("/api/v1/bookings/{booking_id}", "booking_not_found"),
        ]:
            r = await _call(w, OTHER, "get", path)
            assert (r.status_code, r.json()["error"]) == (404, code), path
            # Exactly what an id that exists nowhere gets.
            ghost = {k: "0" * 32 for k in w.ids}
            r = await w.api.client.get(
                path.format(**ghost), headers={"Authorization": f"Bearer {w.keys[ADMIN]}"}
            )
            assert (r.status_code, r.json()["error"]) == (404, code), path


async def test_organizers_of_a_group_are_listed_and_can_be_replaced(
    settings: Settings, db: Database
) -> None:
    async with world(settings, db) as w:
        g = w.ids["group_id"]
        mine = {"Authorization": f"Bearer {w.keys[ORGANIZER]}"}
        group = (await w.api.client.get(f"/api/v1/groups/{g}", headers=mine)).json()
        me, olga_email = w.ids["organizer_email"], w.ids["other_email"]
        assert [o["email"] for o in group["organizers"]] == [me]
        both = {"emails": [me, olga_email]}
        r = await w.api.client.put(f"/api/v1/groups/{g}/organizers", json=both, headers=mine)
        assert r.status_code == 200, r.text
        assert [o["email"] for o in r.json()["organizers"]] == sorted([me, olga_email])
        # Olga now reaches the group; a facilitator account cannot organize; none is refused.
        olga = {"Authorization": f"Bearer {w.keys[OTHER]}"}
        assert (await w.api.client.get(f"/api/v1/groups/{g}", headers=olga)).status_code == 200
        for body, code in [
            ({"emails": [w.ids["facilitator_email"]]}, "not_an_organizer"),
            ({"emails": ["nobody@example.org"]}, "not_an_organizer"),
            ({"emails": []}, "invalid_fields"),
        ]:
            r = await w.api.client.put(f"/api/v1/groups/{g}/organizers", json=body, headers=mine)
            assert (r.status_code, r.json()["error"]) == (422, code), body
        # A disabled account's key stops working.
        await accounts.set_disabled(db, olga_email, True, now=datetime.now(UTC))
        w.api.last_state.key_cache.entries.clear()
        r = await w.api.client.get(f"/api/v1/groups/{g}", headers=olga)
        assert (r.status_code, r.json()["error"]) == (401, "invalid_key")


@pytest.mark.parametrize("role", [AccountRole.ORGANIZER, AccountRole.ADMIN])
async def test_a_created_group_is_organized_by_its_creator(
    settings: Settings, db: Database, role: AccountRole
) -> None:
    async with Api.start(settings, db) as api:
        key = await _key(db, f"{role}@staff.example", role)
        r = await api.client.post(
            "/api/v1/groups",
            json={"name": "New", "timezone": "UTC"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 201, r.text
        assert [o["email"] for o in r.json()["organizers"]] == [f"{role}@staff.example"]
