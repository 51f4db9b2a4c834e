"""Recurrence rules as tables: RRULE + wall-clock start + zone → UTC instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dropin.domain.recurrence import (
    RecurrenceError,
    SeriesRule,
    local_time_status,
    normalize_rrule,
    occurrences,
    resolve_local,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def starts(rrule: str, first: datetime, tz: str, start: datetime, end: datetime) -> list[str]:
    rule = SeriesRule(rrule, first, timedelta(minutes=75), tz)
    return [o.starts_at.strftime("%Y-%m-%dT%H:%MZ") for o in occurrences(rule, start, end)]


@pytest.mark.parametrize(
    ("rrule", "first", "tz", "expected"),
    [
        # 2nd Tuesday 19:30 London: GMT in winter, BST (UTC+1) from 29 March 2026.
        (
            "FREQ=MONTHLY;BYDAY=2TU",
            datetime(2026, 1, 1, 19, 30),
            "Europe/London",
            [
                "2026-01-13T19:30Z",
                "2026-02-10T19:30Z",
                "2026-03-10T19:30Z",
                "2026-04-14T18:30Z",
                "2026-05-12T18:30Z",
                "2026-06-09T18:30Z",
                "2026-07-14T18:30Z",
                "2026-08-11T18:30Z",
                "2026-09-08T18:30Z",
                "2026-10-13T18:30Z",
                "2026-11-10T19:30Z",
                "2026-12-08T19:30Z",
            ],
        ),
        # Last Friday 20:00 New York: EST -5, EDT -4 from 8 March to 1 November 2026.
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            datetime(2026, 1, 1, 20, 0),
            "America/New_York",
            [
                "2026-01-31T01:00Z",
                "2026-02-28T01:00Z",
                "2026-03-28T00:00Z",
                "2026-04-25T00:00Z",
                "2026-05-30T00:00Z",
                "2026-06-27T00:00Z",
                "2026-08-01T00:00Z",  # 31 July, 20:00 EDT
                "2026-08-29T00:00Z",
                "2026-09-26T00:00Z",
                "2026-10-31T00:00Z",
                "2026-11-28T01:00Z",
                "2026-12-26T01:00Z",
            ],
        ),
        # Southern hemisphere: Sydney is AEDT +11 until 5 April, AEST +10 until 4 October.
        (
            "FREQ=MONTHLY;BYDAY=1WE",
            datetime(2026, 1, 1, 19, 0),
            "Australia/Sydney",
            [
                "2026-01-07T08:00Z",
                "2026-02-04T08:00Z",
                "2026-03-04T08:00Z",
                "2026-04-01T08:00Z",
                "2026-05-06T09:00Z",
                "2026-06-03T09:00Z",
                "2026-07-01T09:00Z",
                "2026-08-05T09:00Z",
                "2026-09-02T09:00Z",
                "2026-10-07T08:00Z",
                "2026-11-04T08:00Z",
                "2026-12-02T08:00Z",
            ],
        ),
        # Half-hour zone without DST: Kolkata is always +05:30.
        (
            "FREQ=MONTHLY;BYDAY=2TU",
            datetime(2026, 1, 1, 19, 30),
            "Asia/Kolkata",
            [
                "2026-01-13T14:00Z",
                "2026-02-10T14:00Z",
                "2026-03-10T14:00Z",
                "2026-04-14T14:00Z",
                "2026-05-12T14:00Z",
                "2026-06-09T14:00Z",
                "2026-07-14T14:00Z",
                "2026-08-11T14:00Z",
                "2026-09-08T14:00Z",
                "2026-10-13T14:00Z",
                "2026-11-10T14:00Z",
                "2026-12-08T14:00Z",
            ],
        ),
    ],
)
def test_monthly_rules_across_a_year(
    rrule: str, first: datetime, tz: str, expected: list[str]
) -> None:
    assert starts(rrule, first, tz, utc(2026, 1, 1), utc(2027, 1, 1)) == expected


@pytest.mark.parametrize(
    ("rrule", "first", "tz", "window", "expected"),
    [
        # Weekly across London's spring-forward night: Sunday 01:30 does not exist on 29 March
        # and is read with the pre-gap offset (GMT), i.e. shifted forward to 02:30 BST.
        (
            "FREQ=WEEKLY;BYDAY=SU",
            datetime(2026, 3, 22, 1, 30),
            "Europe/London",
            (utc(2026, 3, 20), utc(2026, 4, 6)),
            ["2026-03-22T01:30Z", "2026-03-29T01:30Z", "2026-04-05T00:30Z"],
        ),
        # Across London's fall-back night: 01:30 on 25 October happens twice; first one (BST).
        (
            "FREQ=WEEKLY;BYDAY=SU",
            datetime(2026, 10, 18, 1, 30),
            "Europe/London",
            (utc(2026, 10, 17), utc(2026, 11, 2)),
            ["2026-10-18T00:30Z", "2026-10-25T00:30Z", "2026-11-01T01:30Z"],
        ),
        # New York gap at 02:30 on 8 March 2026 → 03:30 EDT (07:30Z).
        (
            "FREQ=DAILY",
            datetime(2026, 3, 7, 2, 30),
            "America/New_York",
            (utc(2026, 3, 7), utc(2026, 3, 10)),
            ["2026-03-07T07:30Z", "2026-03-08T07:30Z", "2026-03-09T06:30Z"],
        ),
        # Sydney fold at 02:30 on 5 April 2026: first (daylight, +11) occurrence.
        (
            "FREQ=DAILY",
            datetime(2026, 4, 4, 2, 30),
            "Australia/Sydney",
            (utc(2026, 4, 3), utc(2026, 4, 6)),
            ["2026-04-03T15:30Z", "2026-04-04T15:30Z", "2026-04-05T16:30Z"],
        ),
        # Sydney gap: 02:30 on 4 October 2026 does not exist → 03:30 AEDT (16:30Z on the 3rd).
        (
            "FREQ=DAILY",
            datetime(2026, 10, 3, 2, 30),
            "Australia/Sydney",
            (utc(2026, 10, 2), utc(2026, 10, 5)),
            ["2026-10-02T16:30Z", "2026-10-03T16:30Z", "2026-10-04T15:30Z"],
        ),
        # COUNT and UNTIL bound the series.
        (
            "FREQ=WEEKLY;COUNT=2",
            datetime(2026, 6, 2, 18, 0),
            "UTC",
            (utc(2026, 1, 1), utc(2027, 1, 1)),
            ["2026-06-02T18:00Z", "2026-06-09T18:00Z"],
        ),
        (
            "FREQ=WEEKLY;UNTIL=20260616T170000Z",
            datetime(2026, 6, 2, 18, 0),
            "Europe/London",
            (utc(2026, 1, 1), utc(2027, 1, 1)),
            ["2026-06-02T17:00Z", "2026-06-09T17:00Z", "2026-06-16T17:00Z"],
        ),
        # The first start itself is not an occurrence unless it matches the rule.
        (
            "FREQ=MONTHLY;BYDAY=2TU;INTERVAL=2",
            datetime(2026, 1, 20, 19, 30),
            "UTC",
            (utc(2026, 1, 1), utc(2026, 8, 1)),
            ["2026-03-10T19:30Z", "2026-05-12T19:30Z", "2026-07-14T19:30Z"],
        ),
        # Window is half-open: an occurrence at the end instant is excluded.
        (
            "FREQ=DAILY",
            datetime(2026, 6, 1, 10, 0),
            "UTC",
            (utc(2026, 6, 1, 10), utc(2026, 6, 3, 10)),
            ["2026-06-01T10:00Z", "2026-06-02T10:00Z"],
        ),
    ],
)
def test_dst_gaps_folds_and_bounds(
    rrule: str,
    first: datetime,
    tz: str,
    window: tuple[datetime, datetime],
    expected: list[str],
) -> None:
    assert starts(rrule, first, tz, *window) == expected


@pytest.mark.parametrize(
    ("local", "tz", "status", "expected_utc"),
    [
        (datetime(2026, 3, 29, 1, 30), "Europe/London", "gap", utc(2026, 3, 29, 1, 30)),
        (datetime(2026, 10, 25, 1, 30), "Europe/London", "fold", utc(2026, 10, 25, 0, 30)),
        (datetime(2026, 7, 14, 19, 30), "Europe/London", "ok", utc(2026, 7, 14, 18, 30)),
        (datetime(2026, 3, 8, 2, 0), "America/New_York", "gap", utc(2026, 3, 8, 7, 0)),
        (datetime(2026, 11, 1, 1, 0), "America/New_York", "fold", utc(2026, 11, 1, 5, 0)),
        (datetime(2026, 6, 1, 0, 0), "Asia/Kolkata", "ok", utc(2026, 5, 31, 18, 30)),
    ],
)
def test_resolve_local(local: datetime, tz: str, status: str, expected_utc: datetime) -> None:
    zone = ZoneInfo(tz)
    assert local_time_status(local, zone) == status
    assert resolve_local(local, zone) == expected_utc


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("FREQ=MONTHLY;BYDAY=2TU", "FREQ=MONTHLY;BYDAY=2TU"),
        ("rrule:byday=-1fr;freq=monthly", "FREQ=MONTHLY;BYDAY=-1FR"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH", "FREQ=WEEKLY;BYDAY=TU,TH;INTERVAL=2"),
    ],
)
def test_normalize_rrule(value: str, canonical: str) -> None:
    assert normalize_rrule(value) == canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "non-empty"),
        ("FREQ=HOURLY", "not supported"),
        ("FREQ=MINUTELY", "not supported"),
        ("BYDAY=MO", "needs FREQ"),
        ("FREQ=MONTHLY;FREQ=WEEKLY", "twice"),
        ("FREQ=MONTHLY;BYHOUR=3", "BYHOUR is not supported"),
        ("FREQ=MONTHLY;BYDAY=9ZZ", "invalid rrule"),
        ("FREQ=WEEKLY;COUNT=2;UNTIL=20270101", "both COUNT and UNTIL"),
        ("FREQ=MONTHLY;;", "malformed"),
        ("FREQ=MONTHLY;BYDAY=2TU\nDTSTART:x", "malformed"),
        ("X" * 600, "at most 500"),
    ],
)
def test_bad_rrules_are_refused(value: str, message: str) -> None:
    with pytest.raises(RecurrenceError, match=message):
        normalize_rrule(value)


def test_occurrences_are_bounded_for_huge_windows() -> None:
    rule = SeriesRule("FREQ=DAILY", datetime(2000, 1, 1, 9, 0), timedelta(hours=1), "UTC")
    found = occurrences(rule, utc(2000, 1, 1), utc(2100, 1, 1))
    assert len(found) == 2000


def test_unknown_zone_is_refused() -> None:
    rule = SeriesRule("FREQ=DAILY", datetime(2026, 1, 1, 9), timedelta(hours=1), "Mars/Olympus")
    with pytest.raises(RecurrenceError, match="unknown time zone"):
        occurrences(rule, utc(2026, 1, 1), utc(2026, 2, 1))
