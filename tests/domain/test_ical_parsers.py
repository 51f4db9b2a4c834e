"""Feeds and invites read the same in parsers no one here wrote: ical.js, libical, vobject.

Every case is built with dropin.domain.ical, handed to all three parsers (batched, one process
per parser for the session), and each parser's UTC instants are compared with the
CalendarEvent's own `starts_at`/`ends_at`, together with UID, SEQUENCE, STATUS and METHOD.
Missing parsers fail the session with instructions; they are never skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest

from dropin.domain.ical import CalendarEvent, build_feed, build_invite, discreet, wall_time
from tests.parsers import (
    INSTALL_SCRIPT,
    Dump,
    missing_tools,
    read_icaljs,
    read_libical,
    read_vobject,
)

NOW = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
JOIN = "https://dropin.test/j/7f3a"


def at(tz: str, local: str, fold: int = 0) -> datetime:
    """The instant a wall time in `tz` means (fold=1: the second of a repeated hour)."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def event(
    uid: str,
    tz: str,
    local: str,
    minutes: int = 75,
    *,
    fold: int = 0,
    sequence: int = 0,
    status: str = "CONFIRMED",
) -> CalendarEvent:
    start = at(tz, local, fold)
    return CalendarEvent(
        uid=f"{uid}@dropin.test",
        sequence=sequence,
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        timezone=tz,
        summary=f"Drop-in {uid}",
        description=f"Join: {JOIN}",
        url=JOIN,
        location=JOIN,
        status=status,  # type: ignore[arg-type]
        last_modified=NOW,
    )


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    events: tuple[CalendarEvent, ...]
    method: str


def feed(name: str, *events: CalendarEvent) -> Case:
    text = build_feed(events, calendar_name="My drop-ins", now=NOW).decode()
    return Case(name, text, events, "PUBLISH")


def invite(name: str, method: str, ev: CalendarEvent) -> Case:
    text = build_invite(
        ev,
        method=method,  # type: ignore[arg-type]
        organizer_email="circle@dropin.test",
        organizer_name="NVR circle",
        attendee_email="parent@example.test",
        attendee_name="Sam",
        partstat="NEEDS-ACTION" if method == "REQUEST" else "DECLINED",
        now=NOW,
    ).decode()
    if method == "CANCEL":
        ev = replace(ev, status="CANCELLED")
    return Case(name, text, (ev,), method)


def monthly(uid: str, tz: str, first: str, count: int, minutes: int = 75) -> list[CalendarEvent]:
    start = datetime.fromisoformat(first)
    out = []
    for i in range(count):
        year, month = divmod(start.month - 1 + i, 12)
        local = start.replace(year=start.year + year, month=month + 1)
        out.append(event(f"{uid}-{i}", tz, local.isoformat(), minutes))
    return out


def two_hundred() -> list[CalendarEvent]:
    """200 sessions over ~20 months in ten zones, clocks on every side of the world."""
    zones = [
        "Europe/London",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "Asia/Kathmandu",
        "Australia/Adelaide",
        "America/Sao_Paulo",
        "Europe/Berlin",
        "UTC",
    ]
    out: list[CalendarEvent] = []
    for z, tz in enumerate(zones):
        for i in range(20):
            # Second Tuesday-ish, spread over the day, so some sit near transitions.
            day = datetime(2026, 1, 1) + timedelta(days=30 * i + 3 * z, hours=7 + z, minutes=15)
            out.append(event(f"bulk-{z}-{i}", tz, day.isoformat(), 60 + 5 * z))
    return out


REGULAR = event("moved", "Europe/London", "2026-02-10T19:30")
MOVED = replace(
    REGULAR,
    sequence=1,
    starts_at=at("Europe/London", "2026-04-14T20:00"),
    ends_at=at("Europe/London", "2026-04-14T21:15"),
)
CANCELLED = replace(MOVED, sequence=2, status="CANCELLED")

CASES: list[Case] = [
    # Both hemispheres, winter and summer.
    feed(
        "january_and_july",
        *[
            event(f"{tz.split('/')[-1]}-{m}", tz, f"2026-{m:02}-13T19:30")
            for tz in ("Europe/London", "America/New_York", "Australia/Sydney")
            for m in (1, 7)
        ],
    ),
    # Transition weekends. London springs forward 2026-03-29 01:00Z, falls back 10-25 01:00Z.
    feed(
        "london_transition_weekends",
        event("sat-before-spring", "Europe/London", "2026-03-28T19:30"),
        event("across-spring-gap", "Europe/London", "2026-03-29T00:30", 60),
        event("after-spring-gap", "Europe/London", "2026-03-29T03:00"),
        event("sun-spring", "Europe/London", "2026-03-29T19:30"),
        event("sat-before-fall", "Europe/London", "2026-10-24T19:30"),
        event("across-fall", "Europe/London", "2026-10-25T00:00", 240),
        event("first-0130", "Europe/London", "2026-10-25T01:30", 30, fold=0),
        event("second-0130", "Europe/London", "2026-10-25T01:30", 30, fold=1),
        event("sun-fall", "Europe/London", "2026-10-25T19:30"),
    ),
    # Sydney: back to AEST 2026-04-05 03:00 AEDT, forward to AEDT 2026-10-04 02:00 AEST.
    feed(
        "sydney_transition_weekends",
        event("sat-before-april", "Australia/Sydney", "2026-04-04T19:30"),
        event("across-april", "Australia/Sydney", "2026-04-05T01:00", 240),
        event("second-0230", "Australia/Sydney", "2026-04-05T02:30", 30, fold=1),
        event("sun-april", "Australia/Sydney", "2026-04-05T19:30"),
        event("sat-before-october", "Australia/Sydney", "2026-10-03T19:30"),
        event("across-october", "Australia/Sydney", "2026-10-04T01:30", 120),
        event("sun-october", "Australia/Sydney", "2026-10-04T19:30"),
    ),
    feed(
        "new_york_transition_weekends",
        event("across-march", "America/New_York", "2026-03-08T01:30", 60),
        event("sun-march", "America/New_York", "2026-03-08T19:30"),
        event("across-november", "America/New_York", "2026-11-01T00:30", 180),
        event("sun-november", "America/New_York", "2026-11-01T19:30"),
    ),
    # Half-hour and odd offsets, with and without DST.
    feed(
        "odd_offsets",
        event("kolkata", "Asia/Kolkata", "2026-01-13T19:30"),
        event("kolkata-july", "Asia/Kolkata", "2026-07-14T19:30"),
        event("kathmandu", "Asia/Kathmandu", "2026-03-10T19:30"),
        event("chatham-jan", "Pacific/Chatham", "2026-01-13T19:30"),
        event("chatham-jul", "Pacific/Chatham", "2026-07-14T19:30"),
        event("chatham-april-repeat", "Pacific/Chatham", "2026-04-05T03:00", 90, fold=1),
        event("chatham-september", "Pacific/Chatham", "2026-09-27T02:00", 120),
        event("adelaide-jan", "Australia/Adelaide", "2026-01-13T19:30"),
        event("adelaide-jul", "Australia/Adelaide", "2026-07-14T19:30"),
        event("adelaide-october", "Australia/Adelaide", "2026-10-04T01:30", 120),
        event("newfoundland", "America/St_Johns", "2026-11-01T00:30", 180),
        event("utc", "UTC", "2026-05-05T12:00"),
    ),
    # Zones whose rules changed or are unusual, so VTIMEZONEs need UNTIL or odd rule shapes.
    feed(
        "rule_changes",
        *monthly("ny-2006", "America/New_York", "2006-01-10T19:30", 30),
        *monthly("apia", "Pacific/Apia", "2020-06-09T19:30", 14),
        *monthly("mexico", "America/Mexico_City", "2022-01-11T19:30", 14),
        *monthly("tehran", "Asia/Tehran", "2021-01-12T19:30", 26),
        *monthly("jerusalem", "Asia/Jerusalem", "2026-01-13T19:30", 12),
        *monthly("dublin", "Europe/Dublin", "2026-01-13T19:30", 12),
        event("jerusalem-friday", "Asia/Jerusalem", "2026-03-27T01:00", 120),
    ),
    feed("far_future", *monthly("future", "Europe/London", "2039-01-11T19:30", 14)),
    # A series edited mid-way: later sessions moved to 20:00 and a different zone.
    feed(
        "series_edited_midway",
        *monthly("edit-a", "Europe/London", "2026-01-13T19:30", 6),
        *[
            replace(e, sequence=1)
            for e in monthly("edit-b", "America/New_York", "2026-07-14T20:00", 6)
        ],
    ),
    # One session's life: booked, moved (same UID, SEQUENCE 1), cancelled (SEQUENCE 2).
    feed("lifecycle_booked", REGULAR),
    feed("lifecycle_moved", MOVED),
    feed("lifecycle_cancelled", CANCELLED),
    invite("invite_request", "REQUEST", REGULAR),
    invite("invite_moved", "REQUEST", MOVED),
    invite("invite_cancel", "CANCEL", replace(MOVED, sequence=2)),
    invite(
        "invite_sydney_discreet",
        "REQUEST",
        discreet(event("d", "Australia/Sydney", "2026-04-05T01:00", 240)),
    ),
    feed("two_hundred", *two_hundred()),
]

READERS: dict[str, Callable[[list[str]], list[Dump]]] = {
    "ical.js": read_icaljs,
    "libical": read_libical,
    "vobject": read_vobject,
}


@pytest.fixture(scope="session")
def parser_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(
            "calendar parser tests need: "
            + "; ".join(missing)
            + f". Run `bash {INSTALL_SCRIPT}` (as root for the apt part) and retry.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def readings(parser_tools: None) -> dict[str, dict[str, Dump]]:
    texts = [case.text for case in CASES]
    return {
        name: dict(zip((c.name for c in CASES), read(texts), strict=True))
        for name, read in READERS.items()
    }


def test_every_case_is_distinct() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
    assert len(next(c for c in CASES if c.name == "two_hundred").events) == 200


@pytest.mark.parametrize("parser", READERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parser_reads_what_was_built(
    case: Case, parser: str, readings: dict[str, dict[str, Dump]]
) -> None:
    dump = readings[parser][case.name]
    assert dump["method"] == case.method
    got = {r["uid"]: r for r in dump["events"]}
    assert sorted(got) == sorted(e.uid for e in case.events)
    wrong = []
    for e in case.events:
        r = got[e.uid]
        expected = (int(e.starts_at.timestamp()), int(e.ends_at.timestamp()))
        if (r["start"], r["end"]) != expected:
            wrong.append(
                f"{e.uid} in {e.timezone}: read "
                f"{_iso(r['start'])}..{_iso(r['end'])} UTC, built "
                f"{_iso(expected[0])}..{_iso(expected[1])} UTC"
            )
        assert r["sequence"] == e.sequence
        assert r["status"] == e.status
        assert r["summary"] == e.summary
        # Local times resolve through the event's own VTIMEZONE; UTC ones through none.
        for instant, zone in ((e.starts_at, r["start_zone"]), (e.ends_at, r["end_zone"])):
            local = wall_time(instant, e.timezone).tzinfo is not UTC
            assert zone == (e.timezone if local else None) or (not local and zone == "UTC")
    assert not wrong, f"{parser} disagrees:\n" + "\n".join(wrong)


def test_parsers_agree_with_each_other(readings: dict[str, dict[str, Dump]]) -> None:
    def instants(parser: str) -> dict[str, set[tuple[str, int, int]]]:
        return {
            name: {(r["uid"], r["start"], r["end"]) for r in dump["events"]}
            for name, dump in readings[parser].items()
        }

    first, *others = READERS
    for other in others:
        assert instants(other) == instants(first)


@pytest.mark.parametrize("parser", READERS)
def test_parsers_use_the_vtimezone_in_the_file(parser: str, parser_tools: None) -> None:
    """Negative control: a VTIMEZONE with a wrong offset must move the instants.

    Proves each parser reads our VTIMEZONE rather than its own copy of the tz database, so
    the agreement above is about what we wrote.
    """
    ev = event("control", "Europe/London", "2026-01-13T19:30")
    text = build_feed([ev], calendar_name="c", now=NOW).decode()
    # Winter London is +0000; claim +0200 instead.
    winter = "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000"
    tampered = text.replace(winter, winter[:-4] + "0200")
    assert tampered != text
    (read,) = READERS[parser]([tampered])
    assert read["events"][0]["start"] == int(ev.starts_at.timestamp()) - 7200


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def every_zone() -> list[CalendarEvent]:
    """For every zone zoneinfo knows: mid-January, mid-July, and an hour-long event that
    starts half an hour before each of its 2026 transitions."""
    out = []
    for tz in sorted(available_timezones() - {"Factory", "localtime"}):
        zone = ZoneInfo(tz)
        starts = [datetime(2026, m, 15, 12, tzinfo=zone).astimezone(UTC) for m in (1, 7)]
        day = datetime(2026, 1, 1, tzinfo=UTC)
        # Daily scan of the year, then minutes: independent of the code under test.
        while day.year == 2026:
            nxt = day + timedelta(days=1)
            if day.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
                lo, hi = day, nxt
                while hi - lo > timedelta(minutes=1):
                    mid = lo + (hi - lo) / 2
                    same = mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset()
                    lo, hi = (mid, hi) if same else (lo, mid)
                starts.append(hi - timedelta(minutes=30))
            day = nxt
        for i, start in enumerate(starts):
            out.append(
                CalendarEvent(
                    uid=f"{tz}/{i}",
                    sequence=0,
                    starts_at=start,
                    ends_at=start + timedelta(minutes=60),
                    timezone=tz,
                    summary="Drop-in",
                    last_modified=NOW,
                )
            )
    return out


@pytest.mark.parametrize("parser", READERS)
def test_every_zone_reads_the_same(parser: str, every_zone_feed: Case) -> None:
    (dump,) = READERS[parser]([every_zone_feed.text])
    built = {
        e.uid: (int(e.starts_at.timestamp()), int(e.ends_at.timestamp()))
        for e in every_zone_feed.events
    }
    read = {r["uid"]: (r["start"], r["end"]) for r in dump["events"]}
    assert read.keys() == built.keys()
    wrong = sorted(uid for uid in built if read[uid] != built[uid])
    assert not wrong, f"{parser} reads {len(wrong)} events differently: {wrong[:20]}"


@pytest.fixture(scope="session")
def every_zone_feed(parser_tools: None) -> Case:
    return feed("every_zone", *every_zone())
