"""Facilitator rotation: who leads and who co-facilitates each upcoming session.

Pure, in the style of arq's ``cron.next_cron``: frozen inputs, ``now`` and the group's time zone
passed in, no clock reads, no I/O, and the same inputs (in any order) give the same rota.
``docs/rotation.md`` says the same rules in plain words for organizers.

**Fair share.** For every session inside the rolling window (``policy.window`` back from the
session being filled, that session included), each facilitator who *could have been asked* for
it (joined by then, available on that local date, under their quarterly limit) is owed
``roles * weight / (sum of the weights of everyone who could have been asked)``, where ``roles``
is the number of facilitators the session had (two for the one being filled). A facilitator's
*deficit* is what they are owed minus the sessions (lead or co) they did in the window. The
deficits of the people in the pool add up to zero, so nobody can fall behind without someone
else being ahead. Someone who joins later, or declares dates unavailable, is owed nothing for the
sessions they could not do: they never get a backlog to catch up on.

**Choice.** Candidates are ranked by deficit (largest first), then least recently facilitated
(joining counts as a facilitation, so a newcomer does not jump the queue on ties), then
``member_id``. The best-ranked allowed *pair* is taken (the best candidate who can be in any
allowed pair, with their best allowed partner). Within the pair, whoever is further below their
share of *leads* (same formula, one lead per session) leads, except that a new facilitator who
has never co-facilitated a session that has taken place is always the co.

**Hard rules** (never relaxed): joined before the session, not on a declared unavailable local
date, under the quarterly limit (calendar quarters in the group's zone), not excluded ("can't
make it"), lead != co, and a new facilitator (fewer than ``policy.new_threshold`` sessions led
that have taken place) is only ever with an experienced one: never two new ones together, never a
new one alone. **Soft rules**, relaxed in this order when nothing else works: the rest gap
(``rest_gap_sessions`` sessions of the group either side of a session a person facilitates),
then the co-facilitator (an experienced lead alone). Past that the session gets ``lead=None``
with a reason naming what blocked whom, for the caller to put in front of the organizer.
Every relaxation is recorded on the :class:`Assignment`; nothing is relaxed silently.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from fractions import Fraction
from typing import Literal

Relaxation = Literal["rest_gap", "no_co"]
Blocker = Literal["excluded", "not_joined", "unavailable", "quarter_cap"]

_BLOCKER_WORDS: dict[str, str] = {
    "excluded": "can't make it",
    "not_joined": "not yet joined",
    "unavailable": "unavailable that day",
    "quarter_cap": "at their quarterly limit",
    "new": "new, with no experienced facilitator free to pair with",
}


@dataclass(frozen=True)
class Facilitator:
    """A facilitator of the group, as the rotation sees them.

    ``unavailable`` holds local dates in the group's zone. ``led_before`` counts sessions they
    led that are *not* in the history passed alongside (e.g. before the group used dropin, or
    elsewhere); it only feeds experience, never fairness. ``max_per_quarter`` overrides the
    policy's default limit (``0`` pauses someone without removing them).
    """

    member_id: str
    joined_at: datetime
    weight: float = 1.0
    unavailable: frozenset[date] = frozenset()
    led_before: int = 0
    max_per_quarter: int | None = None

    def __post_init__(self) -> None:
        _aware(self.joined_at, f"joined_at of {self.member_id}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"weight of {self.member_id} must be a positive number")
        if self.led_before < 0:
            raise ValueError(f"led_before of {self.member_id} cannot be negative")
        if self.max_per_quarter is not None and self.max_per_quarter < 0:
            raise ValueError(f"max_per_quarter of {self.member_id} cannot be negative")


@dataclass(frozen=True)
class Slot:
    """An upcoming session that needs facilitators. ``starts_at`` is aware (any zone)."""

    session_id: str
    starts_at: datetime


@dataclass(frozen=True)
class RotaEntry:
    """A session whose facilitators are already decided: held, or assigned and kept."""

    session_id: str
    starts_at: datetime
    lead: str | None
    co: str | None = None


@dataclass(frozen=True)
class RotationPolicy:
    """The group's rotation settings; the defaults suit a monthly drop-in."""

    window: timedelta = timedelta(days=365)
    rest_gap_sessions: int = 1
    new_threshold: int = 3
    max_per_quarter: int | None = None

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError("window must be positive")
        if self.rest_gap_sessions < 0 or self.new_threshold < 0:
            raise ValueError("rest_gap_sessions and new_threshold cannot be negative")
        if self.max_per_quarter is not None and self.max_per_quarter < 0:
            raise ValueError("max_per_quarter cannot be negative")


@dataclass(frozen=True)
class Assignment:
    """The rotation's answer for one session.

    ``relaxed`` lists the soft rules that had to give; ``reason`` says in words (member ids, no
    names) what was relaxed or, with ``lead=None``, why nobody can lead.
    """

    session_id: str
    lead: str | None
    co: str | None
    relaxed: tuple[Relaxation, ...] = ()
    reason: str = ""

    @property
    def needs_organizer(self) -> bool:
        """True when the organizer should hear about it: no lead, or a lead alone."""
        return self.lead is None or self.co is None


def plan_rotation(
    facilitators: Iterable[Facilitator],
    history: Iterable[RotaEntry],
    slots: Iterable[Slot],
    policy: RotationPolicy,
    *,
    now: datetime,
    tz: tzinfo,
) -> list[Assignment]:
    """Assign a lead and a co-facilitator to each slot, in chronological order.

    ``history`` holds every session already decided (held ones and kept future assignments);
    each new assignment joins it before the next slot is filled, so the rota stays fair as it
    grows. Returns one :class:`Assignment` per slot, sorted by start then ``session_id``.
    Raises ``ValueError`` for naive datetimes, duplicate ids, or a slot that starts before
    ``now``.
    """
    ordered = sorted(slots, key=lambda s: (s.starts_at, s.session_id))
    seen: set[str] = set()
    for slot in ordered:
        if slot.session_id in seen:
            raise ValueError(f"session {slot.session_id} appears twice")
        seen.add(slot.session_id)
    rota = _Rota(facilitators, history, policy, now=now, tz=tz)
    out: list[Assignment] = []
    for slot in ordered:
        assignment = rota.choose(rota.slot(slot), frozenset(), keep=None)
        rota.record(slot, assignment)
        out.append(assignment)
    return out


def reassign(
    slot: Slot,
    facilitators: Iterable[Facilitator],
    history: Iterable[RotaEntry],
    policy: RotationPolicy,
    *,
    now: datetime,
    tz: tzinfo,
    exclude: Collection[str],
    keep: str | None = None,
) -> Assignment:
    """Re-run the rotation for one session without ``exclude`` ("can't make it").

    ``history`` may hold the session's own current entry: it is ignored. ``keep`` names the
    facilitator who stays (the other half of the old pair) so they are not reshuffled: they stay
    whenever they still pass the hard rules (roles may swap, and the rest gap gives way for them
    before they are dropped); otherwise it is a plain re-run.
    """
    rota = _Rota(facilitators, history, policy, now=now, tz=tz, skip=slot.session_id)
    return rota.choose(rota.slot(slot), frozenset(exclude), keep=keep)


def promote_co_to_lead(
    current: Assignment,
    slot: Slot,
    facilitators: Iterable[Facilitator],
    history: Iterable[RotaEntry],
    policy: RotationPolicy,
    *,
    now: datetime,
    tz: tzinfo,
) -> Assignment:
    """The 72 h handoff: the lead has not confirmed, so the co leads and a new co is chosen.

    The unconfirmed lead is out of this session. If the co may not lead (new and never a co in
    a held session, or now blocked by a hard rule), or no partner the rules allow can be found
    for them, the session is re-run with :func:`reassign`, keeping the co where possible.
    """
    if current.session_id != slot.session_id:
        raise ValueError("assignment and slot are for different sessions")
    out = frozenset() if current.lead is None else frozenset({current.lead})
    rota = _Rota(facilitators, history, policy, now=now, tz=tz, skip=slot.session_id)
    at = rota.slot(slot)
    co = current.co
    if co is not None and co not in out and rota.may_lead(co, at, out):
        promoted = rota.choose_co_for(co, at, out)
        if promoted is not None:
            return promoted
    return rota.choose(at, out, keep=co)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DecidedSession:
    """A decided session on the group's timeline."""

    key: tuple[datetime, str]  # (start, session_id): the timeline's total order
    day: date
    lead: str | None
    co: str | None
    held: bool  # it started before ``now``: it happened, so it counts as experience

    @property
    def start(self) -> datetime:
        return self.key[0]

    @property
    def people(self) -> tuple[str, ...]:
        return tuple(p for p in (self.lead, self.co) if p is not None)


@dataclass(frozen=True)
class _At:
    """The slot being filled, with its local date."""

    key: tuple[datetime, str]
    day: date

    @property
    def start(self) -> datetime:
        return self.key[0]

    @property
    def session_id(self) -> str:
        return self.key[1]


@dataclass(frozen=True)
class _Standing:
    """Where everyone stands for one slot."""

    order: list[str]  # everyone who passes the hard rules, best first
    blocked: dict[str, str]  # member_id -> blocker, for the others
    lead_key: dict[str, tuple[Fraction, datetime, str]]  # lower leads


class _Rota:
    """The timeline so far and the rules applied to it."""

    def __init__(
        self,
        facilitators: Iterable[Facilitator],
        history: Iterable[RotaEntry],
        policy: RotationPolicy,
        *,
        now: datetime,
        tz: tzinfo,
        skip: str | None = None,
    ) -> None:
        self.policy = policy
        self.now = _aware(now, "now")
        self.tz = tz
        # Sorted so that the order callers pass things in never matters.
        self.facs: dict[str, Facilitator] = {}
        for f in sorted(facilitators, key=lambda f: f.member_id):
            if f.member_id in self.facs:
                raise ValueError(f"facilitator {f.member_id} appears twice")
            self.facs[f.member_id] = f
        # Exact arithmetic: float shares could break ties differently for equal standings.
        self.weight = {m: Fraction(str(f.weight)) for m, f in self.facs.items()}
        self.timeline: list[_DecidedSession] = []
        # Sessions per local calendar quarter: the quarterly limit only ever looks at one.
        self.quarters: dict[tuple[int, int], list[_DecidedSession]] = {}
        self.ids: set[str] = set()
        for entry in history:
            if entry.session_id == skip:
                continue
            if entry.lead is not None and entry.lead == entry.co:
                raise ValueError(f"session {entry.session_id} has the same lead and co")
            self._insert(entry.session_id, entry.starts_at, entry.lead, entry.co)
        # Fixed here: everything added later starts at or after ``now``, so is never held.
        held = [s for s in self.timeline if s.held]
        self._experienced = {
            m: f.led_before + sum(1 for s in held if s.lead == m) >= policy.new_threshold
            for m, f in self.facs.items()
        }
        self._held_co = {m: any(s.co == m for s in held) for m in self.facs}

    # -- timeline -------------------------------------------------------------------------

    def _insert(
        self, session_id: str, starts_at: datetime, lead: str | None, co: str | None
    ) -> None:
        if session_id in self.ids:
            raise ValueError(f"session {session_id} appears twice")
        start = _aware(starts_at, f"starts_at of {session_id}")
        session = _DecidedSession(
            (start, session_id), self.local(start), lead, co, held=start < self.now
        )
        self.timeline.insert(bisect_left(self.keys(), session.key), session)
        self.quarters.setdefault(_quarter(session.day), []).append(session)
        self.ids.add(session_id)

    def keys(self) -> list[tuple[datetime, str]]:
        return [s.key for s in self.timeline]

    def local(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def slot(self, slot: Slot) -> _At:
        """Check ``slot`` and give it its local date."""
        start = _aware(slot.starts_at, f"starts_at of {slot.session_id}")
        if slot.session_id in self.ids:
            raise ValueError(f"session {slot.session_id} is already in the history")
        if start < self.now:
            raise ValueError(f"session {slot.session_id} starts before now")
        return _At((start, slot.session_id), self.local(start))

    def record(self, slot: Slot, assignment: Assignment) -> None:
        """Add a fresh assignment to the timeline so later slots see it."""
        if assignment.lead is not None:
            self._insert(slot.session_id, slot.starts_at, assignment.lead, assignment.co)

    # -- facts about people -----------------------------------------------------------------

    def experienced(self, member: str) -> bool:
        """Enough leads in sessions that took place: planned ones don't count until held."""
        return self._experienced[member]

    def has_held_co(self, member: str) -> bool:
        """Has co-facilitated a session that took place."""
        return self._held_co[member]

    def cap(self, member: str) -> int | None:
        own = self.facs[member].max_per_quarter
        return own if own is not None else self.policy.max_per_quarter

    def in_quarter(self, member: str, day: date, before: tuple[datetime, str] | None) -> int:
        """Sessions ``member`` does in ``day``'s quarter (only those before ``before`` if set)."""
        return sum(
            1
            for s in self.quarters.get(_quarter(day), [])
            if member in s.people and (before is None or s.key < before)
        )

    def blocker(self, member: str, at: _At, exclude: frozenset[str]) -> Blocker | None:
        """The hard rule that keeps ``member`` out of ``at``, if any."""
        f = self.facs[member]
        if member in exclude:
            return "excluded"
        if f.joined_at > at.start:
            return "not_joined"
        if at.day in f.unavailable:
            return "unavailable"
        cap = self.cap(member)
        if cap is not None and self.in_quarter(member, at.day, None) >= cap:
            return "quarter_cap"
        return None

    def could_have(self, member: str, s: _DecidedSession) -> bool:
        """Could ``member`` have been asked for the decided session ``s``? (Earns share.)"""
        f = self.facs[member]
        cap = self.cap(member)
        return (
            f.joined_at <= s.start
            and s.day not in f.unavailable
            and (cap is None or self.in_quarter(member, s.day, s.key) < cap)
        )

    def tired(self, at: _At) -> set[str]:
        """Who facilitates one of the ``rest_gap_sessions`` sessions either side of ``at``."""
        gap = self.policy.rest_gap_sessions
        i = bisect_left(self.keys(), at.key)
        near = self.timeline[max(0, i - gap) : i] + self.timeline[i : i + gap]
        return {p for s in near for p in s.people}

    # -- fairness -------------------------------------------------------------------------------

    def standing(self, at: _At, exclude: frozenset[str]) -> _Standing:
        """Rank everyone who passes the hard rules for ``at`` (see the module docstring)."""
        blocked: dict[str, str] = {}
        pool: list[str] = []
        for m in self.facs:
            why = self.blocker(m, at, exclude)
            if why is None:
                pool.append(m)
            else:
                blocked[m] = why
        owed = dict.fromkeys(self.facs, Fraction(0))
        owed_leads = dict.fromkeys(self.facs, Fraction(0))
        last = {m: f.joined_at for m, f in self.facs.items()}
        last_led = dict(last)
        since = at.start - self.policy.window
        for s in self.timeline:
            if s.key >= at.key:
                break
            for p in s.people:
                if p in self.facs:
                    last[p] = max(last[p], s.start)
            if s.lead in self.facs:
                last_led[s.lead] = max(last_led[s.lead], s.start)
            if s.start <= since:
                continue
            mine = [p for p in s.people if p in self.facs]
            if s.lead in self.facs:
                owed_leads[s.lead] -= 1
            for p in mine:
                owed[p] -= 1
            self._share(owed, owed_leads, [m for m in self.facs if self.could_have(m, s)], s)
        # The slot being filled is owed too (two roles, one lead): that is what makes the
        # greedy choice land within one session of the share (a quota method).
        total = sum((self.weight[m] for m in pool), Fraction(0))
        for m in pool:
            owed[m] += 2 * self.weight[m] / total
            owed_leads[m] += self.weight[m] / total
        order = sorted(pool, key=lambda m: (-owed[m], last[m], m))
        lead_key = {m: (-owed_leads[m], last_led[m], m) for m in pool}
        return _Standing(order, blocked, lead_key)

    def _share(
        self,
        owed: dict[str, Fraction],
        owed_leads: dict[str, Fraction],
        pool: list[str],
        s: _DecidedSession,
    ) -> None:
        roles = sum(1 for p in s.people if p in self.facs)
        if not pool or roles == 0:
            return
        total = sum((self.weight[m] for m in pool), Fraction(0))
        leads = 1 if s.lead in self.facs else 0
        for m in pool:
            owed[m] += roles * self.weight[m] / total
            owed_leads[m] += leads * self.weight[m] / total

    # -- choosing -------------------------------------------------------------------------------

    def pair_ok(self, a: str, b: str) -> bool:
        """Never two new facilitators together."""
        return a != b and (self.experienced(a) or self.experienced(b))

    def lead_of(self, a: str, b: str, st: _Standing) -> tuple[str, str]:
        """(lead, co) for an allowed pair."""
        for new, other in ((a, b), (b, a)):
            # New facilitators co-facilitate first; they lead once they have been a co.
            if not self.experienced(new) and not self.has_held_co(new):
                return other, new
        return (a, b) if st.lead_key[a] < st.lead_key[b] else (b, a)

    def choose(self, at: _At, exclude: frozenset[str], keep: str | None) -> Assignment:
        """The best assignment for ``at``, relaxing soft rules in the documented order."""
        st = self.standing(at, exclude)
        tired = self.tired(at) if self.policy.rest_gap_sessions else set()
        keeps = keep is not None and keep in st.order
        # (respect the rest gap, with a co, must include ``keep``), best first.
        levels = [(True, True, True), (False, True, True)] if keeps else []
        levels += [(True, True, False), (False, True, False), (True, False, False)]
        levels += [(False, False, False)]
        for rested, with_co, keeping in levels:
            cands = [m for m in st.order if not (rested and m in tired)]
            must = keep if keeping else None
            if with_co:
                pair = self._best_pair(cands, must)
                if pair is not None:
                    lead, co = self.lead_of(*pair, st)
                    return self._assignment(at, lead, co, tired, st)
            else:
                for m in cands:
                    if self.experienced(m):
                        return self._assignment(at, m, None, tired, st)
        return Assignment(at.session_id, None, None, reason=self._nobody(at, st))

    def _best_pair(self, cands: Sequence[str], must: str | None) -> tuple[str, str] | None:
        # Lexicographic over ranks: the best-ranked candidate who has any allowed partner,
        # with the best-ranked such partner.
        for i, a in enumerate(cands):
            for b in cands[i + 1 :]:
                if self.pair_ok(a, b) and (must is None or must in (a, b)):
                    return a, b
        return None

    def may_lead(self, member: str, at: _At, exclude: frozenset[str]) -> bool:
        """May ``member`` lead ``at`` (hard rules, and new ones only after a held co)?"""
        if member not in self.facs or self.blocker(member, at, exclude) is not None:
            return False
        return self.experienced(member) or self.has_held_co(member)

    def choose_co_for(self, lead: str, at: _At, exclude: frozenset[str]) -> Assignment | None:
        """``lead`` leads ``at``: the best co for them, rest gap relaxed if needed, or None."""
        st = self.standing(at, exclude)
        tired = self.tired(at) if self.policy.rest_gap_sessions else set()
        for rested in (True, False):
            for m in st.order:
                if (not rested or m not in tired) and self.pair_ok(lead, m):
                    return self._assignment(at, lead, m, tired, st)
        return None

    def _assignment(
        self, at: _At, lead: str, co: str | None, tired: set[str], st: _Standing
    ) -> Assignment:
        relaxed: list[Relaxation] = []
        notes: list[str] = []
        repeat = sorted(m for m in (lead, co) if m is not None and m in tired)
        if repeat:
            relaxed.append("rest_gap")
            gap = self.policy.rest_gap_sessions
            notes.append(
                f"rest gap relaxed: {', '.join(repeat)} also facilitate(s) one of the "
                f"{gap} session(s) either side"
            )
        if co is None:
            relaxed.append("no_co")
            # Only reached when no pair is allowed at all, so everyone else is blocked.
            why = _summary(st.blocked) or "the group has no other facilitator"
            notes.append(f"no co-facilitator for {at.session_id}: {why}")
        return Assignment(at.session_id, lead, co, tuple(relaxed), "; ".join(notes))

    def _nobody(self, at: _At, st: _Standing) -> str:
        if not self.facs:
            return f"no one can lead {at.session_id}: the group has no facilitators"
        blocked = dict(st.blocked)
        # Everyone left passes the hard rules, so they are new without an experienced partner.
        blocked.update(dict.fromkeys(st.order, "new"))
        return f"no one can lead {at.session_id} on {at.day.isoformat()}: {_summary(blocked)}"


def _summary(blocked: dict[str, str]) -> str:
    groups: dict[str, list[str]] = {}
    for member, why in sorted(blocked.items()):
        groups.setdefault(why, []).append(member)
    order = list(_BLOCKER_WORDS)
    return "; ".join(
        f"{_BLOCKER_WORDS[why]}: {', '.join(ms)}"
        for why, ms in sorted(groups.items(), key=lambda g: order.index(g[0]))
    )


def _quarter(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value
