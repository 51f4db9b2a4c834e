"""Materializing a series: which session rows to create, move or retire. Pure.

Sessions are rows (each can carry its own capacity, bookings and facilitators), so a series is
turned into rows over a rolling horizon, and an edited series is *re-planned*: the future
sessions are paired in order with the new rule's occurrences, so the 3rd upcoming session stays
the 3rd upcoming session with all its bookings, only at its new time. Leftover old sessions
are retired (cancelled, bookings kept on record); leftover new occurrences become new rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dropin.domain.recurrence import Occurrence


@dataclass(frozen=True)
class Existing:
    """A future session row as the planner sees it."""

    id: str
    occurrence_key: str
    starts_at: datetime
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


def replan(existing: Sequence[Existing], wanted: Sequence[Occurrence]) -> Plan:
    """Pair future sessions with the edited rule's occurrences, in order (see module doc)."""
    ordered = sorted(existing, key=lambda e: e.occurrence_key)
    moves = tuple(
        Move(old.id, occ, retime=not old.rescheduled)
        for old, occ in zip(ordered, wanted, strict=False)
    )
    pairs = len(moves)
    return Plan(
        create=tuple(wanted[pairs:]),
        move=moves,
        retire=tuple(old.id for old in ordered[pairs:]),
    )
