"""Staff accounts: admins, organizers and facilitators, and the groups organizers organize.

An account is who acts: an API key acts as its account, with exactly its rights
(:mod:`dropin.services.access`). Accounts hold staff addresses, never parents'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain import validate
from dropin.domain.states import AccountRole
from dropin.errors import Conflict, Invalid, NotFound
from dropin.services.common import group_row, new_id
from dropin.store.db import Database
from dropin.store.tables import accounts, group_organizers

# The account that keys made without one act as (and that keys made before accounts were
# given by migration 0008).
DEFAULT_ADMIN_EMAIL = "admin@dropin.invalid"


@dataclass(frozen=True)
class AccountView:
    id: str
    email: str
    display_name: str
    role: AccountRole
    disabled: bool
    created_at: datetime


def _view(row: Row[Any]) -> AccountView:
    return AccountView(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        role=AccountRole(row.role),
        disabled=row.disabled_at is not None,
        created_at=row.created_at,
    )


def _clean(email: str, display_name: str, role: str) -> tuple[str, str, AccountRole]:
    try:
        clean_email = validate.email(email).lower()
        name = validate.text(display_name, field="name", max_len=100)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    try:
        return clean_email, name, AccountRole(role)
    except ValueError:
        roles = ", ".join(r.value for r in AccountRole)
        raise Invalid(f"role must be one of {roles}", code="invalid_role") from None


async def create_account(
    db: Database, email: str, display_name: str, role: str, *, now: datetime
) -> AccountView:
    """A new account; Conflict ``account_exists`` if the email has one."""
    clean_email, name, clean_role = _clean(email, display_name, role)
    async with db.write() as conn:
        if await _by_email(conn, clean_email) is not None:
            raise Conflict("an account with this email exists", code="account_exists")
        account_id = new_id()
        await conn.execute(
            accounts.insert().values(
                id=account_id,
                email=clean_email,
                display_name=name,
                role=clean_role.value,
                created_at=now,
                updated_at=now,
            )
        )
        row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).one()
    return _view(row)


async def _by_email(conn: AsyncConnection, email: str) -> AccountView | None:
    row = (
        await conn.execute(select(accounts).where(accounts.c.email == email.strip().lower()))
    ).first()
    return None if row is None else _view(row)


async def account_by_email(db: Database, email: str) -> AccountView:
    """The account with ``email`` (NotFound ``account_not_found``)."""
    async with db.read() as conn:
        found = await _by_email(conn, email)
    if found is None:
        raise NotFound("no account with this email", code="account_not_found")
    return found


async def organizer_account(db: Database, email: str) -> AccountView:
    """The active organizer or admin account of ``email``, or Invalid ``not_an_organizer``."""
    found = await account_by_email(db, email)
    if found.disabled or found.role not in (AccountRole.ORGANIZER, AccountRole.ADMIN):
        raise Invalid("not an active organizer or admin account", code="not_an_organizer")
    return found


async def default_admin(db: Database, *, now: datetime) -> AccountView:
    """The server's default admin account, made on first use."""
    try:
        return await account_by_email(db, DEFAULT_ADMIN_EMAIL)
    except NotFound:
        try:
            return await create_account(
                db, DEFAULT_ADMIN_EMAIL, "Administrator", AccountRole.ADMIN, now=now
            )
        except Conflict:  # made meanwhile by another process
            return await account_by_email(db, DEFAULT_ADMIN_EMAIL)


async def list_accounts(db: Database) -> list[AccountView]:
    async with db.read() as conn:
        rows = (await conn.execute(select(accounts).order_by(accounts.c.created_at))).all()
    return [_view(r) for r in rows]


async def set_disabled(db: Database, email: str, disabled: bool, *, now: datetime) -> AccountView:
    """Disable an account (its keys stop working at once) or enable it again."""
    async with db.write() as conn:
        found = await _by_email(conn, email)
        if found is None:
            raise NotFound("no account with this email", code="account_not_found")
        await conn.execute(
            accounts.update()
            .where(accounts.c.id == found.id)
            .values(disabled_at=now if disabled else None, updated_at=now)
        )
        row = (await conn.execute(select(accounts).where(accounts.c.id == found.id))).one()
    return _view(row)


# Organizers of groups ---------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizerView:
    id: str
    email: str
    display_name: str


async def organizers_of(db: Database, group_ids: Sequence[str]) -> dict[str, list[OrganizerView]]:
    """Each group's organizer accounts, by email."""
    found: dict[str, list[OrganizerView]] = {g: [] for g in group_ids}
    if not group_ids:
        return found
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    group_organizers.c.group_id,
                    accounts.c.id,
                    accounts.c.email,
                    accounts.c.display_name,
                )
                .join(accounts, accounts.c.id == group_organizers.c.account_id)
                .where(group_organizers.c.group_id.in_(list(group_ids)))
                .order_by(accounts.c.email)
            )
        ).all()
    for r in rows:
        found[r.group_id].append(OrganizerView(r.id, r.email, r.display_name))
    return found


async def add_organizer(conn: AsyncConnection, group_id: str, account_id: str) -> None:
    """Make ``account_id`` an organizer of ``group_id`` (in the caller's transaction)."""
    exists = (
        await conn.execute(
            select(group_organizers.c.account_id).where(
                group_organizers.c.group_id == group_id,
                group_organizers.c.account_id == account_id,
            )
        )
    ).first()
    if exists is None:
        await conn.execute(
            group_organizers.insert().values(group_id=group_id, account_id=account_id)
        )


async def set_organizers(db: Database, group_id: str, emails: Sequence[str]) -> None:
    """Replace a group's organizers with the accounts of ``emails`` (organizers or admins).

    At least one; an unknown, disabled or facilitator account is refused (Invalid), and
    nothing changes.
    """
    wanted = sorted({e.strip().lower() for e in emails})
    if not wanted:
        raise Invalid("a group needs at least one organizer", code="no_organizers")
    async with db.write() as conn:
        await group_row(conn, group_id)
        rows = (await conn.execute(select(accounts).where(accounts.c.email.in_(wanted)))).all()
        usable = {
            r.email: r.id
            for r in rows
            if r.disabled_at is None and r.role in (AccountRole.ORGANIZER, AccountRole.ADMIN)
        }
        refused = [e for e in wanted if e not in usable]
        if refused:
            # Which emails were refused is not said: organizers should not learn, one probe
            # at a time, which staff accounts exist.
            raise Invalid(
                "every email must be an active organizer or admin account",
                code="not_an_organizer",
            )
        await conn.execute(delete(group_organizers).where(group_organizers.c.group_id == group_id))
        for account_id in sorted(usable.values()):
            await conn.execute(
                group_organizers.insert().values(group_id=group_id, account_id=account_id)
            )
