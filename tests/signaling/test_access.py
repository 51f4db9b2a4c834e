"""Room tokens: the JWT codec as a table, and the join-link exchange through the app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from signaling.access import RoomTokenError, issue_token, read_token
from tests.helpers import Api

SECRET = "r" * 48
NOW = datetime(2028, 3, 14, 19, 20, tzinfo=UTC)
ID = "0123456789abcdef" * 2


def test_round_trip() -> None:
    token = issue_token(SECRET, member_id=ID, session_id=ID[::-1], role="parent", now=NOW)
    claims = read_token(SECRET, token, NOW + timedelta(seconds=899))
    assert (claims.member_id, claims.session_id, claims.role) == (ID, ID[::-1], "parent")
    assert claims.expires_at == NOW + timedelta(seconds=900)


def forged(**changes: Any) -> str:
    claims = {
        "iss": "dropin",
        "aud": "dropin:room",
        "sub": ID,
        "sid": ID,
        "role": "parent",
        "jti": "j",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 600,
    }
    claims.update(changes)
    secret = claims.pop("_secret", SECRET)
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None},
        secret,
        algorithm=str(claims.pop("_alg", "HS256")),
    )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        forged(_secret="x" * 48),  # wrong key
        forged(aud="dropin:other"),
        forged(iss="someone"),
        forged(role="organizer"),  # roles come from the data, and only these two exist
        forged(sid=None),  # missing claim
        forged(exp=int(NOW.timestamp()) + 3600),  # longer than 15 minutes
        forged(exp=int(NOW.timestamp())),  # expired now
        issue_token(SECRET, member_id=ID, session_id=ID, role="parent", now=NOW)[:-2] + "xx",
    ],
)
def test_bad_tokens(token: str) -> None:
    with pytest.raises(RoomTokenError):
        read_token(SECRET, token, NOW)


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode({"sub": ID}, key=None, algorithm=None)  # type: ignore[arg-type]
    with pytest.raises(RoomTokenError):
        read_token(SECRET, unsigned, NOW)


@pytest.mark.asyncio
async def test_exchange_through_the_app(api: Api) -> None:
    g = await api.group(timezone="UTC")  # so "now + 10 minutes" is easy to write
    start = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:00")
    await api.series(g["id"], rrule="FREQ=DAILY;COUNT=1", first_start=start)
    lee = await api.member(g["id"], "Lee", role="facilitator")
    ann = await api.member(g["id"], "Ann")
    [s] = await api.sessions(g["id"])
    await api.ok(
        "PUT", f"/api/v1/sessions/{s['id']}/facilitators", json={"lead_member_id": lee["id"]}
    )
    await api.book(s["id"], ann["id"])

    async def exchange(member: dict[str, Any]) -> Any:
        link = await api.ok(
            "POST", f"/api/v1/sessions/{s['id']}/join-links", 201, json={"member_id": member["id"]}
        )
        return await api.client.post(
            link["url"].removeprefix("http://127.0.0.1:8000") + "/room-token"
        )

    r = await exchange(ann)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["role"] == "parent" and body["ws_url"] == "ws://127.0.0.1:8000/rooms/ws"
    assert 0 < body["expires_in"] <= 900
    claims = read_token(api.settings.secret_key, body["token"], datetime.now(UTC))
    assert (claims.member_id, claims.session_id) == (ann["id"], s["id"])
    assert (await exchange(lee)).json()["role"] == "facilitator"
    assert r.headers["cache-control"] == "no-store"
    # Not a join link.
    bad = await api.client.post("/j/nonsense/room-token")
    assert bad.status_code == 404 and bad.json()["error"] == "link_invalid"
    # Too early: a session next week.
    later = await api.group()
    await api.series(
        later["id"],
        rrule="FREQ=DAILY;COUNT=1",
        first_start=(datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT19:30:00"),
    )
    bea = await api.member(later["id"], "Bea")
    [ls] = await api.sessions(later["id"])
    await api.book(ls["id"], bea["id"])
    link = await api.ok(
        "POST", f"/api/v1/sessions/{ls['id']}/join-links", 201, json={"member_id": bea["id"]}
    )
    early = await api.client.post(link["url"].removeprefix("http://127.0.0.1:8000") + "/room-token")
    assert early.status_code == 425 and "opens_at" in early.json()["detail"]
