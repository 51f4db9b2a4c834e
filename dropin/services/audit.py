"""The audit log: who (account) did what to which group, member, session or booking.

Ids only, never names, emails or message text, so a member's erasure leaves nothing of them
here. A group's organizers read their group's entries; entries outlive a deleted group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from dropin.store.db import Database
from dropin.store.tables import accounts, audit_log

MAX_LISTED = 500


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    account_id: str | None
    # The account's display name at reading time (None: the command line, or a gone account).
    account_name: str | None
    action: str
    target_type: str | None
    target_id: str | None


async def record(
    db: Database,
    *,
    account_id: str | None,
    action: str,
    group_id: str | None,
    target_type: str | None = None,
    target_id: str | None = None,
    now: datetime,
) -> None:
    """Add one entry (in a transaction of its own, after the change it records)."""
    async with db.write() as conn:
        await conn.execute(
            audit_log.insert().values(
                at=now,
                account_id=account_id,
                action=action,
                group_id=group_id,
                target_type=target_type,
                target_id=target_id,
            )
        )


async def for_group(db: Database, group_id: str, *, limit: int = 100) -> list[AuditEntry]:
    """The group's entries, newest first."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(audit_log, accounts.c.display_name)
            .outerjoin(accounts, accounts.c.id == audit_log.c.account_id)
            .where(audit_log.c.group_id == group_id)
            .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
            .limit(max(1, min(limit, MAX_LISTED)))
        )
        return [
            AuditEntry(r.at, r.account_id, r.display_name, r.action, r.target_type, r.target_id)
            for r in rows
        ]
