"""Request and response shapes of the JSON API (pydantic). They are also the OpenAPI schemas.

Requests forbid unknown fields and coerce nothing silently: a typo is a 422, not a default.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NaiveDatetime

from dropin.domain.session import SessionEdit
from dropin.domain.states import BookingStatus, MemberRole, SessionStatus
from dropin.services.edits import GroupEdit, MemberEdit, SeriesEdit

ID_PATTERN = "^[0-9a-f]{32}$"


class _In(BaseModel):
    # strict: JSON types are what they say ("10" is not a number, 1 is not true); requests
    # are validated from the raw JSON, so ISO 8601 strings still become datetimes.
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Requests ---------------------------------------------------------------------------------


class GroupIn(_In):
    name: str = Field(min_length=1, max_length=200, examples=["Monthly NVR parents circle"])
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/London"])
    discreet: bool = Field(False, description="Neutral calendar titles and CLASS:PRIVATE")
    public: bool = Field(False, description="Publish a group calendar feed")
    description: str = Field("", max_length=2000)
    organizer_email: str | None = Field(
        None, max_length=254, description="Where alerts go (no lead for a session soon)"
    )


class MemberIn(_In):
    display_name: str = Field(min_length=1, max_length=40, description="First name or pseudonym")
    email: str = Field(min_length=3, max_length=254)
    role: MemberRole = MemberRole.PARENT
    discreet: bool | None = Field(None, description="Override the group's discreet setting")
    timezone: str | None = Field(None, max_length=64, description="Default: the group's zone")


class MemberPatch(_In):
    display_name: str | None = Field(None, min_length=1, max_length=40)
    email: str | None = Field(
        None,
        min_length=3,
        max_length=254,
        description="A new address: the member's links change and the new ones are mailed to it",
    )
    discreet: bool | None = Field(None, description="null: follow the group's setting")
    timezone: str | None = Field(None, max_length=64, description="null: the group's zone")
    weight: float | None = Field(
        None, gt=0, le=10, description="Facilitators: share of the rota (2 = twice as often)"
    )
    max_per_quarter: int | None = Field(
        None, ge=0, le=13, description="Facilitators: at most this many sessions per quarter"
    )
    led_before: int | None = Field(
        None, ge=0, le=1000, description="Facilitators: sessions led before using dropin"
    )

    def to_edit(self) -> MemberEdit:
        """The fields the request gave (null included: it clears ``timezone``/``discreet``)."""
        return MemberEdit(**self.model_dump(exclude_unset=True))


class UnavailableIn(_In):
    days: list[date] = Field(max_length=400, description="Local dates in the group's zone")


class UnavailableOut(_Out):
    days: list[date]


class RotaLineOut(_Out):
    session_id: str
    starts_at: datetime
    local_start: str
    status: str
    lead_member_id: str | None
    lead_name: str | None
    co_member_id: str | None
    co_name: str | None
    assigned_by: str | None = Field(description="rotation, organizer, or null")
    note: str | None = Field(description="What the rotation had to relax, or why nobody leads")


class GroupPatch(_In):
    name: str | None = Field(None, min_length=1, max_length=200)
    discreet: bool | None = None
    public: bool | None = None
    description: str | None = Field(None, max_length=2000)
    organizer_email: str | None = Field(None, max_length=254)

    def to_edit(self) -> GroupEdit:
        return GroupEdit(**self.model_dump(exclude_unset=True))


class SeriesIn(_In):
    title: str = Field(min_length=1, max_length=200, examples=["Evening drop-in"])
    rrule: str = Field(min_length=1, max_length=500, examples=["FREQ=MONTHLY;BYDAY=2TU"])
    first_start: NaiveDatetime = Field(
        description="Local wall-clock time in the group's zone, ISO 8601 without offset",
        examples=["2026-01-13T19:30:00"],
    )
    duration_minutes: int = Field(ge=1, le=1440, examples=[75])
    capacity: int = Field(ge=1, le=500, examples=[10])


class SeriesPatch(_In):
    title: str | None = Field(None, min_length=1, max_length=200)
    rrule: str | None = Field(None, min_length=1, max_length=500)
    first_start: NaiveDatetime | None = None
    duration_minutes: int | None = Field(None, ge=1, le=1440)
    capacity: int | None = Field(None, ge=1, le=500)

    def to_edit(self) -> SeriesEdit:
        return SeriesEdit(**self.model_dump(exclude_unset=True))


class SessionPatch(_In):
    starts_at: AwareDatetime | None = Field(None, description="New start instant (with offset)")
    local_start: NaiveDatetime | None = Field(
        None, description="New start as wall-clock time in the group's zone"
    )
    duration_minutes: int | None = Field(None, ge=1, le=1440)
    capacity: int | None = Field(None, ge=1, le=500)
    status: SessionStatus | None = None

    def to_edit(self) -> SessionEdit:
        """The service's typed edit (a JSON null, like an absent field, changes nothing)."""
        return SessionEdit(
            starts_at=self.starts_at,
            local_start=self.local_start,
            duration_minutes=self.duration_minutes,
            capacity=self.capacity,
            status=self.status,
        )


class FacilitatorsIn(_In):
    lead_member_id: str | None = Field(None, pattern=ID_PATTERN)
    co_member_id: str | None = Field(None, pattern=ID_PATTERN)


class BookingIn(_In):
    member_id: str = Field(pattern=ID_PATTERN)


class JoinLinkIn(_In):
    member_id: str = Field(pattern=ID_PATTERN)


# Responses --------------------------------------------------------------------------------


class AuditEntryOut(_Out):
    at: datetime
    account_id: str | None = Field(description="null: the server's command line")
    account_name: str | None
    action: str = Field(examples=["member.erase", "session.update"])
    target_type: str | None
    target_id: str | None


class OrganizerOut(_Out):
    id: str
    email: str
    display_name: str


class OrganizersIn(_In):
    emails: list[str] = Field(
        min_length=1,
        max_length=50,
        description="Emails of organizer or admin accounts: the group's organizers from now on",
    )


class GroupOut(_Out):
    id: str
    name: str
    timezone: str
    discreet: bool
    public: bool
    description: str
    created_at: datetime
    organizer_email: str | None
    feed_url: str | None = Field(None, description="The group calendar, for public groups")
    organizers: list[OrganizerOut] = Field(
        default_factory=list, description="The accounts that organize this group"
    )


class MemberOut(_Out):
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
    feed_url: str = Field(description="The member's private calendar feed (personal)")
    page_url: str = Field(description="The member's 'my drop-ins' page (personal)")


class SeriesOut(_Out):
    id: str
    group_id: str
    title: str
    rrule: str
    first_start: datetime
    duration_minutes: int
    capacity: int
    timezone: str
    materialized_until: datetime
    sessions_created: int


class FacilitatorOut(_Out):
    member_id: str
    display_name: str


class FacilitatorsOut(_Out):
    lead: FacilitatorOut | None
    co: FacilitatorOut | None


class SessionOut(_Out):
    id: str
    group_id: str
    series_id: str
    title: str
    starts_at: datetime = Field(description="UTC, ISO 8601 with Z")
    ends_at: datetime = Field(description="UTC, ISO 8601 with Z")
    timezone: str
    local_start: str = Field(
        description="Start in the group's zone, ISO 8601 with its offset (+00:00 in winter)",
        examples=["2027-04-13T19:30:00+01:00"],
    )
    status: SessionStatus
    capacity: int
    confirmed_count: int
    waitlist_count: int
    facilitators: FacilitatorsOut
    rescheduled: bool
    sequence: int


class SessionList(_Out):
    sessions: list[SessionOut]


class AttendeeOut(_Out):
    booking_id: str
    member_id: str
    display_name: str
    status: str
    waitlist_position: int | None


class BookingOut(_Out):
    id: str
    session_id: str
    member_id: str
    status: BookingStatus
    waitlist_position: int | None
    created_at: datetime
    updated_at: datetime
    promoted_booking_ids: list[str] = Field(
        default_factory=list, description="Waitlisted bookings confirmed by this cancellation"
    )


class SwapRequestIn(_In):
    from_member_id: str = Field(pattern=ID_PATTERN, description="The facilitator who asks")
    to_member_id: str = Field(pattern=ID_PATTERN, description="The facilitator asked")


class OutboxRowOut(_Out):
    id: int
    kind: str
    session_id: str | None
    member_id: str | None
    status: str
    attempts: int
    last_error: str | None = Field(description="Why it failed, without addresses")
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None


class InvitationsOut(_Out):
    invited: int = Field(description="Parents newly owed an invitation (each is invited once)")


class JoinLinkOut(_Out):
    url: str
    expires_at: datetime
    role: MemberRole


T = TypeVar("T")


class ItemList(BaseModel, Generic[T]):
    """A list response: ``{"items": [...]}``."""

    model_config = ConfigDict(from_attributes=True)
    items: list[T]


class ErrorOut(BaseModel):
    error: str = Field(description="Stable machine-readable code")
    detail: object = Field(description="Human-readable explanation or field errors")
