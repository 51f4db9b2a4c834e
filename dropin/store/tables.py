"""The relational schema (SQLAlchemy Core). Alembic migrations mirror it.

Times are stored as naive UTC (``UTCDateTime`` adds and strips the zone) so SQLite and
PostgreSQL behave the same. Sessions carry denormalized seat counts: they make listings cheap
and the session row is the one lock a booking takes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python, a naive UTC timestamp in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


ID = String(32)

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    # Lower-case; staff addresses (organizers, facilitators, admins), never parents'.
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    # admin (everything on this server), organizer (the groups they organize), facilitator.
    Column("role", String(16), nullable=False),
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    # The account the key acts as, with exactly its rights. Keys made before accounts
    # existed were given the migration's admin account (0008).
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
)

groups = Table(
    "groups",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("discreet", Boolean, nullable=False, default=False),
    Column("public", Boolean, nullable=False, default=False),
    Column("description", Text, nullable=False, default=""),
    # Where alerts go (nobody can lead a session soon). Never shown to members.
    Column("organizer_email", String(254), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

group_organizers = Table(
    "group_organizers",
    metadata,
    # Who organizes a group: they (and admins) see and change it; nobody else knows it exists.
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_group_organizers_account", "account_id"),
)

members = Table(
    "members",
    metadata,
    Column("id", ID, primary_key=True),
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(40), nullable=False),
    Column("email", String(254), nullable=False),
    Column("role", String(16), nullable=False),
    # None: follow the group's discreet setting; True/False: the member's own preference.
    Column("discreet", Boolean, nullable=True),
    # None: the group's zone. Times in mail and on the member page are shown in this zone.
    Column("timezone", String(64), nullable=True),
    # Random; the member's feed and page tokens are HMACs over it (dropin/domain/tokens.py),
    # so replacing it revokes both and the tokens themselves are never stored.
    Column("link_nonce", String(32), nullable=False),
    # Facilitators only: their share of the rota (2 = twice as often), a quarterly limit,
    # and sessions led before the group used dropin (counts as experience, not as share).
    Column("weight", Float, nullable=False, default=1.0),
    Column("max_per_quarter", Integer, nullable=True),
    Column("led_before", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("group_id", "email", name="uq_members_group_email"),
)

series = Table(
    "series",
    metadata,
    Column("id", ID, primary_key=True),
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("rrule", String(500), nullable=False),
    # Wall-clock time in the group's zone, deliberately naive.
    Column("first_start", DateTime, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("materialized_until", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_series_group", "group_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("series_id", ID, ForeignKey("series.id", ondelete="CASCADE"), nullable=False),
    # The nominal local start from the rule (RFC 5545's RECURRENCE-ID): the session's identity
    # within its series, kept when the session is moved.
    Column("occurrence_key", String(19), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("lead_member_id", ID, ForeignKey("members.id", ondelete="SET NULL"), nullable=True),
    Column("co_member_id", ID, ForeignKey("members.id", ondelete="SET NULL"), nullable=True),
    # True once an organizer moved this one occurrence: series edits then leave its time alone.
    Column("rescheduled", Boolean, nullable=False, default=False),
    # True when a series edit (not the organizer) cancelled it: a later edit may reinstate it.
    Column("retired", Boolean, nullable=False, default=False),
    # Who chose the facilitators: "rotation", "organizer", or None while nobody is assigned;
    # the rotation's note when it could not fill the session as it should (ids only).
    Column("facilitators_by", String(16), nullable=True),
    Column("rotation_note", Text, nullable=True),
    # Handoff steps (dropin/domain/handoff.py), each taken once.
    Column("lead_notified_at", UTCDateTime(), nullable=True),
    Column("lead_confirmed_at", UTCDateTime(), nullable=True),
    Column("handed_over_at", UTCDateTime(), nullable=True),
    Column("alerted_at", UTCDateTime(), nullable=True),
    # Calendar SEQUENCE: rises on every change a calendar must show.
    Column("sequence", Integer, nullable=False, default=0),
    Column("confirmed_count", Integer, nullable=False, default=0),
    Column("waitlist_count", Integer, nullable=False, default=0),
    Column("next_waitlist_seq", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("series_id", "occurrence_key", name="uq_sessions_series_occurrence"),
    Index("ix_sessions_group_starts", "group_id", "starts_at"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", ID, primary_key=True),
    Column("session_id", ID, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("member_id", ID, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("waitlist_seq", Integer, nullable=True),
    # Rises with every status change, so calendar updates to this member always win
    # (an entry's SEQUENCE is the session's sequence plus this).
    Column("revision", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # One booking row per member and session, re-used when a member books again.
    UniqueConstraint("session_id", "member_id", name="uq_bookings_session_member"),
    Index("ix_bookings_member", "member_id"),
)

unavailability = Table(
    "unavailability",
    metadata,
    Column("member_id", ID, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    # A local date in the group's zone on which this facilitator cannot facilitate.
    Column("day", Date, primary_key=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # What happened, e.g. booking_confirmed; the worker decides what message it owes.
    Column("kind", String(40), nullable=False),
    Column("session_id", ID, nullable=True),
    Column("member_id", ID, nullable=True),
    Column("booking_id", ID, nullable=True),
    # The other facilitator in a swap request (who asks); null for every other kind.
    Column("other_member_id", ID, nullable=True),
    # pending -> sending -> sent | failed | skipped (no longer relevant when its turn came)
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    # Why the last attempt failed, without addresses (e.g. "smtp 451 4.3.0 try later").
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # Not before this (exponential backoff after a transient failure).
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    # When a worker took the row; a row left "sending" by a dead worker is taken again later.
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("sent_at", UTCDateTime(), nullable=True),
    # Makes scheduled messages (reminders) idempotent: one row per key, ever.
    Column("dedup_key", String(120), nullable=True, unique=True),
    Index("ix_outbox_status_id", "status", "id"),
    Index("ix_outbox_pair", "session_id", "member_id", "id"),
)

room_removals = Table(
    "room_removals",
    metadata,
    # A facilitator removed this member from this session's room: they stay out for the rest
    # of the session, whatever token they hold and whichever server process they reach.
    Column("session_id", ID, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", ID, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("removed_at", UTCDateTime(), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    # Who did it: an account, or None for the server's command line.
    Column("account_id", ID, nullable=True),
    # e.g. member.erase, session.update. Ids only: no names, emails or message text.
    Column("action", String(40), nullable=False),
    # Kept after the group is deleted (no foreign keys): the record of who deleted it.
    Column("group_id", ID, nullable=True),
    Column("target_type", String(16), nullable=True),
    Column("target_id", String(32), nullable=True),
    Index("ix_audit_log_group_at", "group_id", "at"),
)
