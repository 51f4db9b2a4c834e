"""Use cases for groups and their members."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain import validate
from dropin.domain.recurrence import RecurrenceError, zone
from dropin.domain.states import MemberRole, MessageKind, OutboxStatus
from dropin.errors import Conflict, Invalid
from dropin.services.common import group_row, member_row, new_id
from dropin.services.edits import GroupEdit, MemberEdit, changed
from dropin.services.views import GroupView, MemberView
from dropin.store.db import Database
from dropin.store.tables import group_organizers, groups, members, outbox
from dropin.store.uow import owe


def group_view(row: Row[Any]) -> GroupView:
    return GroupView(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        discreet=row.discreet,
        public=row.public,
        description=row.description,
        created_at=row.created_at,
        organizer_email=row.organizer_email,
    )


def member_view(row: Row[Any]) -> MemberView:
    return MemberView(
        id=row.id,
        group_id=row.group_id,
        display_name=row.display_name,
        email=row.email,
        role=row.role,
        discreet=row.discreet,
        timezone=row.timezone,
        created_at=row.created_at,
        weight=row.weight,
        max_per_quarter=row.max_per_quarter,
        led_before=row.led_before,
        link_nonce=row.link_nonce,
    )


async def create_group(
    db: Database,
    *,
    name: str,
    timezone: str,
    now: datetime,
    discreet: bool = False,
    public: bool = False,
    description: str = "",
    organizer_email: str | None = None,
    organizer_account_id: str | None = None,
) -> GroupView:
    """Create a group. ``timezone`` is an IANA name; sessions keep wall-clock time in it.

    ``organizer_account_id``: the account creating it, which organizes it from then on.
    """
    view = GroupView(
        id=new_id(),
        name=_name(name),
        timezone=_timezone(timezone),
        discreet=discreet,
        public=public,
        description=_description(description),
        created_at=now,
        organizer_email=_organizer_email(organizer_email),
    )
    async with db.write() as conn:
        await conn.execute(groups.insert().values(**asdict(view), updated_at=now))
        if organizer_account_id is not None:
            await conn.execute(
                group_organizers.insert().values(group_id=view.id, account_id=organizer_account_id)
            )
    return view


def _name(value: str) -> str:
    try:
        return validate.text(value, field="name", max_len=200)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _organizer_email(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate.email(value)
    except ValueError as exc:
        raise Invalid(f"organizer_email: {exc}") from None


def _description(value: str) -> str:
    try:
        return validate.long_text(value, field="description", max_len=2000)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _timezone(value: str) -> str:
    try:
        zone(value)
    except RecurrenceError as exc:
        raise Invalid(str(exc), code="invalid_timezone") from None
    return value


async def update_group(db: Database, group_id: str, edit: GroupEdit, *, now: datetime) -> GroupView:
    """Rename a group, or change its discreet / public / description settings."""
    changes = changed(edit)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _name(changes["name"])
    if "description" in changes:
        values["description"] = _description(changes["description"])
    for flag in ("discreet", "public"):
        if flag in changes:
            values[flag] = bool(changes[flag])
    if "organizer_email" in changes:
        values["organizer_email"] = _organizer_email(changes["organizer_email"])
    async with db.write() as conn:
        await group_row(conn, group_id)
        if values:
            await conn.execute(
                groups.update().where(groups.c.id == group_id).values(updated_at=now, **values)
            )
        return group_view(await group_row(conn, group_id))


async def get_group(db: Database, group_id: str) -> GroupView:
    async with db.read() as conn:
        return group_view(await group_row(conn, group_id))


async def list_groups(db: Database, *, only: list[str] | None = None) -> list[GroupView]:
    """Every group, oldest first; ``only``: just these ids."""
    query = select(groups).order_by(groups.c.created_at)
    if only is not None:
        query = query.where(groups.c.id.in_(only))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [group_view(r) for r in rows]


@dataclass(frozen=True)
class NewMember:
    """A member to add, as given by the organizer (checked by :func:`check_member`)."""

    display_name: str
    email: str
    role: str = MemberRole.PARENT
    discreet: bool | None = None
    timezone: str | None = None


def check_member(new: NewMember) -> NewMember:
    """``new`` with its values cleaned, or :class:`Invalid`."""
    try:
        return NewMember(
            display_name=validate.display_name(new.display_name),
            email=validate.email(new.email),
            role=validate.role(new.role),
            discreet=new.discreet,
            timezone=None if new.timezone is None else _timezone(new.timezone),
        )
    except ValueError as exc:
        raise Invalid(str(exc)) from None


async def add_members(
    db: Database, group_id: str, new: Sequence[NewMember], *, now: datetime
) -> list[MemberView]:
    """Add members to a group in one transaction: all or none.

    An email already in the group is a :class:`Conflict` (emails identify a member within a
    group; the same person may belong to several groups).
    """
    cleaned = [check_member(m) for m in new]
    emails = [m.email.lower() for m in cleaned]
    if len(set(emails)) != len(emails):
        raise Invalid("the same email appears twice", code="duplicate_email")
    views = [
        MemberView(
            id=new_id(),
            group_id=group_id,
            display_name=m.display_name,
            email=m.email,
            role=m.role,
            discreet=m.discreet,
            timezone=m.timezone,
            created_at=now,
            weight=1.0,
            max_per_quarter=None,
            led_before=0,
            link_nonce=secrets.token_hex(16),
        )
        for m in cleaned
    ]
    async with db.write() as conn:
        await group_row(conn, group_id)
        taken = await _taken_emails(conn, group_id, emails)
        if taken:
            raise Conflict(
                f"{len(taken)} of these emails already belong to members of this group",
                code="member_exists",
            )
        if views:
            try:
                await conn.execute(
                    members.insert(), [{**asdict(v), "updated_at": now} for v in views]
                )
            except IntegrityError as exc:
                # Only the (group, email) key means "exists"; anything else is a real fault.
                if "uq_members_group_email" not in str(exc.orig) and "members.email" not in str(
                    exc.orig
                ):
                    raise
                raise Conflict(
                    "a member with this email already exists", code="member_exists"
                ) from None
    return views


async def _taken_emails(conn: AsyncConnection, group_id: str, emails: Iterable[str]) -> set[str]:
    wanted = set(emails)
    rows = (await conn.execute(select(members.c.email).where(members.c.group_id == group_id))).all()
    return {r.email.lower() for r in rows} & wanted


async def list_members(db: Database, group_id: str) -> list[MemberView]:
    async with db.read() as conn:
        await group_row(conn, group_id)
        rows = (
            await conn.execute(
                select(members)
                .where(members.c.group_id == group_id)
                .order_by(members.c.created_at, members.c.display_name)
            )
        ).all()
    return [member_view(r) for r in rows]


async def get_member(db: Database, member_id: str) -> MemberView:
    async with db.read() as conn:
        return member_view(await member_row(conn, member_id))


async def update_member(
    db: Database, member_id: str, edit: MemberEdit, *, now: datetime
) -> MemberView:
    """Change a member's name, email, discreet preference, time zone (None: the group's) or,
    for a facilitator, rotation settings (weight, max_per_quarter, led_before).

    A new email is unique in the group (Conflict ``member_exists``) and gives the member new
    personal links in the same transaction (the old ones answer 404 at once); a
    ``links_changed`` message is owed to them, composed at send time for the new address.
    """
    changes = changed(edit)
    values: dict[str, Any] = {}
    email: str | None = None
    try:
        if "display_name" in changes:
            values["display_name"] = validate.display_name(changes["display_name"])
        if "email" in changes:
            email = validate.email(changes["email"])
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if "discreet" in changes:
        values["discreet"] = changes["discreet"]
    if "timezone" in changes:
        tz = changes["timezone"]
        values["timezone"] = None if tz is None else _timezone(tz)
    # Rotation settings (facilitators): range checks live in the request schema too.
    if "weight" in changes:
        if not 0 < changes["weight"] <= 10:
            raise Invalid("weight must be above 0 and at most 10")
        values["weight"] = float(changes["weight"])
    if "max_per_quarter" in changes:
        values["max_per_quarter"] = changes["max_per_quarter"]
    if "led_before" in changes:
        values["led_before"] = changes["led_before"]
    async with db.write() as conn:
        row = await member_row(conn, member_id)
        if email is not None and email != row.email.lower():
            if await _taken_emails(conn, row.group_id, [email]):
                raise Conflict("a member with this email already exists", code="member_exists")
            values["email"] = email
            values["link_nonce"] = secrets.token_hex(16)
        if values:
            try:
                await conn.execute(
                    members.update()
                    .where(members.c.id == member_id)
                    .values(updated_at=now, **values)
                )
            except IntegrityError as exc:
                # Another request gave that address to a member of the group meanwhile.
                if "email" not in values or not _email_key(exc):
                    raise
                raise Conflict(
                    "a member with this email already exists", code="member_exists"
                ) from None
        if "email" in values:
            await conn.run_sync(_owe_new_links, member_id, now)
        return member_view(await member_row(conn, member_id))


def _email_key(exc: IntegrityError) -> bool:
    """Whether ``exc`` is the (group, email) unique key firing."""
    return "uq_members_group_email" in str(exc.orig) or "members.email" in str(exc.orig)


def _owe_new_links(conn: Connection, member_id: str, now: datetime) -> None:
    """Owe the member a ``links_changed`` message, unless one still waits its turn: composed
    when it is sent, that one will carry the newest address and links (so two quick changes
    send one message). It is made due at once (a new address deserves a fresh try)."""
    waiting = conn.execute(
        update(outbox)
        .where(
            outbox.c.member_id == member_id,
            outbox.c.kind == MessageKind.LINKS_CHANGED.value,
            outbox.c.status == OutboxStatus.PENDING.value,
        )
        .values(next_attempt_at=None)
    )
    if not waiting.rowcount:
        owe(conn, MessageKind.LINKS_CHANGED, now, member_id=member_id)


async def renew_links(db: Database, member_id: str, *, now: datetime) -> MemberView:
    """Give a member new feed and page links; the old ones stop working at once."""
    async with db.write() as conn:
        await member_row(conn, member_id)
        await conn.execute(
            members.update()
            .where(members.c.id == member_id)
            .values(link_nonce=secrets.token_hex(16), updated_at=now)
        )
        return member_view(await member_row(conn, member_id))


def parse_members_csv(text: str) -> list[NewMember]:
    """Members from CSV with a header row: ``display_name,email[,role]``.

    Raises :class:`Invalid` naming the line of the first bad row.
    """
    reader = csv.DictReader(io.StringIO(text))
    fields = set(reader.fieldnames or ())
    if not {"display_name", "email"} <= fields:
        raise Invalid("the CSV needs a header row with display_name,email[,role]")
    unknown = fields - {"display_name", "email", "role"}
    if unknown:
        raise Invalid(f"unknown CSV columns: {', '.join(sorted(unknown))}")
    found: list[NewMember] = []
    for line, row in enumerate(reader, start=2):
        try:
            found.append(
                check_member(
                    NewMember(
                        display_name=row.get("display_name") or "",
                        email=row.get("email") or "",
                        role=(row.get("role") or "").strip() or MemberRole.PARENT,
                    )
                )
            )
        except Invalid as exc:
            raise Invalid(f"line {line}: {exc.detail}") from None
    return found
