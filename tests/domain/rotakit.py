"""Builders for the rotation tables: monthly slots, facilitators, plans, expected shares."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from dropin.domain.rotation import (
    Assignment,
    Facilitator,
    RotaEntry,
    RotationPolicy,
    Slot,
    plan_rotation,
)

TZ = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
DEFAULT = RotationPolicy()
NO_GAP = RotationPolicy(rest_gap_sessions=0)


def second_tuesday(year: int, month: int) -> date:
    day = date(year, month, 8)
    return day + timedelta(days=(1 - day.weekday()) % 7)


def monthly(n: int, first: tuple[int, int] = (2027, 1)) -> list[Slot]:
    """``n`` sessions on the second Tuesday of each month, 19:30 London (across DST)."""
    out = []
    for i in range(n):
        y, m = divmod(first[0] * 12 + first[1] - 1 + i, 12)
        d = second_tuesday(y, m + 1)
        local = datetime(d.year, d.month, d.day, 19, 30, tzinfo=TZ)
        out.append(Slot(f"s{i:02d}", local.astimezone(UTC)))
    return out


SLOTS = monthly(24)


def day_of(slot: Slot) -> date:
    return slot.starts_at.astimezone(TZ).date()


def fac(member: str, **kw: object) -> Facilitator:
    """An experienced facilitator who joined long ago, unless told otherwise."""
    args: dict[str, object] = {"joined_at": LONG_AGO, "led_before": 5}
    args.update(kw)
    return Facilitator(member, **args)  # type: ignore[arg-type]


def new(member: str, **kw: object) -> Facilitator:
    kw.setdefault("led_before", 0)
    return fac(member, **kw)


def plan(
    facs: list[Facilitator],
    slots: list[Slot] = SLOTS,
    policy: RotationPolicy = DEFAULT,
    history: list[RotaEntry] | None = None,
) -> list[Assignment]:
    return plan_rotation(facs, history or [], slots, policy, now=NOW, tz=TZ)


def counts(rota: list[Assignment]) -> tuple[Counter[str], Counter[str]]:
    both: Counter[str] = Counter()
    leads: Counter[str] = Counter()
    for a in rota:
        both.update(p for p in (a.lead, a.co) if p is not None)
        if a.lead is not None:
            leads[a.lead] += 1
    return both, leads


def expected_shares(
    facs: list[Facilitator], slots: list[Slot]
) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    """The weighted share, computed independently: per session, among those who had joined and
    were available, two roles (one lead) split by weight."""
    both = {f.member_id: Fraction(0) for f in facs}
    leads = dict(both)
    for slot in slots:
        pool = [
            f for f in facs if f.joined_at <= slot.starts_at and day_of(slot) not in f.unavailable
        ]
        total = sum(Fraction(str(f.weight)) for f in pool)
        for f in pool:
            both[f.member_id] += 2 * Fraction(str(f.weight)) / total
            leads[f.member_id] += Fraction(str(f.weight)) / total
    return both, leads


def entry(a: Assignment, slots: list[Slot] = SLOTS) -> RotaEntry:
    slot = next(s for s in slots if s.session_id == a.session_id)
    return RotaEntry(a.session_id, slot.starts_at, a.lead, a.co)


# A facilitator who joins just before the 13th session; one away two months in three.
JOINS_AT_12 = SLOTS[12].starts_at - timedelta(days=3)
AWAY_MOST = frozenset(day_of(s) for i, s in enumerate(SLOTS) if i % 3 != 0)
