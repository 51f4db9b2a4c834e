"""``dropin``: run the product (dev, serve, worker), manage the database, and the organizer's
everyday work (groups, members, series, sessions, bookings) from the terminal.

Every command reads its configuration from ``DROPIN_*`` variables (see the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from sqlalchemy.exc import DBAPIError

from dropin.config import Settings, SettingsError
from dropin.domain.session import SessionEdit
from dropin.domain.states import AccountRole, MemberRole, SessionStatus
from dropin.errors import DropinError
from dropin.store.db import Database
from dropin.store.migrate import upgrade

R = TypeVar("R")


def _settings(*, organizer: bool = False) -> Settings:
    # Organizer commands run beside `dropin dev` may use the secret it keeps in .dropin/.
    try:
        return Settings.from_env(reuse_dev_secret=organizer)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _now() -> datetime:
    return datetime.now(UTC)


def with_db(fn: Callable[..., Coroutine[Any, Any, R]]) -> Callable[..., R]:
    """Run an async command body with a :class:`Database`; map service errors to messages."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        settings = _settings(organizer=True)

        async def run() -> R:
            db = Database(settings.database_url)
            try:
                return await fn(db, settings, *args, **kwargs)
            finally:
                await db.dispose()

        try:
            return asyncio.run(run())
        except DropinError as exc:
            raise click.ClickException(f"{exc.code}: {exc.detail}") from None
        except (DBAPIError, OSError) as exc:
            raise click.ClickException(_database_trouble(exc)) from None

    return wrapper


# Frames over 64 KiB get the protocol's too_large error from the room code; far bigger ones
# are cut off by uvicorn (close 1009) before they are buffered.
WS_MAX_BYTES = 256 * 1024


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """dropin: small monthly video drop-ins for parents practising NVR.

    Start with `dropin dev`: it runs everything on this machine and prints the links to use.
    """


# Running -----------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--no-demo", is_flag=True, help="Do not create the demo group and session.")
def dev(host: str, port: int, no_demo: bool) -> None:
    """Run the whole product on embedded defaults.

    SQLite (./dropin.db), a private Redis it starts and stops itself (unless DROPIN_REDIS_URL
    is set), mail written to ./outbox/, the web app and a worker in one process; creates a
    demo group with a session starting now and prints an admin API key and links to use.
    """
    from dropin.devredis import RedisUnavailable, redis_url_or_private

    try:
        settings = Settings.from_env(
            dev=True, default_public_url=f"http://{_url_host(host)}:{port}"
        )
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    _logging(settings.log_level)
    upgrade(settings.database_url)
    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    try:
        with redis_url_or_private(settings.redis_url) as redis_url:
            asyncio.run(_dev(settings, redis_url, host, port, demo=not no_demo))
    except RedisUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only used to print a reachable URL
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def _dev(settings: Settings, redis_url: str, host: str, port: int, *, demo: bool) -> None:
    import uvicorn
    from arq.worker import Worker

    from dropin.demo import ensure_demo
    from dropin.web.app import create_app
    from workers.settings import worker_options

    settings = _replace(settings, redis_url=redis_url)
    db = Database(settings.database_url)
    try:
        info = await ensure_demo(db, settings, now=_now()) if demo else None
    finally:
        await db.dispose()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            access_log=False,
            log_level="warning",
            ws_max_size=WS_MAX_BYTES,
        )
    )
    worker = Worker(**worker_options(settings, redis_url), handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    _print_banner(settings, redis_url, info)
    try:
        await server.serve()
    finally:
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker_task
        await worker.close()


def _replace(settings: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)


def _print_banner(settings: Settings, redis_url: str, info: Any) -> None:
    line = click.style("─" * 72, dim=True)
    click.echo(line)
    click.secho("dropin is running (dev mode). Press Ctrl+C to stop.", bold=True)
    click.echo(f"  API:            {settings.public_url}/api/v1  (spec: /openapi.json)")
    click.echo(f"  Health:         {settings.public_url}/healthz")
    click.echo(f"  Database:       {settings.database_url}")
    click.echo(f"  Redis:          {redis_url}")
    click.echo(f"  Mail outbox:    {settings.outbox_dir.resolve()}/")
    if info is not None:
        click.echo(f"  Admin key:      {info.admin_key}")
        click.echo(f"  Demo group:     {info.group_id}")
        click.echo(f"  Demo session:   {info.session_id} (starts {info.starts_local})")
        click.echo("  Join links (personal; open each in its own browser window):")
        for name, role, url in info.links:
            click.echo(f"    {name} ({role}): {url}")
        click.echo("  Try:")
        click.echo(
            f"    curl -H 'Authorization: Bearer {info.admin_key}' "
            f"{settings.public_url}/api/v1/groups/{info.group_id}/sessions"
        )
    click.echo(line)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Server processes. Rooms live in one process: more than 1 only for an API-only server.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Run the web app (API, pages, rooms) with uvicorn. Run migrations first."""
    import uvicorn

    settings = _settings()
    _logging(settings.log_level)
    # Access logs are off: join and feed URLs carry personal tokens in their paths.
    uvicorn.run(
        "dropin.web.asgi:app",
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=settings.log_level.lower(),
        ws_max_size=WS_MAX_BYTES,
    )


@main.command()
@click.option("--check", is_flag=True, help="Exit 0 if a worker reported healthy recently.")
def worker(check: bool) -> None:
    """Run the arq worker: scheduled jobs (horizon extension; mail comes with the outbox)."""
    from arq.worker import Worker

    from dropin.jobs import HEALTH_KEY
    from workers.settings import worker_options

    settings = _settings()
    if not settings.redis_url:
        raise click.UsageError("DROPIN_REDIS_URL is required for `dropin worker`")
    _logging(settings.log_level)
    if check:
        from arq.worker import async_check_health

        from workers.settings import redis_settings

        code = asyncio.run(async_check_health(redis_settings(settings.redis_url), HEALTH_KEY))
        raise SystemExit(code)
    # uvloop (installed with uvicorn[standard]) makes each SMTP round trip and database
    # hand-off cheaper; the worker's throughput is bound by exactly those.
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    Worker(**worker_options(settings, settings.redis_url)).run()


# Database and keys -------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations to DROPIN_DATABASE_URL."""
    settings = _settings(organizer=True)
    try:
        upgrade(settings.database_url, revision)
    except (DBAPIError, OSError) as exc:
        raise click.ClickException(_database_trouble(exc)) from None
    click.echo(f"database at {revision}")


@main.group()
def admin() -> None:
    """Organizer API keys."""


@admin.command("create-key")
@click.argument("name")
@click.option(
    "--account",
    "email",
    default=None,
    help="The account the key acts as, with exactly its rights (default: the server's admin).",
)
@with_db
async def create_key(db: Database, settings: Settings, name: str, email: str | None) -> None:
    """Create an API key NAME; it is printed once and stored hashed."""
    from dropin.services import accounts, keys

    account_id = None if email is None else (await accounts.account_by_email(db, email)).id
    new = await keys.create_key(db, name, account_id=account_id, now=_now())
    click.echo(f"key id: {new.id}", err=True)
    click.echo("store this key now; it cannot be shown again:", err=True)
    click.echo(new.key)


@admin.command("list-keys")
@with_db
async def list_keys(db: Database, settings: Settings) -> None:
    """List API keys (never the keys themselves)."""
    from dropin.services import keys

    for key_id, name, created, revoked in await keys.list_keys(db):
        state = f"revoked {revoked:%Y-%m-%d}" if revoked else "live"
        click.echo(f"{key_id}  {name:<30} created {created:%Y-%m-%d}  {state}")


@admin.command("revoke-key")
@click.argument("key_id")
@with_db
async def revoke_key(db: Database, settings: Settings, key_id: str) -> None:
    """Revoke the key with id KEY_ID."""
    from dropin.services import keys

    await keys.revoke_key(db, key_id, now=_now())
    click.echo(f"revoked {key_id}")


# Accounts ----------------------------------------------------------------------------------


@main.group("accounts")
def accounts_group() -> None:
    """Staff accounts: admins, organizers (their groups only) and facilitators."""


@accounts_group.command("create")
@click.argument("email")
@click.option("--name", "display_name", required=True, help="How the account is shown.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in AccountRole]),
    default=AccountRole.ORGANIZER.value,
    show_default=True,
)
@with_db
async def accounts_create(
    db: Database, settings: Settings, email: str, display_name: str, role: str
) -> None:
    """Create an account for EMAIL and print its id (make it a key with admin create-key)."""
    from dropin.services import accounts

    view = await accounts.create_account(db, email, display_name, role, now=_now())
    click.echo(view.id)


@accounts_group.command("list")
@with_db
async def accounts_list(db: Database, settings: Settings) -> None:
    """List accounts: id, role, email, and whether disabled."""
    from dropin.services import accounts

    for a in await accounts.list_accounts(db):
        state = "  disabled" if a.disabled else ""
        click.echo(f"{a.id}  {a.role.value:<11} {a.email}{state}")


@accounts_group.command("disable")
@click.argument("email")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@with_db
async def accounts_disable(db: Database, settings: Settings, email: str, enable: bool) -> None:
    """Disable the account of EMAIL: its keys stop working (within seconds)."""
    from dropin.services import accounts

    view = await accounts.set_disabled(db, email, not enable, now=_now())
    click.echo(f"{view.email} {'disabled' if view.disabled else 'enabled'}")


# Organizer work ----------------------------------------------------------------------------


@main.group()
def groups() -> None:
    """Create and list groups."""


@groups.command("create")
@click.option("--name", required=True, help='e.g. "Monthly NVR parents circle"')
@click.option("--timezone", "tz", required=True, help="IANA zone, e.g. Europe/London")
@click.option("--discreet", is_flag=True, help="Neutral calendar titles, CLASS:PRIVATE.")
@click.option("--public", is_flag=True, help="Publish a group calendar feed.")
@click.option(
    "--organizer",
    "organizer_email",
    default=None,
    help="The organizer account (by email) that runs it; without one only admins reach it.",
)
@with_db
async def groups_create(
    db: Database,
    settings: Settings,
    name: str,
    tz: str,
    discreet: bool,
    public: bool,
    organizer_email: str | None,
) -> None:
    """Create a group and print its id."""
    from dropin.services import accounts
    from dropin.services import groups as svc

    organizer = None
    if organizer_email is not None:
        organizer = (await accounts.organizer_account(db, organizer_email)).id
    view = await svc.create_group(
        db,
        name=name,
        timezone=tz,
        discreet=discreet,
        public=public,
        now=_now(),
        organizer_account_id=organizer,
    )
    click.echo(view.id)


@groups.command("list")
@with_db
async def groups_list(db: Database, settings: Settings) -> None:
    """List groups."""
    from dropin.services import groups as svc

    for g in await svc.list_groups(db):
        flags = ", ".join(f for f, on in (("discreet", g.discreet), ("public", g.public)) if on)
        click.echo(f"{g.id}  {g.name}  ({g.timezone}{', ' + flags if flags else ''})")


@main.group()
def members() -> None:
    """Add, import, list and erase a group's members."""


@members.command("add")
@click.argument("group_id")
@click.option("--name", "display_name", required=True, help="First name or pseudonym.")
@click.option("--email", required=True)
@click.option(
    "--role", type=click.Choice([r.value for r in MemberRole]), default=MemberRole.PARENT.value
)
@with_db
async def members_add(
    db: Database, settings: Settings, group_id: str, display_name: str, email: str, role: str
) -> None:
    """Add one member to GROUP_ID and print their id."""
    from dropin.services import groups as svc

    [view] = await svc.add_members(
        db, group_id, [svc.NewMember(display_name, email, role)], now=_now()
    )
    click.echo(view.id)


@members.command("import")
@click.argument("group_id")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@with_db
async def members_import(db: Database, settings: Settings, group_id: str, csv_file: Any) -> None:
    """Add members from CSV_FILE (header: display_name,email[,role]); all or none."""
    from dropin.services import groups as svc

    found = svc.parse_members_csv(csv_file.read())
    added = await svc.add_members(db, group_id, found, now=_now())
    for view in added:
        click.echo(f"{view.id}  {view.role:<11} {view.display_name}")
    click.echo(f"added {len(added)} members", err=True)


@members.command("erase")
@click.argument("member_id")
@with_db
async def members_erase(db: Database, settings: Settings, member_id: str) -> None:
    """Erase MEMBER_ID: places ahead cancelled (the waitlist moves), sessions they facilitate
    handed to the rotation, then their name, email and links gone for good."""
    from dropin.services import audit, erasure
    from dropin.services import groups as svc

    group_id = (await svc.get_member(db, member_id)).group_id
    await erasure.erase_member(db, member_id, now=_now())
    await audit.record(
        db,
        account_id=None,
        action="member.erase",
        group_id=group_id,
        target_type="member",
        target_id=member_id,
        now=_now(),
    )
    click.echo(f"{member_id} erased")


@members.command("list")
@click.argument("group_id")
@with_db
async def members_list(db: Database, settings: Settings, group_id: str) -> None:
    """List GROUP_ID's members."""
    from dropin.services import groups as svc

    for m in await svc.list_members(db, group_id):
        click.echo(f"{m.id}  {m.role:<11} {m.display_name:<20} {m.email}")


@main.group()
def series() -> None:
    """Create and list recurring series (edit them with PATCH /api/v1/series/{id})."""


@series.command("create")
@click.argument("group_id")
@click.option("--title", required=True)
@click.option("--rrule", required=True, help="RFC 5545 rule, e.g. FREQ=MONTHLY;BYDAY=2TU")
@click.option("--first-start", required=True, help="Local wall-clock time, e.g. 2026-01-13T19:30")
@click.option(
    "--duration", "duration_minutes", default=75, show_default=True, type=int, help="Minutes."
)
@click.option("--capacity", default=10, show_default=True, type=int, help="Places.")
@with_db
async def series_create(
    db: Database,
    settings: Settings,
    group_id: str,
    title: str,
    rrule: str,
    first_start: str,
    duration_minutes: int,
    capacity: int,
) -> None:
    """Create a series in GROUP_ID; sessions are created up to the horizon."""
    from dropin.services import series as svc

    view = await svc.create_series(
        db,
        group_id,
        svc.SeriesInput(title, rrule, _local(first_start), duration_minutes, capacity),
        now=_now(),
        horizon_days=settings.horizon_days,
    )
    click.echo(view.id)
    click.echo(f"{view.sessions_created} sessions created", err=True)


def _local(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is not None:
        raise click.BadParameter("give local wall-clock time without an offset")
    return parsed


@series.command("list")
@click.argument("group_id")
@with_db
async def series_list(db: Database, settings: Settings, group_id: str) -> None:
    """List GROUP_ID's series."""
    from dropin.services import series as svc

    for s in await svc.list_series(db, group_id):
        click.echo(
            f"{s.id}  {s.title}  {s.rrule} from {s.first_start:%Y-%m-%d %H:%M} "
            f"({s.timezone}), {s.duration_minutes} min, {s.capacity} places"
        )


@main.group()
def sessions() -> None:
    """List sessions with their bookings; reschedule, cancel, book, issue join links."""


@sessions.command("list")
@click.argument("group_id")
@click.option("--days", default=90, show_default=True, type=int, help="How far ahead.")
@click.option("--bookings/--no-bookings", default=True, show_default=True)
@with_db
async def sessions_list(
    db: Database, settings: Settings, group_id: str, days: int, bookings: bool
) -> None:
    """Upcoming sessions of GROUP_ID, in the group's time zone, with bookings."""
    from dropin.services import sessions as svc

    now = _now()
    # From today in the group's own zone (the service's default start).
    found = await svc.list_sessions(
        db, group_id, start=None, end=now + timedelta(days=days), now=now
    )
    if not found:
        click.echo("no sessions in that window")
    for s in found:
        local = s.starts_at.astimezone(ZoneInfo(s.timezone))
        lead = s.lead.display_name if s.lead else "no lead yet"
        flag = "  CANCELLED" if s.status == SessionStatus.CANCELLED else ""
        click.echo(
            f"{local:%a %d %b %Y %H:%M} {s.timezone}  {s.title}  "
            f"{s.confirmed_count}/{s.capacity} booked, {s.waitlist_count} waiting, "
            f"lead: {lead}  [{s.id}]{flag}"
        )
        if bookings:
            for a in await svc.attendees(db, s.id):
                where = f"waitlist #{a.waitlist_position}" if a.waitlist_position else a.status
                click.echo(f"    {a.display_name:<20} {where}  [booking {a.booking_id}]")


@sessions.command("cancel")
@click.argument("session_id")
@with_db
async def sessions_cancel(db: Database, settings: Settings, session_id: str) -> None:
    """Cancel one session (the series goes on)."""
    from dropin.services import sessions as svc

    edit = SessionEdit(status=SessionStatus.CANCELLED)
    view = await svc.update_session(db, session_id, edit, now=_now())
    click.echo(f"{view.id} cancelled")


@sessions.command("reschedule")
@click.argument("session_id")
@click.argument("local_start")
@with_db
async def sessions_reschedule(
    db: Database, settings: Settings, session_id: str, local_start: str
) -> None:
    """Move one session to LOCAL_START (wall-clock time in the group's zone)."""
    from dropin.services import sessions as svc

    edit = SessionEdit(local_start=_local(local_start))
    view = await svc.update_session(db, session_id, edit, now=_now())
    click.echo(f"{view.id} now starts {view.local_start:%Y-%m-%d %H:%M %Z}")


@sessions.command("book")
@click.argument("session_id")
@click.argument("member_id")
@with_db
async def sessions_book(db: Database, settings: Settings, session_id: str, member_id: str) -> None:
    """Book MEMBER_ID onto SESSION_ID (waitlisted when full)."""
    from dropin.services import bookings as svc

    view = await svc.book_seat(db, session_id, member_id, now=_now())
    where = f" (waitlist #{view.waitlist_position})" if view.waitlist_position else ""
    click.echo(f"{view.id} {view.status}{where}")


@sessions.command("unbook")
@click.argument("booking_id")
@with_db
async def sessions_unbook(db: Database, settings: Settings, booking_id: str) -> None:
    """Cancel BOOKING_ID; the first waitlisted member is promoted."""
    from dropin.services import bookings as svc

    view = await svc.cancel_booking(db, booking_id, now=_now())
    click.echo(f"{view.id} cancelled; promoted: {', '.join(view.promoted) or 'nobody'}")


@sessions.command("join-link")
@click.argument("session_id")
@click.argument("member_id")
@with_db
async def sessions_join_link(
    db: Database, settings: Settings, session_id: str, member_id: str
) -> None:
    """Print MEMBER_ID's personal join link for SESSION_ID."""
    from dropin.services import links

    link = await links.issue_join_link(
        db,
        secret=settings.secret_key,
        public_url=settings.public_url,
        session_id=session_id,
        member_id=member_id,
        now=_now(),
    )
    click.echo(link.url)


def _database_trouble(exc: Exception) -> str:
    """A one-line explanation for a database that is missing, unreachable or not migrated."""
    text = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
    if "no such table" in text or ("does not exist" in text and "relation" in text):
        return f"the database is not set up yet ({text}); run `dropin db upgrade`"
    return f"cannot use the database at DROPIN_DATABASE_URL ({text})"


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        # arq logs every job start and finish (a cron sweep every 5 s); ours say what matters.
        logging.getLogger("arq").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # aioice logs every connectivity check, with the client's IP address: not at INFO.
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
