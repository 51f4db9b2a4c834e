"""Facilitator handoffs: notices, confirmations, "can't make it", hand-overs, swaps, alerts.

The timing rules are pure (:mod:`dropin.domain.handoff`); who replaces whom is decided by the
rotation rules (:mod:`dropin.domain.rotation`). Every change is one write transaction that
also owes the emails (facilitator_assigned / facilitator_released / organizer_alert).
Facilitators act through signed links from their emails: ``/h/<token>`` to confirm or to
say they can't make it, ``/s/<token>`` to accept a swap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from dropin import link_paths
from dropin.domain import tokens
from dropin.domain.handoff import HandoffPolicy, HandoffState, due
from dropin.domain.rotation import (
    Assignment,
    RotaEntry,
    Slot,
    promote_co_to_lead,
    reassign,
)
from dropin.domain.session import Known, Session, SessionChange
from dropin.domain.states import MemberRole, SessionStatus
from dropin.errors import Gone, NotFound
from dropin.services.feeds import LinkMaker
from dropin.services.links import link_subject
from dropin.services.rota import POLICY, _facilitators, booked_facilitators, policy_for
from dropin.store.db import Database
from dropin.store.tables import groups, members, sessions
from dropin.store.uow import UnitOfWork

HANDOFF = "handoff"
SWAP = "swap"
STEPS = HandoffPolicy()
Step = Literal["confirm", "release"]
HandoffOutcome = Literal[
    "confirmed",
    "already_confirmed",
    "released",
    "not_facilitating",
    "swapped",
    "swap_not_possible",
]


def handoff_url(
    links: LinkMaker, session_id: str, member_id: str, step: Step, ends_at: datetime
) -> str:
    """A facilitator's one-click link to confirm, or to say they can't make it."""
    token = tokens.sign(
        links.secret, HANDOFF, {"s": session_id, "m": member_id, "a": step}, ends_at
    )
    return link_paths.HANDOFF.url(links.public_url, token=token)


def swap_url(links: LinkMaker, session_id: str, asker: str, taker: str, ends_at: datetime) -> str:
    """The link that lets ``taker`` take ``asker``'s place in a session."""
    token = tokens.sign(links.secret, SWAP, {"s": session_id, "f": asker, "t": taker}, ends_at)
    return link_paths.SWAP.url(links.public_url, token=token)


@dataclass(frozen=True)
class HandoffLink:
    session_id: str
    member_id: str
    step: Step


def read_handoff(secret: str, token: str, now: datetime) -> HandoffLink:
    found = link_subject(secret, HANDOFF, token, now)
    s, m, a = found.get("s"), found.get("m"), found.get("a")
    if not isinstance(s, str) or not isinstance(m, str) or a not in ("confirm", "release"):
        raise NotFound("this link is not valid", code="link_invalid")
    return HandoffLink(s, m, "confirm" if a == "confirm" else "release")


# Scheduled steps ----------------------------------------------------------------------------


async def run_handoffs(db: Database, *, now: datetime) -> int:
    """Take every handoff step that is due (hourly job); returns how many were taken."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(sessions).where(
                    sessions.c.status == SessionStatus.SCHEDULED.value,
                    sessions.c.starts_at > now,
                    sessions.c.starts_at <= now + STEPS.notice,
                )
            )
        ).all()
    taken = 0
    for r in rows:
        state = HandoffState(
            starts_at=r.starts_at,
            status=r.status,
            lead=r.lead_member_id,
            lead_notified_at=r.lead_notified_at,
            lead_confirmed_at=r.lead_confirmed_at,
            handed_over_at=r.handed_over_at,
            alerted_at=r.alerted_at,
        )
        for action in due(state, STEPS, now):
            if action == "notify_lead":
                await _notify_lead(db, r.id, now)
            elif action == "hand_over":
                await change_facilitators(db, r.id, now=now, leaving=r.lead_member_id, promote=True)
            else:
                await _alert(db, r.id, now)
            taken += 1
    return taken


async def _notify_lead(db: Database, session_id: str, now: datetime) -> None:
    await db.run_write(_decide, session_id, lambda s: s.notify_lead(now), now)


async def _alert(db: Database, session_id: str, now: datetime) -> None:
    await db.run_write(_decide, session_id, lambda s: s.alert_organizer(now), now)


def _decide(
    conn: Connection, session_id: str, decide: Callable[[Session], SessionChange], now: datetime
) -> None:
    """Load the session under its lock, let ``decide`` choose, save what it chose."""
    uow = UnitOfWork(conn)
    uow.save(decide(uow.session(session_id, known=Known.NONE)), now)


# Changes of facilitator ---------------------------------------------------------------------


async def change_facilitators(
    db: Database,
    session_id: str,
    *,
    now: datetime,
    leaving: str | None,
    promote: bool = False,
    tell_leaving: bool = True,
) -> Assignment:
    """Take ``leaving`` out of a session and let the rotation fill the gap, in one transaction.

    ``promote``: the 72 h hand-over (the co leads, a new co is found); otherwise "can't make
    it" (the other facilitator stays where the rules allow). The people who leave are sent a
    cancellation (unless ``tell_leaving`` is False: a member being erased), the people who join
    an invitation; a session left without a lead inside
    the alert window alerts the organizer at once.
    """
    async with db.write() as conn:
        row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
        if row is None:
            raise NotFound("no such session", code="session_not_found")
        group = (
            await conn.execute(select(groups).where(groups.c.id == row.group_id).with_for_update())
        ).one()
        facilitators = await _facilitators(conn, row.group_id)
        history = [
            RotaEntry(h.id, h.starts_at, h.lead_member_id, h.co_member_id)
            for h in (
                await conn.execute(
                    select(sessions).where(
                        sessions.c.group_id == row.group_id,
                        sessions.c.status == SessionStatus.SCHEDULED.value,
                        sessions.c.lead_member_id.is_not(None),
                        sessions.c.starts_at >= now - POLICY.window,
                    )
                )
            ).all()
        ]
        slot = Slot(row.id, row.starts_at)
        tz = ZoneInfo(group.timezone)
        # Members holding a place in this session as participants never facilitate it.
        out = (await booked_facilitators(conn, [row.id])).get(row.id, set())
        if leaving:
            out = out | {leaving}
        stays = row.co_member_id if leaving == row.lead_member_id else row.lead_member_id
        policy = policy_for(facilitators, history)
        plan: Assignment | None = None
        if promote:
            current = Assignment(row.id, row.lead_member_id, row.co_member_id)
            plan = promote_co_to_lead(current, slot, facilitators, history, policy, now=now, tz=tz)
            if {plan.lead, plan.co} & out:
                plan = None
        if plan is None:
            plan = reassign(
                slot, facilitators, history, policy, now=now, tz=tz, exclude=out, keep=stays
            )
        handed_over_at = now if promote else row.handed_over_at
        alert_due = row.starts_at - now <= STEPS.alert_at
        silent = None if tell_leaving else leaving
        await conn.run_sync(_reassign, session_id, plan, handed_over_at, alert_due, silent, now)
        return plan


def _decide_locked(
    conn: Connection, session_id: str, decide: Callable[[Session], SessionChange], now: datetime
) -> None:
    """:func:`_decide` for a caller that already holds the session's lock."""
    uow = UnitOfWork(conn)
    uow.save(decide(uow.session(session_id, known=Known.NONE, lock=False)), now)


def _reassign(
    conn: Connection,
    session_id: str,
    plan: Assignment,
    handed_over_at: datetime | None,
    alert_due: bool,
    silent: str | None,
    now: datetime,
) -> None:
    uow = UnitOfWork(conn)
    # The caller holds the group's lock; who leads needs no bookings.
    session = uow.session(session_id, known=Known.NONE, lock=False)
    change = session.reassign(plan.lead, plan.co, note=plan.reason, handed_over_at=handed_over_at)
    if plan.lead is None and alert_due:
        change = change.then(change.after.alert_organizer(now))
    if silent is not None:  # being erased: told nothing more
        change = replace(change, owed=tuple(o for o in change.owed if o.member_id != silent))
    uow.save(change, now)


async def follow_link(db: Database, link: HandoffLink, *, now: datetime) -> HandoffOutcome:
    """Carry out a confirm / can't-make-it click. Safe to repeat."""
    async with db.read() as conn:
        row = (await conn.execute(select(sessions).where(sessions.c.id == link.session_id))).first()
    if row is None:
        raise NotFound("no such session", code="session_not_found")
    if row.status != SessionStatus.SCHEDULED or now >= row.starts_at:
        raise Gone("this drop-in is no longer ahead", code="session_over")
    if link.member_id not in (row.lead_member_id, row.co_member_id):
        return "not_facilitating"
    if link.step == "confirm":
        if link.member_id != row.lead_member_id:
            return "confirmed"  # a co has nothing to confirm; the click still reassures
        if row.lead_confirmed_at is not None:
            return "already_confirmed"
        await db.run_write(_decide, row.id, lambda s: s.confirm_lead(link.member_id, now), now)
        return "confirmed"
    await change_facilitators(db, row.id, now=now, leaving=link.member_id)
    return "released"


# Swaps -----------------------------------------------------------------------------------------


async def request_swap(
    db: Database, session_id: str, asker: str, taker: str, *, now: datetime
) -> None:
    """``asker`` (in the session) asks ``taker`` (a facilitator of the group, not in it)."""
    await db.run_write(_ask_swap, session_id, asker, taker, now)


def _ask_swap(conn: Connection, session_id: str, asker: str, taker: str, now: datetime) -> None:
    uow = UnitOfWork(conn)
    session = uow.session(session_id)
    role = conn.execute(
        select(members.c.role).where(members.c.id == taker, members.c.group_id == session.group_id)
    ).scalar_one_or_none()
    roles = {} if role is None else {taker: MemberRole(role)}
    uow.save(session.ask_swap(asker, taker, roles=roles, now=now), now)


@dataclass(frozen=True)
class SwapOffer:
    session_id: str
    asker: str
    taker: str


def read_swap(secret: str, token: str, now: datetime) -> SwapOffer:
    """The swap in a link, or NotFound (tampered) / Gone (expired)."""
    found = link_subject(secret, SWAP, token, now)
    s, f, t = found.get("s"), found.get("f"), found.get("t")
    if not (isinstance(s, str) and isinstance(f, str) and isinstance(t, str)):
        raise NotFound("this link is not valid", code="link_invalid")
    return SwapOffer(s, f, t)


async def accept_swap(db: Database, secret: str, token: str, *, now: datetime) -> HandoffOutcome:
    """``taker`` takes ``asker``'s place (same role) if both are still where they were."""
    offer = read_swap(secret, token, now)
    s, f, t = offer.session_id, offer.asker, offer.taker
    async with db.write() as conn:
        row = (
            await conn.execute(select(sessions).where(sessions.c.id == s).with_for_update())
        ).first()
        if row is None or row.status != SessionStatus.SCHEDULED or now >= row.starts_at:
            raise Gone("this drop-in is no longer ahead", code="session_over")
        if t in (row.lead_member_id, row.co_member_id):
            return "swapped"  # clicked twice
        if f not in (row.lead_member_id, row.co_member_id):
            return "swap_not_possible"
        if t in (await booked_facilitators(conn, [s])).get(s, set()):
            return "swap_not_possible"
        await conn.run_sync(_decide_locked, s, lambda session: session.swap(f, t, now), now)
    return "swapped"
