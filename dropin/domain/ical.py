"""Pure iCalendar building: member feeds (RFC 5545) and iTIP invites (RFC 5546).

Everything here is a function of its arguments: no I/O, no clock reads (callers pass `now`),
and the same inputs always give the same bytes, so a feed's bytes can be hashed into an ETag.

Time zones: events are written as ``DTSTART;TZID=Europe/London:...`` with a VTIMEZONE that we
derive ourselves from the zoneinfo database, as yearly RRULEs where the zone follows a rule and
as one component per onset where it does not. icalendar's own ``add_missing_timezones()``
writes comma-separated RDATE lists that ical.js and vobject read an hour off for half of each
year (London in winter, New York in summer), so it is not used. See docs/calendar.md.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import (
    Calendar,
    Event,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
    vDuration,
)

__all__ = [
    "PRODID",
    "CalendarEvent",
    "EventStatus",
    "Method",
    "PartStat",
    "build_feed",
    "build_invite",
    "discreet",
    "vtimezone",
    "wall_time",
]

PRODID = "-//dropin//dropin calendar 1.0//EN"
DISCREET_SUMMARY = "Drop-in"

EventStatus = Literal["CONFIRMED", "TENTATIVE", "CANCELLED"]
Method = Literal["REQUEST", "CANCEL"]
PartStat = Literal["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE"]

# Zones written as plain UTC ("...Z"): a UTC time needs no VTIMEZONE and every reader agrees.
_UTC_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One session as it appears in one member's calendar.

    `starts_at`/`ends_at` are aware datetimes (stored in UTC); `timezone` is the IANA zone the
    session is scheduled in, used to write local times. `uid` must stay the same for the
    session's whole life and `sequence` must rise with every change a member should see.
    Only what is passed here ends up in a calendar: callers decide what each member may see.
    """

    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    timezone: str
    summary: str
    last_modified: datetime
    description: str = ""
    url: str | None = None
    location: str | None = None
    status: EventStatus = "CONFIRMED"
    private: bool = False
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.uid or any(c in self.uid for c in "\r\n"):
            raise ValueError("uid must be a non-empty single line")
        if self.sequence < 0:
            raise ValueError("sequence must be >= 0")
        for name in ("starts_at", "ends_at", "last_modified"):
            object.__setattr__(self, name, _utc(getattr(self, name), name))
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.status not in get_args(EventStatus):
            raise ValueError(f"status must be one of {get_args(EventStatus)}")
        _zone(self.timezone)  # fail here, not halfway through building a feed
        object.__setattr__(self, "categories", tuple(self.categories))


def discreet(event: CalendarEvent, *, summary: str = DISCREET_SUMMARY) -> CalendarEvent:
    """Return `event` as it should look on a shared family calendar.

    Neutral SUMMARY, CLASS:PRIVATE, and no text the caller wrote (description, location,
    categories may name the group or its topic): only the personal join link survives.
    """
    return replace(
        event,
        summary=summary,
        description=f"Join: {event.url}" if event.url else "",
        location=event.url,
        categories=(),
        private=True,
    )


def build_feed(
    events: Iterable[CalendarEvent],
    *,
    calendar_name: str,
    now: datetime,
    refresh: timedelta = timedelta(hours=1),
) -> bytes:
    """Build a subscribable feed (METHOD:PUBLISH), one VEVENT per event.

    Each event's DTSTAMP is its own ``last_modified``: in a published calendar DTSTAMP is when
    the entry was last revised (RFC 5545 §3.8.7.2), so unchanged entries keep their bytes and
    a feed rebuilt after one change re-encodes only that entry. ``now`` is checked (it must be
    aware) but not written, so the output is byte-identical until something changes.
    """
    _utc(now, "now")
    if refresh <= timedelta(0):
        raise ValueError("refresh must be positive")
    cal = _calendar_head("PUBLISH")
    cal.add("x-wr-calname", calendar_name)
    cal.add("name", calendar_name)
    cal.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    # An X- property would be written as str(timedelta) ("1:00:00"): say it is a duration.
    cal.add("x-published-ttl", vDuration(refresh))
    ordered = sorted(events, key=lambda e: (e.starts_at, e.uid))
    return _assemble(cal, _vtimezones(ordered), [_vevent_ical(e, e.last_modified) for e in ordered])


def build_invite(
    event: CalendarEvent,
    *,
    method: Method,
    organizer_email: str,
    organizer_name: str,
    attendee_email: str,
    attendee_name: str,
    partstat: PartStat = "NEEDS-ACTION",
    rsvp: bool = True,
    now: datetime,
) -> bytes:
    """Build an iTIP message (RFC 5546) for one recipient.

    METHOD:REQUEST creates or updates the event in place (same UID, caller raises SEQUENCE);
    METHOD:CANCEL removes it and always carries STATUS:CANCELLED and RSVP=FALSE. The recipient
    is the only ATTENDEE, so no invite ever shows who else is coming.
    """
    if method not in get_args(Method):
        raise ValueError(f"method must be one of {get_args(Method)}")
    if partstat not in get_args(PartStat):
        raise ValueError(f"partstat must be one of {get_args(PartStat)}")
    if method == "CANCEL":
        event = replace(event, status="CANCELLED")
        rsvp = False  # nothing to answer
    elif event.status == "CANCELLED":
        raise ValueError("a cancelled event is sent with method CANCEL, not REQUEST")
    stamp = _utc(now, "now")
    cal = _calendar_head(method)
    vevent = _vevent(event, stamp)
    vevent.add("organizer", _address(organizer_email, organizer_name))
    attendee = _address(attendee_email, attendee_name)
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = partstat
    attendee.params["RSVP"] = "TRUE" if rsvp else "FALSE"
    vevent.add("attendee", attendee)
    return _assemble(cal, _vtimezones([event]), [vevent.to_ical()])


def vtimezone(tzid: str, first: datetime, last: datetime) -> Timezone:
    """A VTIMEZONE for `tzid` that is exact for every instant from `first` to `last`.

    Exact at least from the year before `first` to the year after `last`. Rules in force then
    are written from when they began (at most back to 1970), so the output rarely depends on
    the dates; a rule still in force at the end is left open (no UNTIL), as the zone's
    current rule; a zone without changes gets one observance.
    """
    first, last = _utc(first, "first"), _utc(last, "last")
    if last < first:
        raise ValueError("last must not be before first")
    return _vtimezone(_zone(tzid).key, first.year, last.year)


def _vtimezone(key: str, first_year: int, last_year: int) -> Timezone:
    tz = Timezone()
    tz.add("tzid", key)
    for obs in _observances(key, first_year, last_year):
        comp = TimezoneDaylight() if obs.is_dst else TimezoneStandard()
        comp.add("dtstart", obs.dtstart)
        if obs.rrule is not None:
            comp.add("rrule", dict(obs.rrule))
        comp.add("tzoffsetfrom", obs.offset_from)
        comp.add("tzoffsetto", obs.offset_to)
        if obs.name:
            comp.add("tzname", obs.name)
        tz.add_component(comp)
    return tz


# -- events -----------------------------------------------------------------------------------


def _calendar_head(method: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    return cal


def _vevent(event: CalendarEvent, stamp: datetime) -> Event:
    vevent = Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", stamp)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstart", wall_time(event.starts_at, event.timezone))
    vevent.add("dtend", wall_time(event.ends_at, event.timezone))
    vevent.add("summary", event.summary)
    if event.description:
        vevent.add("description", event.description)
    if event.location:
        vevent.add("location", event.location)
    if event.url:
        vevent.add("url", event.url)
    vevent.add("status", event.status)
    if event.private:
        vevent.add("class", "PRIVATE")
    if event.categories:
        vevent.add("categories", list(event.categories))
    # A cancelled session should not block the member's time.
    vevent.add("transp", "TRANSPARENT" if event.status == "CANCELLED" else "OPAQUE")
    vevent.add("last-modified", event.last_modified)
    return vevent


def wall_time(instant: datetime, tzid: str) -> datetime:
    """The datetime an instant is written as: local time in `tzid`, or UTC where local misleads.

    A wall time repeated when clocks go back (01:30 on the last Sunday of October in London)
    is ambiguous, and readers disagree: RFC 5545 and vobject take the first, ical.js and
    libical the second. Such instants are written in UTC, and so is everything in a zone that
    is plain UTC around the instant (vobject treats a VTIMEZONE that equals UTC as no zone).
    """
    if tzid in _UTC_KEYS:
        return instant
    zone = _zone(tzid)
    local = instant.astimezone(zone)
    if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        return instant
    if not local.utcoffset() and _plain_utc(zone.key, instant.year):
        return instant
    return local


def _vtimezones(events: Iterable[CalendarEvent]) -> list[bytes]:
    """One VTIMEZONE per zone some event is written in, covering that zone's events."""
    spans: dict[str, tuple[int, int]] = {}
    for event in events:
        for instant in (event.starts_at, event.ends_at):
            if wall_time(instant, event.timezone).tzinfo is UTC:
                continue
            lo, hi = spans.get(event.timezone, (instant.year, instant.year))
            spans[event.timezone] = (min(lo, instant.year), max(hi, instant.year))
    return [_vtimezone_ical(tzid, lo, hi) for tzid, (lo, hi) in sorted(spans.items())]


@lru_cache(maxsize=1024)
def _vtimezone_ical(key: str, first_year: int, last_year: int) -> bytes:
    return bytes(_vtimezone(key, first_year, last_year).to_ical())


# Serialising through icalendar costs ~0.15 ms an event; a feed is rebuilt far more often
# than its sessions change, so each event's bytes are kept (frozen events hash by value).
@lru_cache(maxsize=8192)
def _vevent_ical(event: CalendarEvent, stamp: datetime) -> bytes:
    return bytes(_vevent(event, stamp).to_ical())


_END = b"END:VCALENDAR\r\n"


def _assemble(head: Calendar, vtimezones: list[bytes], vevents: list[bytes]) -> bytes:
    """The calendar `head` with the already-serialised components spliced in, in order."""
    text = bytes(head.to_ical())
    assert text.endswith(_END)
    return b"".join([text[: -len(_END)], *vtimezones, *vevents, _END])


def _address(email: str, name: str) -> vCalAddress:
    if not email or any(c in email for c in "\r\n:;,<> "):
        raise ValueError(f"not a plain email address: {email!r}")
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = name
    return address


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


@cache
def _zone(tzid: str) -> ZoneInfo:
    # posix/ and right/ (leap-second) copies and the like are not zones a person lives in.
    if tzid.startswith(("posix/", "right/")) or tzid in ("localtime", "posixrules", "Factory"):
        raise ValueError(f"unknown time zone: {tzid!r}")
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe", too long
        raise ValueError(f"unknown time zone: {tzid!r}") from exc


# -- time zone rules --------------------------------------------------------------------------
#
# zoneinfo has no public list of transitions, so we find them by sampling offsets (daily
# inside the window of interest, fortnightly outside it) and bisecting each change to the second.
# Transitions of one kind (same offsets, same name) are matched against the yearly rule shapes
# RFC 5545 can say (second Sunday of March, last Sunday of October, Friday on or after the
# 23rd, a fixed date); consecutive years that fit one rule become one RRULE, anything else one
# component per onset. No RDATE: ical.js reads only the first value of each RDATE and drops
# the DTSTART onset of a component with RDATEs and no RRULE.
#
# A rule in force in the window is written from when it started (back to 1970), not from the
# window: the output is then the same for every window (stable bytes, stable ETags), and
# vobject, which compares a VTIMEZONE with UTC over 2000-2020 and, if they look equal, quietly
# swaps in pytz's copy of the zone (which stops at 2037), sees London as what it is.

_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY = 86_400
_COARSE = 14 * _DAY  # outside the window only rule extents depend on it, never an instant
_FLOOR_YEAR = 1970
_LOOKAHEAD_YEARS = 10

State = tuple[timedelta, int, str]  # offset, sign of the DST offset, abbreviation


@dataclass(frozen=True, slots=True)
class _Transition:
    at: int  # POSIX seconds of the first instant in the new state
    offset_from: timedelta
    offset_to: timedelta
    is_dst: bool
    name: str

    @property
    def local(self) -> datetime:
        """Wall time of the onset in the old offset: what DTSTART means in a VTIMEZONE."""
        return datetime.fromtimestamp(self.at, UTC).replace(tzinfo=None) + self.offset_from


@dataclass(frozen=True, slots=True)
class _Observance:
    is_dst: bool
    dtstart: datetime  # naive local wall time
    offset_from: timedelta
    offset_to: timedelta
    name: str
    rrule: tuple[tuple[str, Any], ...] | None


@dataclass(slots=True)
class _Run:
    """Consecutive yearly transitions of one kind that one rule describes."""

    members: list[_Transition]
    keys: set[tuple[Any, ...]]
    last_of_kind: bool = False


def _state(zone: ZoneInfo, ts: int) -> State:
    local = datetime.fromtimestamp(ts, zone)
    offset = local.utcoffset() or timedelta(0)
    dst = local.dst() or timedelta(0)
    return offset, (dst > timedelta(0)) - (dst < timedelta(0)), local.tzname() or ""


def _is_daylight(old: State, new: State) -> bool:
    """Whether the onset of `new` is a DAYLIGHT observance.

    tzdata gives Europe/Dublin a negative DST offset in winter (Irish Standard Time is the
    summer one). Calling that summer time STANDARD would leave a VTIMEZONE with no DAYLIGHT
    at all, which vobject mistakes for UTC; so leaving negative DST counts as daylight.
    """
    return new[1] > 0 or (new[1] == 0 and old[1] < 0)


def _timestamp(year: int, month: int = 1) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def _transitions(zone: ZoneInfo, start: int, end: int, step: int) -> list[_Transition]:
    """Every change of offset, DST flag or name in (start, end], sampled `step` seconds apart."""
    found: list[_Transition] = []
    before = _state(zone, start)
    ts = start
    while ts < end:
        nxt = min(ts + step, end)
        after = _state(zone, nxt)
        if after != before:
            lo, hi = ts, nxt  # state(lo) == before, state(hi) != before
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _state(zone, mid) == before:
                    lo = mid
                else:
                    hi = mid
            new = _state(zone, hi)
            found.append(_Transition(hi, before[0], new[0], _is_daylight(before, new), new[2]))
            before, ts = new, hi
            continue
        ts = nxt
    return found


def _rule_keys(local: datetime) -> set[tuple[Any, ...]]:
    """Every yearly rule (within its month) that produces the date of `local`."""
    day, weekday = local.day, _WEEKDAYS[local.weekday()]
    days_in_month = _calendar.monthrange(local.year, local.month)[1]
    keys: set[tuple[Any, ...]] = {("day", day)}
    if day <= 28:
        keys.add(("nth", (day - 1) // 7 + 1, weekday))
    if day > days_in_month - 7:
        keys.add(("last", weekday))
    for lo in range(max(1, day - 6), day + 1):
        if lo + 6 <= (28 if local.month == 2 else 30):
            keys.add(("from", lo, weekday))
    return keys


def _best_rule(keys: set[tuple[Any, ...]], month: int) -> tuple[tuple[str, Any], ...]:
    def rank(key: tuple[Any, ...]) -> tuple[int, int]:
        # Prefer the shapes real zone rules use: "last Sunday" over "4th Sunday" when the
        # years seen allow both.
        kind = key[0]
        if kind == "nth":
            return (0 if key[1] < 4 else 2), key[1]
        return {"last": 1, "day": 3, "from": 4}[kind], key[1] if kind != "last" else 0

    key = min(keys, key=rank)
    if key[0] == "nth":
        by: tuple[tuple[str, Any], ...] = (("BYDAY", f"{key[1]}{key[2]}"),)
    elif key[0] == "last":
        by = (("BYDAY", f"-1{key[1]}"),)
    elif key[0] == "day":
        by = (("BYMONTHDAY", key[1]),)
    else:
        by = (("BYDAY", key[2]), ("BYMONTHDAY", list(range(key[1], key[1] + 7))))
    return (("FREQ", "YEARLY"), ("BYMONTH", month), *by)


def _runs(transitions: list[_Transition]) -> dict[int, _Run]:
    """Group transitions into rule runs; maps each transition's `at` to its run.

    Runs are grown from the latest transition backwards, so a year that fits both an old and
    the current rule (1996-98 in London fit "4th Sunday" and "last Sunday") joins the current.
    """
    groups: dict[tuple[timedelta, timedelta, bool, str], list[_Run]] = {}
    run_of: dict[int, _Run] = {}
    for t in reversed(transitions):
        runs = groups.setdefault((t.offset_from, t.offset_to, t.is_dst, t.name), [])
        local, keys = t.local, _rule_keys(t.local)
        if runs:
            run = runs[-1]
            nxt = run.members[-1].local
            if (
                local.year == nxt.year - 1
                and local.month == nxt.month
                and local.time() == nxt.time()
                and run.keys & keys
            ):
                run.members.append(t)
                run.keys &= keys
                run_of[t.at] = run
                continue
        runs.append(_Run([t], keys, last_of_kind=not runs))
        run_of[t.at] = runs[-1]
    for runs in groups.values():
        for run in runs:
            run.members.reverse()
    return run_of


@lru_cache(maxsize=256)
def _observances(key: str, first_year: int, last_year: int) -> tuple[_Observance, ...]:
    zone = _zone(key)
    floor = _timestamp(_FLOOR_YEAR)
    start = _timestamp(first_year - 1)  # the window that must be exact...
    end = _timestamp(last_year + 2)
    horizon = _timestamp(last_year + 2 + _LOOKAHEAD_YEARS)  # ...and how far to look for rules
    transitions = (
        _transitions(zone, floor, start, _COARSE)
        + _transitions(zone, start, end, _DAY)
        + _transitions(zone, end, horizon, _COARSE)
    )
    run_of = _runs(transitions)
    in_window = [t for t in transitions if start <= t.at < end]
    relevant = {id(run_of[t.at]) for t in in_window}
    before = [t for t in transitions if t.at < start]
    # Rules in force in the window are written back to the last change that is not theirs.
    era = max((t.at + 1 for t in before if id(run_of[t.at]) not in relevant), default=floor)

    result: list[_Observance] = []
    if not before:
        # Nothing changed since 1970 (or ever): one observance says the offset.
        offset, dst, name = _state(zone, floor)
        result.append(_Observance(dst > 0, datetime(_FLOOR_YEAR, 1, 1), offset, offset, name, None))
    elif id(run_of[before[-1].at]) not in relevant:
        result.append(_single(before[-1]))  # the state in force when the window opens

    seen: set[int] = set()
    for t in in_window:
        run = run_of[t.at]
        if id(run) in seen:
            continue
        seen.add(id(run))
        members = [m for m in run.members if m.at >= era]
        if len(members) == 1:
            result.append(_single(members[0]))
            continue
        head, tail = members[0], members[-1]
        rule = _best_rule(run.keys, head.local.month)
        # Still in force at the horizon: the zone's current rule, left open-ended.
        if not (run.last_of_kind and tail.at >= horizon - 366 * _DAY):
            # UNTIL is UTC (RFC 5545 3.3.10); a day past the last onset, so that a reader
            # comparing it as local wall time (dateutil, under vobject) still includes that
            # onset while the next year's stays excluded.
            rule = (*rule[:1], ("UNTIL", datetime.fromtimestamp(tail.at + _DAY, UTC)), *rule[1:])
        result.append(
            _Observance(head.is_dst, head.local, head.offset_from, head.offset_to, head.name, rule)
        )
    result.sort(key=lambda o: o.dtstart - o.offset_from)
    return tuple(result)


@lru_cache(maxsize=1024)
def _plain_utc(key: str, year: int) -> bool:
    """Whether the zone sits at +00:00 all through the VTIMEZONE window around `year`."""
    observances = _observances(key, year, year)
    return len(observances) == 1 and observances[0].offset_to == timedelta(0)


def _single(t: _Transition) -> _Observance:
    return _Observance(t.is_dst, t.local, t.offset_from, t.offset_to, t.name, None)
