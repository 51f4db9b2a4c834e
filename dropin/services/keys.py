"""Organizer API keys: created from the CLI, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from dropin.domain import validate
from dropin.domain.tokens import hash_secret
from dropin.errors import Invalid, NotFound
from dropin.services.common import new_id
from dropin.store.db import Database
from dropin.store.tables import api_keys

PREFIX = "dk_"


@dataclass(frozen=True)
class NewKey:
    id: str
    name: str
    key: str


async def create_key(db: Database, name: str, *, now: datetime) -> NewKey:
    """Create an organizer key; the plain key is in the result and nowhere else."""
    try:
        clean = validate.text(name, field="name", max_len=100)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = new_id()
    async with db.write() as conn:
        await conn.execute(
            api_keys.insert().values(
                id=key_id, name=clean, key_hash=hash_secret(key), created_at=now
            )
        )
    return NewKey(key_id, clean, key)


async def key_id_for(db: Database, key: str) -> str | None:
    """The id of the live key ``key``, or None."""
    if not key.startswith(PREFIX) or len(key) > 100:
        return None
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(api_keys.c.id).where(
                    api_keys.c.key_hash == hash_secret(key), api_keys.c.revoked_at.is_(None)
                )
            )
        ).first()
    return None if row is None else str(row.id)


async def revoke_key(db: Database, key_id: str, *, now: datetime) -> None:
    """Revoke a key by id; requests with it fail from then on (see the web layer's cache)."""
    async with db.write() as conn:
        result = await conn.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if result.rowcount == 0:
            raise NotFound("no such live key", code="key_not_found")


async def list_keys(db: Database) -> list[tuple[str, str, datetime, datetime | None]]:
    """(id, name, created_at, revoked_at) of every key."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    api_keys.c.id, api_keys.c.name, api_keys.c.created_at, api_keys.c.revoked_at
                ).order_by(api_keys.c.created_at)
            )
        ).all()
    return [(r.id, r.name, r.created_at, r.revoked_at) for r in rows]
