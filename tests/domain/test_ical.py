"""Pure rules of dropin.domain.ical: VTIMEZONE derivation, feeds, invites, discreet mode.

Whether other software reads the output the same way is tests/domain/test_ical_parsers.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from dropin.domain.ical import (
    PRODID,
    CalendarEvent,
    build_feed,
    build_invite,
    discreet,
    vtimezone,
    wall_time,
)

NOW = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
JOIN = "https://dropin.test/j/7f3a"


def make(local: str = "2026-01-13T19:30", tz: str = "Europe/London", **kw: object) -> CalendarEvent:
    start = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz))
    fields: dict[str, object] = {
        "uid": "session-1@dropin.test",
        "sequence": 0,
        "starts_at": start,
        "ends_at": start + timedelta(minutes=75),
        "timezone": tz,
        "summary": "Monthly NVR parents circle",
        "description": f"Monthly NVR parents circle with Alex.\nJoin: {JOIN}",
        "url": JOIN,
        "location": JOIN,
        "last_modified": NOW,
    }
    fields.update(kw)
    return CalendarEvent(**fields)  # type: ignore[arg-type]


def lines(data: bytes) -> list[str]:
    """Unfolded content lines."""
    return data.decode().replace("\r\n ", "").split("\r\n")[:-1]


def invite(event: CalendarEvent, method: str = "REQUEST", **kw: object) -> bytes:
    args: dict[str, object] = {
        "method": method,
        "organizer_email": "circle@dropin.test",
        "organizer_name": "NVR circle",
        "attendee_email": "sam@example.test",
        "attendee_name": "Sam",
        "now": NOW,
    }
    args.update(kw)
    return build_invite(event, **args)  # type: ignore[arg-type]


# -- VTIMEZONE ----------------------------------------------------------------------------------


def compact(tz: str, first: int, last: int) -> list[str]:
    """One line per observance: kind, DTSTART, offsets, TZNAME, RRULE."""
    comp = vtimezone(tz, datetime(first, 6, 1, tzinfo=UTC), datetime(last, 6, 1, tzinfo=UTC))
    out = []
    for sub in comp.subcomponents:
        props = dict(line.split(":", 1) for line in lines(sub.to_ical())[1:-1])
        out.append(
            f"{sub.name[:3]} {props['DTSTART']} {props['TZOFFSETFROM']}>{props['TZOFFSETTO']}"
            f" {props.get('TZNAME', '')} {props.get('RRULE', '-')}"
        )
    return out


LAST_SUN_MAR = "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"
LAST_SUN_OCT = "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"

VTIMEZONES = [
    # zone, first year, last year, expected observances
    (
        "Europe/London",
        2026,
        2026,
        [
            f"DAY 19960331T010000 +0000>+0100 BST {LAST_SUN_MAR}",
            f"STA 19961027T020000 +0100>+0000 GMT {LAST_SUN_OCT}",
        ],
    ),
    (
        "America/New_York",
        2026,
        2027,
        [
            "DAY 20070311T020000 -0500>-0400 EDT FREQ=YEARLY;BYDAY=2SU;BYMONTH=3",
            "STA 20071104T020000 -0400>-0500 EST FREQ=YEARLY;BYDAY=1SU;BYMONTH=11",
        ],
    ),
    # Southern hemisphere: STANDARD in April, DAYLIGHT in October.
    (
        "Australia/Sydney",
        2026,
        2026,
        [
            "STA 20080406T030000 +1100>+1000 AEST FREQ=YEARLY;BYDAY=1SU;BYMONTH=4",
            "DAY 20081005T020000 +1000>+1100 AEDT FREQ=YEARLY;BYDAY=1SU;BYMONTH=10",
        ],
    ),
    ("Asia/Kolkata", 2026, 2026, ["STA 19700101T000000 +0530>+0530 IST -"]),
    ("Asia/Kathmandu", 2026, 2026, ["STA 19860101T000000 +0530>+0545 +0545 -"]),
    (
        "Pacific/Chatham",
        2026,
        2026,
        [
            "DAY 20070930T024500 +1245>+1345 +1345 FREQ=YEARLY;BYDAY=-1SU;BYMONTH=9",
            "STA 20080406T034500 +1345>+1245 +1245 FREQ=YEARLY;BYDAY=1SU;BYMONTH=4",
        ],
    ),
    # Half-hour DST.
    (
        "Australia/Lord_Howe",
        2026,
        2026,
        [
            "STA 20080406T020000 +1100>+1030 +1030 FREQ=YEARLY;BYDAY=1SU;BYMONTH=4",
            "DAY 20081005T020000 +1030>+1100 +11 FREQ=YEARLY;BYDAY=1SU;BYMONTH=10",
        ],
    ),
    ("UTC", 2026, 2026, ["STA 19700101T000000 +0000>+0000 UTC -"]),
    # "Friday before the last Sunday" = Friday on or after the 23rd.
    (
        "Asia/Jerusalem",
        2026,
        2026,
        [
            "DAY 20130329T020000 +0200>+0300 IDT "
            "FREQ=YEARLY;BYDAY=FR;BYMONTHDAY=23,24,25,26,27,28,29;BYMONTH=3",
            f"STA 20131027T020000 +0300>+0200 IST {LAST_SUN_OCT}",
        ],
    ),
    # The US rule change of 2007: old rules end (UNTIL, in UTC), new ones run on.
    (
        "America/New_York",
        2006,
        2007,
        [
            "STA 19861026T020000 -0400>-0500 EST "
            "FREQ=YEARLY;UNTIL=20061030T060000Z;BYDAY=-1SU;BYMONTH=10",
            "DAY 19870405T020000 -0500>-0400 EDT "
            "FREQ=YEARLY;UNTIL=20060403T070000Z;BYDAY=1SU;BYMONTH=4",
            "DAY 20070311T020000 -0500>-0400 EDT FREQ=YEARLY;BYDAY=2SU;BYMONTH=3",
            "STA 20071104T020000 -0400>-0500 EST FREQ=YEARLY;BYDAY=1SU;BYMONTH=11",
        ],
    ),
    # Samoa dropped DST in 2021: both rules end.
    (
        "Pacific/Apia",
        2020,
        2021,
        [
            "STA 20120401T040000 +1400>+1300 +13 "
            "FREQ=YEARLY;UNTIL=20210404T140000Z;BYDAY=1SU;BYMONTH=4",
            "DAY 20120930T030000 +1300>+1400 +14 "
            "FREQ=YEARLY;UNTIL=20200927T140000Z;BYDAY=-1SU;BYMONTH=9",
        ],
    ),
    # Seen from 2017, the end in 2021 lies ahead: still UNTIL, not an open-ended rule.
    (
        "Pacific/Apia",
        2017,
        2018,
        [
            "STA 20120401T040000 +1400>+1300 +13 "
            "FREQ=YEARLY;UNTIL=20210404T140000Z;BYDAY=1SU;BYMONTH=4",
            "DAY 20120930T030000 +1300>+1400 +14 "
            "FREQ=YEARLY;UNTIL=20200927T140000Z;BYDAY=-1SU;BYMONTH=9",
        ],
    ),
    # No DST any more: the last change says the offset.
    ("America/Mexico_City", 2026, 2026, ["STA 20221030T020000 -0500>-0600 CST -"]),
    # tzdata's negative DST (winter is "DST"): summer is still written as DAYLIGHT.
    (
        "Europe/Dublin",
        2026,
        2026,
        [
            f"DAY 19960331T010000 +0000>+0100 IST {LAST_SUN_MAR}",
            f"STA 19961027T020000 +0100>+0000 GMT {LAST_SUN_OCT}",
        ],
    ),
    # Irregular (Ramadan) changes: one component per onset, no RDATE lists.
    (
        "Africa/Casablanca",
        2026,
        2026,
        [
            "DAY 20240414T020000 +0000>+0100 +01 -",
            "STA 20250223T030000 +0100>+0000 +00 -",
            "DAY 20250406T020000 +0000>+0100 +01 -",
            "STA 20260215T030000 +0100>+0000 +00 -",
            "DAY 20260322T020000 +0000>+0100 +01 -",
            "STA 20270207T030000 +0100>+0000 +00 -",
            "DAY 20270314T020000 +0000>+0100 +01 -",
        ],
    ),
]


@pytest.mark.parametrize(
    "tz,first,last,expected", VTIMEZONES, ids=[f"{v[0]}-{v[1]}" for v in VTIMEZONES]
)
def test_vtimezone(tz: str, first: int, last: int, expected: list[str]) -> None:
    assert compact(tz, first, last) == expected


@pytest.mark.parametrize("tz", ["Europe/London", "Australia/Sydney", "Pacific/Chatham"])
def test_vtimezone_is_the_same_for_every_window_under_one_rule(tz: str) -> None:
    # Stable bytes across years keep feed ETags stable and clients' zone caches consistent.
    assert compact(tz, 2026, 2026) == compact(tz, 2030, 2034) == compact(tz, 2021, 2021)


@pytest.mark.parametrize("tz", ["Europe/London", "Australia/Sydney", "Africa/Casablanca"])
def test_vtimezone_has_no_rdate(tz: str) -> None:
    text = vtimezone(tz, NOW, NOW + timedelta(days=400)).to_ical().decode()
    assert "RDATE" not in text


def test_vtimezone_rejects_unknown_zone_and_reversed_span() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        vtimezone("Mars/Olympus_Mons", NOW, NOW)
    with pytest.raises(ValueError, match="before"):
        vtimezone("Europe/London", NOW, NOW - timedelta(days=1))


# -- wall_time: what an instant is written as ------------------------------------------------

WALL_TIMES = [
    # zone, UTC instant, expected written value (TZID-local or ...Z)
    ("Europe/London", "2026-01-13T19:30", "TZID=Europe/London:20260113T193000"),
    ("Europe/London", "2026-07-14T18:30", "TZID=Europe/London:20260714T193000"),
    ("Europe/London", "2026-03-29T00:59", "TZID=Europe/London:20260329T005900"),
    ("Europe/London", "2026-03-29T01:00", "TZID=Europe/London:20260329T020000"),
    # 01:00-02:00 BST and GMT both say 01:xx on 25 October: written in UTC.
    ("Europe/London", "2026-10-25T00:30", "20261025T003000Z"),
    ("Europe/London", "2026-10-25T01:30", "20261025T013000Z"),
    ("Europe/London", "2026-10-25T02:00", "TZID=Europe/London:20261025T020000"),
    ("Australia/Sydney", "2026-04-04T15:30", "20260404T153000Z"),  # 02:30 AEDT, repeats
    ("Australia/Sydney", "2026-04-04T16:30", "20260404T163000Z"),  # 02:30 AEST
    ("Australia/Sydney", "2026-04-04T17:00", "TZID=Australia/Sydney:20260405T030000"),
    ("Asia/Kolkata", "2026-01-13T14:00", "TZID=Asia/Kolkata:20260113T193000"),
    ("Asia/Kathmandu", "2026-01-13T13:45", "TZID=Asia/Kathmandu:20260113T193000"),
    ("Pacific/Chatham", "2026-01-13T05:45", "TZID=Pacific/Chatham:20260113T193000"),
    ("UTC", "2026-01-13T19:30", "20260113T193000Z"),
    ("Etc/UTC", "2026-01-13T19:30", "20260113T193000Z"),
    # A zone that is simply UTC is written as UTC.
    ("Atlantic/Reykjavik", "2026-01-13T19:30", "20260113T193000Z"),
    ("Africa/Abidjan", "2026-07-13T19:30", "20260713T193000Z"),
    # But London's winter is not UTC: it is London.
    ("Europe/Lisbon", "2026-01-13T19:30", "TZID=Europe/Lisbon:20260113T193000"),
]


@pytest.mark.parametrize("tz,utc,written", WALL_TIMES)
def test_wall_time(tz: str, utc: str, written: str) -> None:
    instant = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    value = wall_time(instant, tz)
    assert value == instant
    if written.endswith("Z"):
        assert value.tzinfo is UTC
        assert value.strftime("%Y%m%dT%H%M%SZ") == written
    else:
        assert f"TZID={tz}:{value.strftime('%Y%m%dT%H%M%S')}" == written


# -- CalendarEvent validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,message",
    [
        ({"uid": ""}, "uid"),
        ({"uid": "a\r\nb"}, "uid"),
        ({"sequence": -1}, "sequence"),
        ({"starts_at": datetime(2026, 1, 13, 19, 30)}, "aware"),
        ({"last_modified": datetime(2026, 1, 1)}, "aware"),
        ({"ends_at": datetime(2026, 1, 13, 19, 30, tzinfo=ZoneInfo("Europe/London"))}, "after"),
        ({"timezone": "Europe/Atlantis"}, "unknown time zone"),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
        ({"timezone": "right/UTC"}, "unknown time zone"),
        ({"timezone": "Europe"}, "unknown time zone"),
        ({"timezone": "x" * 300}, "unknown time zone"),
        ({"timezone": "localtime"}, "unknown time zone"),
        ({"status": "MAYBE"}, "status"),
    ],
)
def test_event_rejects(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**change)


def test_event_normalises_to_utc() -> None:
    event = make()
    assert event.starts_at.tzinfo is UTC
    assert event.starts_at == datetime(2026, 1, 13, 19, 30, tzinfo=UTC)
    other = replace(event, starts_at=event.starts_at.astimezone(timezone(timedelta(hours=5))))
    assert other.starts_at.tzinfo is UTC
    assert other == event


# -- feeds ---------------------------------------------------------------------------------------


def test_feed_header() -> None:
    data = build_feed([make()], calendar_name="My drop-ins", now=NOW)
    head = lines(data)[: lines(data).index("BEGIN:VTIMEZONE")]
    assert head == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "NAME:My drop-ins",
        "X-WR-CALNAME:My drop-ins",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ]


def test_feed_refresh_interval_is_a_real_duration() -> None:
    data = build_feed([], calendar_name="c", now=NOW, refresh=timedelta(minutes=90))
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H30M" in lines(data)
    assert "X-PUBLISHED-TTL:PT1H30M" in lines(data)
    with pytest.raises(ValueError, match="refresh"):
        build_feed([], calendar_name="c", now=NOW, refresh=timedelta(0))


def test_feed_event() -> None:
    data = build_feed(
        [make(sequence=3, categories=("Lead facilitator",))], calendar_name="c", now=NOW
    )
    (vevent,) = Calendar.from_ical(data).walk("VEVENT")
    body = lines(data)
    assert "DTSTART;TZID=Europe/London:20260113T193000" in body
    assert "DTEND;TZID=Europe/London:20260113T204500" in body
    assert "DTSTAMP:20251201T090000Z" in body
    assert "LAST-MODIFIED:20251201T090000Z" in body
    assert "SEQUENCE:3" in body
    assert "STATUS:CONFIRMED" in body
    assert "TRANSP:OPAQUE" in body
    assert "CATEGORIES:Lead facilitator" in body
    assert f"URL:{JOIN}" in body
    assert vevent["LOCATION"] == JOIN
    assert str(vevent["DESCRIPTION"]) == f"Monthly NVR parents circle with Alex.\nJoin: {JOIN}"
    assert "CLASS" not in vevent
    assert "ATTENDEE" not in vevent and "ORGANIZER" not in vevent


def test_feed_wire_format() -> None:
    long = "Monthly NVR parents circle, ünïcödé, commas; semicolons " * 5
    data = build_feed([make(description=long)], calendar_name="c", now=NOW)
    raw = data.split(b"\r\n")
    assert raw[-1] == b""
    assert b"\n" not in b"".join(raw)  # CRLF only
    assert all(len(line) <= 75 for line in raw)  # folded at 75 octets
    (vevent,) = Calendar.from_ical(data).walk("VEVENT")
    assert str(vevent["DESCRIPTION"]) == long  # escaping and folding round-trip


def test_feed_cancelled_event_stays_and_frees_time() -> None:
    body = lines(build_feed([make(status="CANCELLED", sequence=2)], calendar_name="c", now=NOW))
    assert "STATUS:CANCELLED" in body
    assert "TRANSP:TRANSPARENT" in body
    assert "SEQUENCE:2" in body


def test_feed_waitlisted_event_is_tentative() -> None:
    body = lines(build_feed([make(status="TENTATIVE")], calendar_name="c", now=NOW))
    assert "STATUS:TENTATIVE" in body


def test_feed_one_vtimezone_per_zone_used() -> None:
    events = [
        make("2026-01-13T19:30", uid="a@x"),
        make("2026-07-14T19:30", uid="b@x"),
        make("2026-01-13T19:30", "Australia/Sydney", uid="c@x"),
        make("2026-01-13T19:30", "UTC", uid="d@x"),
    ]
    body = lines(build_feed(events, calendar_name="c", now=NOW))
    assert [line for line in body if line.startswith("TZID:")] == [
        "TZID:Australia/Sydney",
        "TZID:Europe/London",
    ]
    # VTIMEZONEs come before the events that use them.
    assert body.index("END:VTIMEZONE") < body.index("BEGIN:VEVENT")


def test_feed_without_local_times_has_no_vtimezone() -> None:
    ambiguous = make(
        "2026-10-25T01:30", tz="Europe/London", ends_at=datetime(2026, 10, 25, 1, 50, tzinfo=UTC)
    )
    body = lines(build_feed([ambiguous, make(tz="UTC", uid="u@x")], calendar_name="c", now=NOW))
    assert "BEGIN:VTIMEZONE" not in body


def test_feed_is_deterministic_and_ordered() -> None:
    events = [make(f"2026-{m:02}-13T19:30", uid=f"s{m}@x") for m in range(1, 13)]
    a = build_feed(events, calendar_name="c", now=NOW)
    b = build_feed(list(reversed(events)), calendar_name="c", now=NOW)
    assert a == b
    uids = [line for line in lines(a) if line.startswith("UID:")]
    assert uids == [f"UID:s{m}@x" for m in range(1, 13)]


def test_feed_of_200_events() -> None:
    start = datetime(2026, 1, 1, 19, 30, tzinfo=UTC)
    events = [
        make(
            uid=f"s{i}@x",
            starts_at=start + timedelta(days=3 * i),
            ends_at=start + timedelta(days=3 * i, minutes=75),
        )
        for i in range(200)
    ]
    data = build_feed(events, calendar_name="c", now=NOW)
    assert len(Calendar.from_ical(data).walk("VEVENT")) == 200


def test_empty_feed_is_valid() -> None:
    cal = Calendar.from_ical(build_feed([], calendar_name="c", now=NOW))
    assert cal.walk("VEVENT") == []


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        build_feed([], calendar_name="c", now=datetime(2026, 1, 1))


# -- discreet mode -----------------------------------------------------------------------------


def test_discreet_leaks_nothing_but_the_join_link() -> None:
    event = make(categories=("Co-facilitator",), private=False)
    data = build_feed([discreet(event)], calendar_name="My calendar", now=NOW)
    text = data.decode().replace("\r\n ", "")
    for secret in ("NVR", "circle", "Alex", "facilitator", "parents"):
        assert secret.lower() not in text.lower()
    body = lines(data)
    assert "SUMMARY:Drop-in" in body
    assert "CLASS:PRIVATE" in body
    assert f"URL:{JOIN}" in body
    assert f"DESCRIPTION:Join: {JOIN}" in body


def test_discreet_without_link_and_custom_summary() -> None:
    event = discreet(make(url=None), summary="Appointment")
    assert (event.summary, event.description, event.location) == ("Appointment", "", None)
    assert event.private
    # Times, identity and version are untouched: a discreet entry updates the same event.
    assert (event.uid, event.sequence, event.starts_at) == (
        "session-1@dropin.test",
        0,
        make().starts_at,
    )


# -- invites -------------------------------------------------------------------------------------


def test_invite_request() -> None:
    data = invite(make(sequence=1))
    body = lines(data)
    assert "METHOD:REQUEST" in body
    assert 'ORGANIZER;CN="NVR circle":mailto:circle@dropin.test' in body
    attendees = [line for line in body if line.startswith("ATTENDEE")]
    assert attendees == [
        "ATTENDEE;CN=Sam;CUTYPE=INDIVIDUAL;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;"
        "RSVP=TRUE:mailto:sam@example.test"
    ]
    assert "SEQUENCE:1" in body
    assert "STATUS:CONFIRMED" in body
    assert "UID:session-1@dropin.test" in body
    assert "BEGIN:VTIMEZONE" in body
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" not in body


def test_invite_accepted_without_rsvp() -> None:
    body = lines(invite(make(), partstat="ACCEPTED", rsvp=False))
    (attendee,) = [line for line in body if line.startswith("ATTENDEE")]
    assert "PARTSTAT=ACCEPTED" in attendee and "RSVP=FALSE" in attendee


def test_invite_cancel_keeps_uid_and_says_cancelled() -> None:
    request = lines(invite(make(sequence=1)))
    cancel = lines(invite(make(sequence=2), "CANCEL"))
    assert "METHOD:CANCEL" in cancel
    assert "STATUS:CANCELLED" in cancel
    assert "TRANSP:TRANSPARENT" in cancel
    (attendee,) = [line for line in cancel if line.startswith("ATTENDEE")]
    assert "RSVP=FALSE" in attendee
    assert "SEQUENCE:2" in cancel
    uid = [line for line in request if line.startswith("UID:")]
    assert uid == [line for line in cancel if line.startswith("UID:")]


def test_rescheduled_invite_updates_in_place() -> None:
    first = make(sequence=0)
    moved = replace(
        first,
        sequence=1,
        starts_at=first.starts_at + timedelta(days=7),
        ends_at=first.ends_at + timedelta(days=7),
    )
    a, b = Calendar.from_ical(invite(first)), Calendar.from_ical(invite(moved))
    (ea,), (eb,) = a.walk("VEVENT"), b.walk("VEVENT")
    assert ea["UID"] == eb["UID"]
    assert eb["SEQUENCE"] > ea["SEQUENCE"]
    assert eb.start - ea.start == timedelta(days=7)


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"method": "PUBLISH"}, "method"),
        ({"partstat": "MAYBE"}, "partstat"),
        ({"attendee_email": "a@b.test, c@d.test"}, "email"),
        ({"organizer_email": "x\r\nATTENDEE:mailto:leak@x"}, "email"),
        ({"attendee_email": ""}, "email"),
    ],
)
def test_invite_rejects(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        invite(make(), **kw)


def test_request_for_a_cancelled_event_is_refused() -> None:
    with pytest.raises(ValueError, match="CANCEL"):
        invite(make(status="CANCELLED"))


def test_invite_carries_only_what_was_passed() -> None:
    text = invite(discreet(make())).decode().replace("\r\n ", "")
    emails = set(re.findall(r"mailto:([^\s;:\r]+)", text))
    assert emails == {"circle@dropin.test", "sam@example.test"}
    assert "NVR circle" in text  # the organizer's name is the caller's choice
    assert "parents" not in text


def test_feed_dtstamp_is_each_entrys_last_change() -> None:
    old = make(uid="a@x", last_modified=NOW - timedelta(days=3))
    new = make(uid="b@x", last_modified=NOW - timedelta(hours=1))
    body = lines(build_feed([old, new], calendar_name="c", now=NOW))
    stamps = [line for line in body if line.startswith("DTSTAMP:")]
    assert stamps == ["DTSTAMP:20251128T090000Z", "DTSTAMP:20251201T080000Z"]
    # The same entries give the same bytes whatever "now" is: a stable ETag.
    later = build_feed([old, new], calendar_name="c", now=NOW + timedelta(days=1))
    assert later == build_feed([old, new], calendar_name="c", now=NOW)
