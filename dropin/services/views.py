"""What services return: frozen read models, rendered to JSON by the web layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dropin.domain.states import BookingStatus, SessionStatus


@dataclass(frozen=True)
class GroupView:
    id: str
    name: str
    timezone: str
    discreet: bool
    public: bool
    description: str
    created_at: datetime
    organizer_email: str | None = None


@dataclass(frozen=True)
class MemberView:
    id: str
    group_id: str
    display_name: str
    email: str
    role: str
    discreet: bool | None
    timezone: str | None
    created_at: datetime
    weight: float
    max_per_quarter: int | None
    led_before: int
    # Not for display: the feed and page tokens are derived from it (dropin.domain.tokens).
    link_nonce: str


@dataclass(frozen=True)
class SeriesView:
    id: str
    group_id: str
    title: str
    rrule: str
    first_start: datetime
    duration_minutes: int
    capacity: int
    timezone: str
    materialized_until: datetime
    sessions_created: int = 0


@dataclass(frozen=True)
class FacilitatorView:
    member_id: str
    display_name: str


@dataclass(frozen=True)
class SessionView:
    id: str
    group_id: str
    series_id: str
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    local_start: datetime
    status: SessionStatus
    capacity: int
    confirmed_count: int
    waitlist_count: int
    lead: FacilitatorView | None
    co: FacilitatorView | None
    rescheduled: bool
    sequence: int


@dataclass(frozen=True)
class BookingView:
    id: str
    session_id: str
    member_id: str
    status: BookingStatus
    waitlist_position: int | None
    created_at: datetime
    updated_at: datetime
    promoted: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttendeeView:
    """A booking as the organizer sees it in a session listing (CLI, API)."""

    booking_id: str
    member_id: str
    display_name: str
    status: BookingStatus
    waitlist_position: int | None


@dataclass(frozen=True)
class JoinLink:
    url: str
    expires_at: datetime
    role: str
