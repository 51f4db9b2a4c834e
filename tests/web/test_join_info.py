"""What the join page is told about a link (GET /j/{token}/info), state by state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dropin.services.join_page import describe, first_name
from dropin.services.rooms import record_removal
from dropin.store.tables import sessions
from tests.helpers import Api


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Sam", "Sam"),
        ("Sam Smith", "Sam"),
        ("  Ana  María ", "Ana"),
        ("李 小龍", "李"),
        ("x" * 60, "x" * 40),
    ],
)
def test_first_name(name: str, expected: str) -> None:
    assert first_name(name) == expected


def test_describe_uses_the_members_zone() -> None:
    start = datetime(2028, 3, 14, 19, 30, tzinfo=UTC)
    assert describe(start, start + timedelta(minutes=75), "Europe/London") == (
        "Tuesday 14 March 2028, 19:30 to 20:45"
    )
    assert describe(start, start + timedelta(minutes=75), "America/New_York") == (
        "Tuesday 14 March 2028, 15:30 to 16:45"
    )


async def _seat(api: Api, *, starts_in: timedelta, discreet: bool = False) -> dict[str, Any]:
    group = await api.group(timezone="UTC", discreet=discreet)
    start = (datetime.now(UTC) + starts_in).strftime("%Y-%m-%dT%H:%M:00")
    await api.series(group["id"], rrule="FREQ=WEEKLY;COUNT=2", first_start=start)
    ann = await api.member(group["id"], "Ann Lee", email="ann@example.org")
    first, second = await api.sessions(group["id"])
    booking = await api.book(first["id"], ann["id"])
    link = await api.ok(
        "POST", f"/api/v1/sessions/{first['id']}/join-links", 201, json={"member_id": ann["id"]}
    )
    path = link["url"][len(api.settings.public_url) :]
    return {"session": first, "next": second, "ann": ann, "booking": booking, "path": path}


async def info(api: Api, path: str) -> Any:
    response = await api.client.get(f"{path}/info")
    assert response.status_code == 200, response.text
    return response.json()


async def test_open_then_removed_then_cancelled(api: Api) -> None:
    seat = await _seat(api, starts_in=timedelta(minutes=5))
    body = await info(api, seat["path"])
    assert body["status"] == "open" and body["seconds_until_open"] == 0
    assert body["display_name"] == "Ann" and body["role"] == "parent"
    assert body["next_session"]["starts_at"] == seat["next"]["starts_at"].replace("Z", "+00:00")
    assert body["feed_url"].endswith(".ics") and "/m/" in body["page_url"]
    assert "example.org" not in str(body)  # no email anywhere, not even her own
    await record_removal(api.db, seat["session"]["id"], seat["ann"]["id"], datetime.now(UTC))
    assert (await info(api, seat["path"]))["status"] == "removed"
    await api.ok("PATCH", f"/api/v1/sessions/{seat['session']['id']}", json={"status": "cancelled"})
    assert (await info(api, seat["path"]))["status"] == "cancelled"


async def test_too_early_and_discreet(api: Api) -> None:
    seat = await _seat(api, starts_in=timedelta(hours=2), discreet=True)
    body = await info(api, seat["path"])
    assert body["status"] == "too_early" and body["discreet"] is True
    assert 100 * 60 <= body["seconds_until_open"] <= 105 * 60


async def test_no_place_after_the_booking_is_cancelled(api: Api) -> None:
    seat = await _seat(api, starts_in=timedelta(minutes=5))
    await api.ok("DELETE", f"/api/v1/bookings/{seat['booking']['id']}")
    body = await info(api, seat["path"])
    assert body["status"] == "no_place" and body["role"] is None


async def test_overrun_stays_open_then_ends(api: Api) -> None:
    seat = await _seat(api, starts_in=timedelta(minutes=5))
    now = datetime.now(UTC)
    # Ended five minutes ago: the room is still open for its grace period (an overrun).
    async with api.db.write() as conn:
        await conn.execute(
            sessions.update()
            .where(sessions.c.id == seat["session"]["id"])
            .values(starts_at=now - timedelta(minutes=65), ends_at=now - timedelta(minutes=5))
        )
    assert (await info(api, seat["path"]))["status"] == "open"
    exchanged = await api.client.post(f"{seat['path']}/room-token")
    assert exchanged.status_code == 200
    async with api.db.write() as conn:
        await conn.execute(
            sessions.update()
            .where(sessions.c.id == seat["session"]["id"])
            .values(starts_at=now - timedelta(minutes=75), ends_at=now - timedelta(minutes=15))
        )
    body = await info(api, seat["path"])
    assert body["status"] == "ended" and body["next_session"] is not None
    gone = await api.client.post(f"{seat['path']}/room-token")
    assert gone.status_code == 410


async def test_bad_links(api: Api) -> None:
    assert (await api.client.get("/j/nonsense/info")).status_code == 404
