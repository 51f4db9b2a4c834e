"""Correcting a member's email (issue 12): new links at once, the old ones dead, one message."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dropin.services.outbox import admin as outbox_admin
from dropin.store.db import Database
from dropin.store.tables import outbox
from tests.helpers import Api

pytestmark = pytest.mark.asyncio
BASE = "http://127.0.0.1:8000"


def path(url: str) -> str:
    return url.removeprefix(BASE)


async def owed(db: Database) -> list[tuple[str, str | None, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.kind, outbox.c.member_id, outbox.c.session_id).order_by(outbox.c.id)
        )
        return [(r.kind, r.member_id, r.session_id) for r in rows]


async def patch(api: Api, member_id: str, body: dict[str, Any]) -> Any:
    return await api.request("PATCH", f"/api/v1/members/{member_id}", json=body)


async def test_a_new_email_gives_new_links_and_owes_one_message(api: Api, db: Database) -> None:
    group = await api.group()
    ann = await api.member(group["id"], "Ann")
    changed = await api.ok(
        "PATCH", f"/api/v1/members/{ann['id']}", json={"email": " Ann.New@Example.org "}
    )
    assert changed["email"] == "ann.new@example.org"
    assert changed["display_name"] == "Ann"
    assert changed["page_url"] != ann["page_url"] and changed["feed_url"] != ann["feed_url"]
    for old in (ann["page_url"], ann["feed_url"]):
        assert (await api.client.get(path(old))).status_code == 404, old
    for new in (changed["page_url"], changed["feed_url"]):
        assert (await api.client.get(path(new))).status_code == 200, new
    assert await api.ok("GET", f"/api/v1/members/{ann['id']}") == changed
    assert await owed(db) == [("links_changed", ann["id"], None)]

    # The same address again (in any case) changes nothing and owes nothing.
    same = await api.ok(
        "PATCH", f"/api/v1/members/{ann['id']}", json={"email": "ANN.NEW@example.org"}
    )
    assert (same["page_url"], same["feed_url"]) == (changed["page_url"], changed["feed_url"])
    assert len(await owed(db)) == 1

    # A second change before the first message went: the waiting one carries the newest links.
    again = await api.ok("PATCH", f"/api/v1/members/{ann['id']}", json={"email": "ann@else.org"})
    assert again["page_url"] != changed["page_url"]
    assert (await api.client.get(path(changed["page_url"]))).status_code == 404
    assert await owed(db) == [("links_changed", ann["id"], None)]


async def test_bad_emails_are_refused_and_change_nothing(api: Api, db: Database) -> None:
    group = await api.group()
    ann = await api.member(group["id"], "Ann")
    bea = await api.member(group["id"], "Bea")
    other_group = await api.group()
    await api.member(other_group["id"], "Cal", email="cal@example.org")

    taken = await patch(api, ann["id"], {"email": "BEA@example.org"})
    assert taken.status_code == 409 and taken.json()["error"] == "member_exists"
    null = await patch(api, ann["id"], {"email": None})
    assert null.status_code == 422 and null.json()["error"] == "invalid_fields"
    for bad in ("not an email", "ann@", "@example.org", "ann@exa mple.org", "a" * 300 + "@x.org"):
        r = await patch(api, ann["id"], {"email": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"] in ("invalid", "invalid_fields"), (bad, r.json())
    wrong_type = await patch(api, ann["id"], {"email": 7})
    assert wrong_type.status_code == 422
    assert await api.ok("GET", f"/api/v1/members/{ann['id']}") == ann
    assert await api.ok("GET", f"/api/v1/members/{bea['id']}") == bea
    assert await owed(db) == []

    # An address used in another group is fine: emails are unique within a group.
    moved = await api.ok("PATCH", f"/api/v1/members/{ann['id']}", json={"email": "cal@example.org"})
    assert moved["email"] == "cal@example.org"
    # Other fields change alongside, and alone they owe nothing and keep the links.
    renamed = await api.ok("PATCH", f"/api/v1/members/{bea['id']}", json={"display_name": "Bee"})
    assert renamed["page_url"] == bea["page_url"]
    assert await owed(db) == [("links_changed", ann["id"], None)]


async def test_the_message_is_listed_for_the_members_organizers(api: Api, db: Database) -> None:
    group = await api.group()
    other = await api.group()
    ann = await api.member(group["id"], "Ann")
    await api.ok("PATCH", f"/api/v1/members/{ann['id']}", json={"email": "ann@else.org"})
    [row] = await outbox_admin.list_rows(db, status="pending", group_ids=[group["id"]])
    assert (row.kind, row.member_id, row.session_id) == ("links_changed", ann["id"], None)
    assert await outbox_admin.list_rows(db, status="pending", group_ids=[other["id"]]) == []
    assert len(await outbox_admin.list_rows(db, status="pending")) == 1


async def test_an_organizer_can_retry_failed_mail_about_a_member_alone(
    api: Api, db: Database
) -> None:
    """Mail with no session (new links) belongs to the member's group: its organizers may
    retry it, other organizers are told it does not exist."""
    from datetime import UTC, datetime

    from dropin.domain.states import AccountRole
    from dropin.services import accounts, keys

    now = datetime.now(UTC)
    owner = await accounts.create_account(
        db, "o@staff.example", "O", AccountRole.ORGANIZER, now=now
    )
    other = await accounts.create_account(
        db, "x@staff.example", "X", AccountRole.ORGANIZER, now=now
    )
    mine = (await keys.create_key(db, "o", account_id=owner.id, now=now)).key
    theirs = (await keys.create_key(db, "x", account_id=other.id, now=now)).key
    as_owner = {"Authorization": f"Bearer {mine}"}
    r = await api.client.post(
        "/api/v1/groups", json={"name": "G", "timezone": "UTC"}, headers=as_owner
    )
    g = r.json()["id"]
    r = await api.client.post(
        f"/api/v1/groups/{g}/members",
        json={"display_name": "Ann", "email": "ann@example.org"},
        headers=as_owner,
    )
    ann = r.json()["id"]
    r = await api.client.patch(
        f"/api/v1/members/{ann}", json={"email": "ann.new@example.org"}, headers=as_owner
    )
    assert r.status_code == 200, r.text
    async with db.write() as conn:
        row_id = (
            await conn.execute(select(outbox.c.id).where(outbox.c.member_id == ann))
        ).scalar_one()
        await conn.execute(outbox.update().where(outbox.c.id == row_id).values(status="failed"))
    r = await api.client.post(
        f"/api/v1/outbox/{row_id}/retry", headers={"Authorization": f"Bearer {theirs}"}
    )
    assert (r.status_code, r.json()["error"]) == (404, "message_not_found")
    r = await api.client.post(f"/api/v1/outbox/{row_id}/retry", headers=as_owner)
    assert r.status_code == 202, r.text
