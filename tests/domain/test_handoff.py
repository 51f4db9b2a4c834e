"""Handoff steps as a table: notice, hand over, alert — each once, in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropin.domain.handoff import HandoffPolicy, HandoffState, due

START = datetime(2028, 3, 14, 19, 30, tzinfo=UTC)
P = HandoffPolicy()


def at(before: timedelta) -> datetime:
    return START - before


def state(**kw: object) -> HandoffState:
    return HandoffState(
        starts_at=START, status=str(kw.pop("status", "scheduled")), lead=kw.pop("lead", "lee"), **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("s", "now", "expected"),
    [
        (state(), at(timedelta(days=20)), []),
        (state(), at(timedelta(days=14)), ["notify_lead"]),
        (state(lead_notified_at=at(timedelta(days=14))), at(timedelta(days=5)), []),
        # Unconfirmed at 72 h: hand over.
        (state(lead_notified_at=at(timedelta(days=14))), at(timedelta(hours=72)), ["hand_over"]),
        (
            state(lead_notified_at=at(timedelta(days=14)), lead_confirmed_at=at(timedelta(days=9))),
            at(timedelta(hours=10)),
            [],
        ),
        (
            state(lead_notified_at=at(timedelta(days=14)), handed_over_at=at(timedelta(hours=70))),
            at(timedelta(hours=60)),
            [],
        ),
        # Assigned late (inside the 72 h window): a notice now, and a day to answer it.
        (state(), at(timedelta(hours=50)), ["notify_lead"]),
        (state(lead_notified_at=at(timedelta(hours=50))), at(timedelta(hours=30)), []),
        (state(lead_notified_at=at(timedelta(hours=50))), at(timedelta(hours=26)), ["hand_over"]),
        # Confirmed (or picked by the organizer): no notice, no hand-over.
        (state(lead_confirmed_at=at(timedelta(days=20))), at(timedelta(days=1)), []),
        # No lead: the organizer hears at 48 h, once.
        (state(lead=None), at(timedelta(hours=49)), []),
        (state(lead=None), at(timedelta(hours=48)), ["alert_organizer"]),
        (state(lead=None, alerted_at=at(timedelta(hours=48))), at(timedelta(hours=2)), []),
        # Nothing for cancelled or started sessions.
        (state(status="cancelled"), at(timedelta(days=1)), []),
        (state(lead=None), START, []),
    ],
)
def test_due(s: HandoffState, now: datetime, expected: list[str]) -> None:
    assert due(s, P, now) == expected
