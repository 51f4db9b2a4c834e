"""API keys: created from the CLI, shown once, stored as SHA-256 hashes.

A key acts as its account, with exactly that account's rights (:mod:`dropin.services.access`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from dropin.domain import validate
from dropin.domain.states import AccountRole
from dropin.domain.tokens import hash_secret
from dropin.errors import Invalid, NotFound
from dropin.services import accounts
from dropin.services.common import new_id
from dropin.store.db import Database
from dropin.store.tables import accounts as accounts_table
from dropin.store.tables import api_keys

PREFIX = "dk_"


@dataclass(frozen=True)
class NewKey:
    id: str
    name: str
    key: str


async def create_key(
    db: Database, name: str, *, now: datetime, account_id: str | None = None
) -> NewKey:
    """Create a key acting as ``account_id`` (default: the server's admin account); the plain
    key is in the result and nowhere else."""
    try:
        clean = validate.text(name, field="name", max_len=100)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if account_id is None:
        account_id = (await accounts.default_admin(db, now=now)).id
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = new_id()
    async with db.write() as conn:
        await conn.execute(
            api_keys.insert().values(
                id=key_id,
                name=clean,
                key_hash=hash_secret(key),
                created_at=now,
                account_id=account_id,
            )
        )
    return NewKey(key_id, clean, key)


@dataclass(frozen=True)
class KeyHolder:
    """Who a live key acts as."""

    key_id: str
    account_id: str
    role: AccountRole


async def holder_of(db: Database, key: str) -> KeyHolder | None:
    """Who the live key ``key`` acts as, or None (unknown, revoked, or its account disabled)."""
    if not key.startswith(PREFIX) or len(key) > 100:
        return None
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(
                    api_keys.c.id, accounts_table.c.id.label("account_id"), accounts_table.c.role
                )
                .join(accounts_table, accounts_table.c.id == api_keys.c.account_id)
                .where(
                    api_keys.c.key_hash == hash_secret(key),
                    api_keys.c.revoked_at.is_(None),
                    accounts_table.c.disabled_at.is_(None),
                )
            )
        ).first()
    return None if row is None else KeyHolder(row.id, row.account_id, AccountRole(row.role))


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
