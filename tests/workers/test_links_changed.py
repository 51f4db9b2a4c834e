"""A corrected email, end to end: API -> outbox -> arq worker -> real SMTP server."""

from __future__ import annotations

import pytest

from dropin.config import Settings
from dropin.store.db import Database
from tests.helpers import Api
from tests.workers.conftest import drain
from tests.workers.smtp import SmtpServer, calendar_method

pytestmark = pytest.mark.asyncio


async def test_new_links_reach_the_new_address_only(
    live: Settings, db: Database, smtp: SmtpServer
) -> None:
    async with Api.start(live, db) as api:
        group = await api.group(discreet=True)
        ann = await api.member(group["id"], "Ann")
        await api.member(group["id"], "Bea")
        changed = await api.ok(
            "PATCH", f"/api/v1/members/{ann['id']}", json={"email": "ann@new.example.org"}
        )
        await drain(live)
    assert smtp.recorder.to("ann@example.org") == []
    [mail] = smtp.recorder.to("ann@new.example.org")
    assert len(smtp.recorder.messages) == 1
    assert calendar_method(mail) is None
    assert str(mail["Subject"]).strip() == "New links: Drop-in"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert changed["page_url"] in text and changed["feed_url"] in text
    assert ann["page_url"] not in text and ann["feed_url"] not in text
    whole = mail.as_string()
    # Discreet group: no group name or topic; and no other member, nor the old address.
    for word in ("NVR", "circle", "parents", "Bea", "bea@", "ann@example.org"):
        assert word not in whole, word
