"""Materializing a series: which session rows to create, move or retire. Pure.

Sessions are rows (each carries its own capacity, bookings and facilitators), so a series is
turned into rows over a rolling horizon, and an edited series is *re-planned* by aligning
its future sessions with the edited rule's occurrences in time order:

* a session and an occurrence less than ``tolerance`` apart are the same drop-in: the session
  keeps its id and bookings and moves to the occurrence's time (2nd Tuesday → 3rd Tuesday,
  19:30 → 20:00);
* a session with no occurrence near it is retired (cancelled, bookings kept on record, and
  reinstated if a later edit brings an occurrence back near it);
* an occurrence with no session near it becomes a new session.

The tolerance is half the usual gap between occurrences (half a week for a weekly series,
about two weeks for a monthly one), so a booking never jumps to a different week or month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from dropin.domain.recurrence import Occurrence

MIN_TOLERANCE = timedelta(hours=1)
MAX_TOLERANCE = timedelta(days=16)
DEFAULT_TOLERANCE = timedelta(days=3)


@dataclass(frozen=True)
class Existing:
    """A future session row as the planner sees it.

    ``anchor`` is the instant the rule gave it (for a session moved by hand, where it was
    before the move), so hand moves do not confuse the alignment.
    """

    id: str
    anchor: datetime
    rescheduled: bool


@dataclass(frozen=True)
class Move:
    """Give session ``session_id`` the new occurrence; its time changes unless rescheduled."""

    session_id: str
    occurrence: Occurrence
    retime: bool


@dataclass(frozen=True)
class Plan:
    """What an edit of a series does to its future sessions."""

    create: tuple[Occurrence, ...]
    move: tuple[Move, ...]
    retire: tuple[str, ...]


def occurrence_key(local_start: datetime) -> str:
    """The stable key of an occurrence: its nominal local start, to the second."""
    return local_start.strftime("%Y-%m-%dT%H:%M:%S")


def new_occurrences(found: Sequence[Occurrence], taken: set[str]) -> list[Occurrence]:
    """Occurrences in ``found`` whose key is not ``taken`` yet (extending the horizon)."""
    return [o for o in found if occurrence_key(o.local_start) not in taken]


def tolerance(wanted: Sequence[Occurrence]) -> timedelta:
    """Half the median gap between consecutive occurrences, within sensible bounds."""
    starts = sorted(o.starts_at for o in wanted)
    gaps = sorted(b - a for a, b in pairwise(starts))
    if not gaps:
        return DEFAULT_TOLERANCE
    half = gaps[len(gaps) // 2] / 2
    return max(MIN_TOLERANCE, min(MAX_TOLERANCE, half))


def replan(existing: Sequence[Existing], wanted: Sequence[Occurrence], within: timedelta) -> Plan:
    """Align future sessions with the edited rule's occurrences (see the module doc)."""
    olds = sorted(existing, key=lambda e: (e.anchor, e.id))
    news = sorted(wanted, key=lambda o: o.starts_at)
    moves: list[Move] = []
    create: list[Occurrence] = []
    retire: list[str] = []
    i = j = 0
    while i < len(olds) and j < len(news):
        old, new = olds[i], news[j]
        if abs(new.starts_at - old.anchor) <= within:
            moves.append(Move(old.id, new, retime=not old.rescheduled))
            i += 1
            j += 1
        elif old.anchor < new.starts_at:
            retire.append(old.id)
            i += 1
        else:
            create.append(new)
            j += 1
    retire += [old.id for old in olds[i:]]
    create += news[j:]
    return Plan(tuple(create), tuple(moves), tuple(retire))
