"""Recurrence: from a series' RRULE and wall-clock start to UTC instants.

Pure: no clock reads, no I/O. The rule is applied to *floating* local wall-clock times (a
drop-in at 19:30 London stays at 19:30 local across DST) and each local start is then resolved
to an instant in the group's zone with :func:`resolve_local`.

Local times that do not exist or exist twice follow RFC 5545 §3.3.5:

* in a **gap** (clocks jump forward, e.g. 01:30 on the last Sunday of March in London) the time
  is read with the offset *before* the gap, which moves it forward by the gap's length
  (01:30 → 02:30 BST);
* in a **fold** (clocks go back, 01:30 happens twice) the *first* occurrence is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as _rrule

# Frequencies a drop-in can sensibly have; sub-daily rules would flood the calendar.
ALLOWED_FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
ALLOWED_PARTS = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "BYDAY",
        "BYMONTHDAY",
        "BYMONTH",
        "BYSETPOS",
        "BYWEEKNO",
        "BYYEARDAY",
        "WKST",
    }
)
# A horizon never needs more sessions than this; it also bounds work on hostile rules.
MAX_OCCURRENCES = 2000
# Latest year a look-ahead starts in: leaves room for a 5-year window before 9999.
_PROBE_YEAR = 9993
_PART = re.compile(r"^[A-Z]+=[A-Za-z0-9,+\-:]+$")


class RecurrenceError(ValueError):
    """A rule, time zone or local time that cannot be used; the message says why."""


@dataclass(frozen=True)
class SeriesRule:
    """What a series says about when it happens.

    ``first_start`` is a naive wall-clock time in ``timezone``; the rule's occurrences are
    the matches at or after it, each at ``first_start``'s time of day.
    """

    rrule: str
    first_start: datetime
    duration: timedelta
    timezone: str


@dataclass(frozen=True)
class Occurrence:
    """One occurrence: its nominal local start (the recurrence id) and its UTC instants."""

    local_start: datetime
    starts_at: datetime
    ends_at: datetime


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or :class:`RecurrenceError`."""
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        raise RecurrenceError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    # OSError: a name that is a folder of the zone database, such as "Europe".
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise RecurrenceError(f"unknown time zone {name!r}") from exc


def normalize_rrule(value: str) -> str:
    """Check an RFC 5545 RRULE value (without ``RRULE:``) and return it in canonical form.

    Raises :class:`RecurrenceError` for syntax errors, unknown or duplicated parts, sub-daily
    frequencies and time-of-day parts (the time of day comes from the series' first start).
    """
    text = value.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if not text or len(text) > 500:
        raise RecurrenceError("rrule must be a non-empty RRULE value of at most 500 characters")
    parts: dict[str, str] = {}
    for raw in text.split(";"):
        item = raw.strip().upper()
        if not _PART.match(item):
            raise RecurrenceError(f"malformed rrule part {raw!r}")
        key, _, val = item.partition("=")
        if key not in ALLOWED_PARTS:
            raise RecurrenceError(f"rrule part {key} is not supported")
        if key in parts:
            raise RecurrenceError(f"rrule part {key} appears twice")
        parts[key] = val
    freq = parts.get("FREQ")
    if freq is None:
        raise RecurrenceError("rrule needs FREQ")
    if freq not in ALLOWED_FREQS:
        raise RecurrenceError(f"FREQ={freq} is not supported; use DAILY, WEEKLY, MONTHLY or YEARLY")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("rrule cannot have both COUNT and UNTIL")
    for key in ("INTERVAL", "COUNT"):
        if key in parts and not (parts[key].isdigit() and 1 <= int(parts[key]) <= 1000):
            raise RecurrenceError(f"{key} must be a whole number from 1 to 1000")
    for key, low, high in (
        ("BYMONTHDAY", 1, 31),
        ("BYYEARDAY", 1, 366),
        ("BYWEEKNO", 1, 53),
        ("BYSETPOS", 1, 366),
        ("BYMONTH", 1, 12),
    ):
        for item in parts.get(key, "").split(",") if key in parts else ():
            number = item.lstrip("+-")
            if (
                not number.isdigit()
                or not low <= int(number) <= high
                or (key == "BYMONTH" and item != number)
            ):
                raise RecurrenceError(
                    f"{key} values must be {'' if key == 'BYMONTH' else '±'}{low}..{high}"
                )
    canonical = ";".join(f"{k}={parts[k]}" for k in sorted(parts, key=_part_order))
    # Let dateutil judge the values (BYDAY=9XX and the like).
    _build(canonical, datetime(2000, 1, 1, 12, 0), ZoneInfo("UTC"))
    return canonical


def _part_order(key: str) -> tuple[int, str]:
    return (0 if key == "FREQ" else 1, key)


def _build(rule: str, first_start: datetime, tz: ZoneInfo) -> _rrule.rrule:
    parts = dict(p.split("=", 1) for p in rule.split(";"))
    until = parts.get("UNTIL")
    if until is not None:
        # dateutil wants UNTIL in the same (floating) frame as DTSTART: bring a UTC UNTIL to
        # local wall-clock time; a date-only UNTIL means the end of that local day.
        parts["UNTIL"] = _until_local(until, tz).strftime("%Y%m%dT%H%M%S")
    text = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        built = _rrule.rrulestr(text, dtstart=first_start, cache=False)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RecurrenceError(f"invalid rrule: {exc}") from exc
    if not isinstance(built, _rrule.rrule):  # pragma: no cover - rrulestr of one rule
        raise RecurrenceError("invalid rrule")
    return built


def _until_local(value: str, tz: ZoneInfo) -> datetime:
    try:
        if len(value) == 8:
            return datetime.strptime(value, "%Y%m%d").replace(hour=23, minute=59, second=59)
        if value.endswith("Z"):
            instant = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return instant.astimezone(tz).replace(tzinfo=None)
        return datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise RecurrenceError(f"invalid UNTIL {value!r}") from exc


def resolve_local(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of the naive wall-clock time ``local`` in ``tz`` (RFC 5545 rules).

    A time in a DST gap moves forward by the gap; a time in a fold takes its first occurrence.
    """
    if local.tzinfo is not None:
        raise RecurrenceError("local time must be naive (wall-clock, no offset)")
    first = local.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    # A wall time exists iff it survives the round trip; in a gap, fold=0 reads it with the
    # offset before the transition, which is exactly RFC 5545's "shift forward" rule.
    if instant.astimezone(tz).replace(tzinfo=None) != local:
        before = first.utcoffset()
        assert before is not None
        return (local - before).replace(tzinfo=UTC)
    return instant


def local_time_status(local: datetime, tz: ZoneInfo) -> str:
    """``"ok"``, ``"gap"`` (does not exist) or ``"fold"`` (happens twice) for a wall time."""
    a = local.replace(tzinfo=tz, fold=0)
    b = local.replace(tzinfo=tz, fold=1)
    if a.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local:
        return "gap"
    if a.utcoffset() != b.utcoffset():
        return "fold"
    return "ok"


def occurrences(rule: SeriesRule, start: datetime, end: datetime) -> list[Occurrence]:
    """Occurrences of ``rule`` whose UTC start lies in ``[start, end)``, in order.

    ``start`` and ``end`` are aware datetimes. At most :data:`MAX_OCCURRENCES` are returned.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise RecurrenceError("window bounds must be aware datetimes")
    if rule.duration <= timedelta(0):
        raise RecurrenceError("duration must be positive")
    tz = zone(rule.timezone)
    built = _build(normalize_rrule(rule.rrule), rule.first_start, tz)
    # Search the floating timeline with a day of slack on each side (offsets are < 1 day).
    lo = start.astimezone(tz).replace(tzinfo=None) - timedelta(days=1)
    hi = end.astimezone(tz).replace(tzinfo=None) + timedelta(days=1)
    found: list[Occurrence] = []
    for local in _iter_between(built, lo, hi):
        starts_at = resolve_local(local, tz)
        if start <= starts_at < end:
            found.append(Occurrence(local, starts_at, starts_at + rule.duration))
            if len(found) >= MAX_OCCURRENCES:
                break
    return found


def _iter_between(built: _rrule.rrule, lo: datetime, hi: datetime) -> Iterator[datetime]:
    # Series rules have passed first_occurrence(), so they match at least once every few
    # years and this walk reaches ``hi`` quickly.
    for value in built:
        if value >= hi:
            return
        if value >= lo:
            yield value


def first_occurrence(rule: SeriesRule, *, within_days: int = 5 * 366) -> datetime | None:
    """The first occurrence's local start within ``within_days`` of the first start, or None.

    Bounded in time even for rules that never match (31 February): dateutil would step
    through every day up to the year 9999 looking for one, so the search runs on a copy of
    the rule moved forward by whole 400-year Gregorian cycles (which keep every weekday, leap
    day and interval phase in place) to just before 9999, where that walk is short.
    """
    tz = zone(rule.timezone)
    built = _build(normalize_rrule(rule.rrule), rule.first_start, tz)
    start = rule.first_start
    cycles = max(0, (_PROBE_YEAR - start.year) // 400)
    shifted = start.replace(year=start.year + 400 * cycles)
    probe = built.replace(dtstart=shifted, count=None, until=None)
    value: datetime | None = next(iter(probe), None)
    if value is None or value - shifted > timedelta(days=within_days):
        return None
    first = value.replace(year=value.year - 400 * cycles)
    until = getattr(built, "_until", None)
    if until is not None and first > until:
        return None
    return first


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of the start of ``day`` and of the next day in ``tz``."""
    start = resolve_local(datetime(day.year, day.month, day.day), tz)
    nxt = day + timedelta(days=1)
    return start, resolve_local(datetime(nxt.year, nxt.month, nxt.day), tz)
