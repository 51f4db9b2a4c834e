"""Typed edits: what an organizer asks to change, field by field.

A field left out of a PATCH keeps its value; that is :data:`UNSET`, which is not ``None``
(``None`` is a value for some fields: a member's ``timezone`` of ``None`` follows the group's).
Services read an edit with :func:`changed`, which yields only the fields that were given. A
session's edit is the aggregate's own: :class:`dropin.domain.session.SessionEdit`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, Literal


class _Keep(Enum):
    UNSET = "unset"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Keep.UNSET
# The type of a field that may be left out.
Unset = Literal[_Keep.UNSET]


@dataclass(frozen=True)
class GroupEdit:
    name: str | Unset = UNSET
    description: str | Unset = UNSET
    discreet: bool | Unset = UNSET
    public: bool | Unset = UNSET
    # None: no alerts by mail.
    organizer_email: str | Unset | None = UNSET


@dataclass(frozen=True)
class MemberEdit:
    display_name: str | Unset = UNSET
    # A new address: new personal links too (the old ones stop working), mailed to it.
    email: str | Unset = UNSET
    # None: follow the group's setting.
    discreet: bool | Unset | None = UNSET
    # None: the group's zone.
    timezone: str | Unset | None = UNSET
    # Facilitators' rotation settings.
    weight: float | Unset = UNSET
    max_per_quarter: int | Unset | None = UNSET
    led_before: int | Unset = UNSET


@dataclass(frozen=True)
class SeriesEdit:
    title: str | Unset = UNSET
    rrule: str | Unset = UNSET
    # Wall-clock time in the group's zone (naive).
    first_start: datetime | Unset = UNSET
    duration_minutes: int | Unset = UNSET
    capacity: int | Unset = UNSET


def changed(edit: GroupEdit | MemberEdit | SeriesEdit) -> dict[str, Any]:
    """The fields ``edit`` gives, by name (those left :data:`UNSET` are not there)."""
    given = {f.name: getattr(edit, f.name) for f in fields(edit)}
    return {name: value for name, value in given.items() if value is not UNSET}
