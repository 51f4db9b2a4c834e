"""The organizer's JSON API, ``/api/v1``. Handlers parse, call one service, render."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropin.errors import Invalid, NotFound
from dropin.services import (
    access,
    accounts,
    audit,
    bookings,
    erasure,
    groups,
    handoff,
    links,
    outbox,
    rota,
    series,
    sessions,
)
from dropin.services.access import Actor
from dropin.services.views import BookingView, GroupView, MemberView, SessionView
from dropin.store.db import Database
from dropin.web import (
    ids,  # noqa: F401 - the {name:id} path convertor
    schemas,
)
from dropin.web.feeds import GROUP_FEED
from dropin.web.render import model_response, parse
from dropin.web.routes import public_url_for
from dropin.web.state import app_state, require_organizer, utcnow


def _session_out(view: SessionView) -> schemas.SessionOut:
    return schemas.SessionOut(
        **{
            k: getattr(view, k)
            for k in schemas.SessionOut.model_fields
            if k not in ("facilitators", "local_start")
        },
        local_start=view.local_start.isoformat(),
        facilitators=schemas.FacilitatorsOut.model_validate({"lead": view.lead, "co": view.co}),
    )


def _member_out(request: Request, view: MemberView) -> schemas.MemberOut:
    links = app_state(request).links
    return schemas.MemberOut.model_validate(
        {
            **{k: getattr(view, k) for k in schemas.MemberOut.model_fields if hasattr(view, k)},
            "feed_url": links.feed(view.id, view.link_nonce),
            "page_url": links.page(view.id, view.link_nonce),
        }
    )


async def _group_out(request: Request, view: GroupView) -> schemas.GroupOut:
    organizers = await accounts.organizers_of(app_state(request).db, [view.id])
    return _group_json(request, view, organizers[view.id])


def _group_json(
    request: Request, view: GroupView, organizers: list[accounts.OrganizerView]
) -> schemas.GroupOut:
    out = schemas.GroupOut.model_validate(view)
    out.organizers = [schemas.OrganizerOut.model_validate(o) for o in organizers]
    if view.public:
        out.feed_url = public_url_for(request, GROUP_FEED, group_id=view.id)
    return out


# The resources a path can name, and the check that the caller reaches each.
@dataclass(frozen=True)
class Scope:
    """Who calls, and the group the resources named by the path belong to (if any)."""

    actor: Actor
    group_id: str | None


_REACH: dict[str, Callable[[Database, Actor, Any], Awaitable[str]]] = {
    "group_id": access.group,
    "member_id": access.member,
    "series_id": access.series_,
    "session_id": access.session,
    "booking_id": access.booking,
    "row_id": access.outbox_row,
}


async def scoped(request: Request) -> Scope:
    """The caller's account and group, once it is known to reach every resource the path names.

    Another organization's resource answers 404 with its usual code, as if it did not exist.
    """
    actor = await require_organizer(request)
    db = app_state(request).db
    group_id = None
    for name, value in request.path_params.items():
        group_id = await _REACH[name](db, actor, value)
    return Scope(actor, group_id)


async def _audit(
    request: Request, scope: Scope, action: str, target_type: str, target_id: str
) -> None:
    """Record who did what to which resource of which group (ids only)."""
    await audit.record(
        app_state(request).db,
        account_id=scope.actor.account_id,
        action=action,
        group_id=scope.group_id,
        target_type=target_type,
        target_id=target_id,
        now=utcnow(),
    )


def _booking_out(view: BookingView) -> schemas.BookingOut:
    out = schemas.BookingOut.model_validate(view)
    out.promoted_booking_ids = list(view.promoted)
    return out


MIN_YEAR, MAX_YEAR = 1970, 2200


def _no_nulls(changes: dict[str, Any]) -> dict[str, Any]:
    """PATCH bodies: a field is left out to keep it; null is not a value for these fields."""
    nulls = sorted(k for k, v in changes.items() if v is None)
    if nulls:
        raise Invalid(
            [{"field": k, "message": "cannot be null"} for k in nulls], code="invalid_fields"
        )
    return changes


def _items(model: type[BaseModel], views: Sequence[object]) -> Response:
    listing = schemas.ItemList[model].model_validate(  # type: ignore[valid-type]
        {"items": views}, from_attributes=True
    )
    return model_response(listing)


def _when(request: Request, name: str) -> datetime | date | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value: date | datetime
        value = (
            date.fromisoformat(raw)
            if len(raw) == 10
            else datetime.fromisoformat(raw.replace("Z", "+00:00"))
        )
    except ValueError:
        raise Invalid(
            f"'{name}' must be an ISO 8601 date (2026-01-31) or date-time", code="invalid_query"
        ) from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise Invalid(f"'{name}' must be between {MIN_YEAR} and {MAX_YEAR}", code="invalid_query")
    return value


async def create_group(request: Request) -> Response:
    actor = await require_organizer(request)
    actor.may_create_groups()
    body = await parse(request, schemas.GroupIn)
    db = app_state(request).db
    view = await groups.create_group(
        db, now=utcnow(), organizer_account_id=actor.account_id, **body.model_dump()
    )
    await _audit(request, Scope(actor, view.id), "group.create", "group", view.id)
    return model_response(await _group_out(request, view), 201)


async def list_groups(request: Request) -> Response:
    actor = await require_organizer(request)
    db = app_state(request).db
    views = await groups.list_groups(db, only=await access.group_ids(db, actor))
    organizers = await accounts.organizers_of(db, [v.id for v in views])
    items = [_group_json(request, v, organizers[v.id]) for v in views]
    return model_response(schemas.ItemList[schemas.GroupOut](items=items))


async def set_organizers(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.OrganizersIn)
    db, group_id = app_state(request).db, request.path_params["group_id"]
    await accounts.set_organizers(db, group_id, body.emails)
    await _audit(request, scope, "group.organizers", "group", group_id)
    return model_response(await _group_out(request, await groups.get_group(db, group_id)))


async def delete_group(request: Request) -> Response:
    scope = await scoped(request)
    group_id = request.path_params["group_id"]
    state = app_state(request)
    await erasure.erase_group(state.db, group_id)
    if state.rooms is not None:  # committed: its live rooms end
        await state.rooms.refresh(utcnow())
    await _audit(request, scope, "group.delete", "group", group_id)
    return Response(status_code=204)


async def get_audit(request: Request) -> Response:
    await scoped(request)
    entries = await audit.for_group(app_state(request).db, request.path_params["group_id"])
    return _items(schemas.AuditEntryOut, entries)


async def get_group(request: Request) -> Response:
    await scoped(request)
    view = await groups.get_group(app_state(request).db, request.path_params["group_id"])
    return model_response(await _group_out(request, view))


async def update_group(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.GroupPatch)
    changes = body.model_dump(exclude_unset=True)
    _no_nulls({k: v for k, v in changes.items() if k != "organizer_email"})
    view = await groups.update_group(
        app_state(request).db, request.path_params["group_id"], body.to_edit(), now=utcnow()
    )
    await _audit(request, scope, "group.update", "group", request.path_params["group_id"])
    return model_response(await _group_out(request, view))


async def add_member(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.MemberIn)
    [view] = await groups.add_members(
        app_state(request).db,
        request.path_params["group_id"],
        [groups.NewMember(**body.model_dump())],
        now=utcnow(),
    )
    await _audit(request, scope, "member.add", "member", view.id)
    return model_response(_member_out(request, view), 201)


async def list_members(request: Request) -> Response:
    await scoped(request)
    views = await groups.list_members(app_state(request).db, request.path_params["group_id"])
    return model_response(
        schemas.ItemList[schemas.MemberOut](items=[_member_out(request, v) for v in views])
    )


async def get_member(request: Request) -> Response:
    await scoped(request)
    view = await groups.get_member(app_state(request).db, request.path_params["member_id"])
    return model_response(_member_out(request, view))


async def update_member(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.MemberPatch)
    changes = body.model_dump(exclude_unset=True)
    for field in ("display_name", "email", "weight", "led_before"):
        if field in changes and changes[field] is None:
            raise Invalid(f"{field} cannot be null", code="invalid_fields")
    view = await groups.update_member(
        app_state(request).db, request.path_params["member_id"], body.to_edit(), now=utcnow()
    )
    await _audit(request, scope, "member.update", "member", request.path_params["member_id"])
    return model_response(_member_out(request, view))


async def erase_member(request: Request) -> Response:
    scope = await scoped(request)
    await erasure.erase_member(
        app_state(request).db, request.path_params["member_id"], now=utcnow()
    )
    await _audit(request, scope, "member.erase", "member", request.path_params["member_id"])
    return Response(status_code=204)


async def renew_member_links(request: Request) -> Response:
    scope = await scoped(request)
    view = await groups.renew_links(
        app_state(request).db, request.path_params["member_id"], now=utcnow()
    )
    await _audit(request, scope, "member.links", "member", request.path_params["member_id"])
    return model_response(_member_out(request, view))


async def create_series(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.SeriesIn)
    state = app_state(request)
    view = await series.create_series(
        state.db,
        request.path_params["group_id"],
        series.SeriesInput(**body.model_dump()),
        now=utcnow(),
        horizon_days=state.settings.horizon_days,
    )
    await _audit(request, scope, "series.create", "series", view.id)
    return model_response(schemas.SeriesOut.model_validate(view), 201)


async def get_series(request: Request) -> Response:
    await scoped(request)
    view = await series.get_series(app_state(request).db, request.path_params["series_id"])
    return model_response(schemas.SeriesOut.model_validate(view))


async def list_series(request: Request) -> Response:
    await scoped(request)
    views = await series.list_series(app_state(request).db, request.path_params["group_id"])
    return _items(schemas.SeriesOut, views)


async def update_series(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.SeriesPatch)
    _no_nulls(body.model_dump(exclude_unset=True))
    state = app_state(request)
    view = await series.update_series(
        state.db,
        request.path_params["series_id"],
        body.to_edit(),
        now=utcnow(),
        horizon_days=state.settings.horizon_days,
    )
    if state.rooms is not None:  # committed: a live room follows its session
        await state.rooms.refresh(utcnow())
    await _audit(request, scope, "series.update", "series", request.path_params["series_id"])
    return model_response(schemas.SeriesOut.model_validate(view))


async def list_sessions(request: Request) -> Response:
    await scoped(request)
    views = await sessions.list_sessions(
        app_state(request).db,
        request.path_params["group_id"],
        start=_when(request, "from"),
        end=_when(request, "to"),
        now=utcnow(),
    )
    return model_response(schemas.SessionList(sessions=[_session_out(v) for v in views]))


async def get_session(request: Request) -> Response:
    await scoped(request)
    view = await sessions.get_session(app_state(request).db, request.path_params["session_id"])
    return model_response(_session_out(view))


async def update_session(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.SessionPatch)
    _no_nulls(body.model_dump(exclude_unset=True))
    state = app_state(request)
    session_id = request.path_params["session_id"]
    view = await sessions.update_session(state.db, session_id, body.to_edit(), now=utcnow())
    if state.rooms is not None:  # committed: a live room follows its session
        await state.rooms.refresh(utcnow(), session_id)
    await _audit(request, scope, "session.update", "session", session_id)
    return model_response(_session_out(view))


async def set_facilitators(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.FacilitatorsIn)
    view = await sessions.set_facilitators(
        app_state(request).db,
        request.path_params["session_id"],
        lead_member_id=body.lead_member_id,
        co_member_id=body.co_member_id,
        now=utcnow(),
    )
    await _audit(
        request, scope, "session.facilitators", "session", request.path_params["session_id"]
    )
    return model_response(_session_out(view))


async def list_bookings(request: Request) -> Response:
    await scoped(request)
    views = await sessions.attendees(app_state(request).db, request.path_params["session_id"])
    return _items(schemas.AttendeeOut, views)


async def create_booking(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.BookingIn)
    view = await bookings.book_seat(
        app_state(request).db, request.path_params["session_id"], body.member_id, now=utcnow()
    )
    await _audit(request, scope, "booking.create", "booking", view.id)
    return model_response(_booking_out(view), 201)


async def get_booking(request: Request) -> Response:
    await scoped(request)
    view = await bookings.get_booking(app_state(request).db, request.path_params["booking_id"])
    return model_response(_booking_out(view))


async def cancel_booking(request: Request) -> Response:
    scope = await scoped(request)
    view = await bookings.cancel_booking(
        app_state(request).db, request.path_params["booking_id"], now=utcnow()
    )
    await _audit(request, scope, "booking.cancel", "booking", request.path_params["booking_id"])
    return model_response(_booking_out(view))


async def get_rota(request: Request) -> Response:
    await scoped(request)
    days = request.query_params.get("days", "180")
    if not re.fullmatch(r"[0-9]{1,4}", days):  # not str.isdigit(): it accepts "²"
        raise Invalid("days must be a whole number", code="invalid_query")
    lines = await rota.rota(
        app_state(request).db, request.path_params["group_id"], now=utcnow(), days=int(days)
    )
    return _items(schemas.RotaLineOut, lines)


async def run_rota(request: Request) -> Response:
    scope = await scoped(request)
    state = app_state(request)
    group_id = request.path_params["group_id"]
    await groups.get_group(state.db, group_id)
    await rota.rotate_group(state.db, group_id, now=utcnow())
    await _audit(request, scope, "rota.run", "group", group_id)
    return _items(schemas.RotaLineOut, await rota.rota(state.db, group_id, now=utcnow()))


async def get_unavailable(request: Request) -> Response:
    await scoped(request)
    days = await rota.unavailable(
        app_state(request).db, request.path_params["member_id"], today=utcnow().date()
    )
    return model_response(schemas.UnavailableOut(days=days))


async def put_unavailable(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.UnavailableIn)
    days = await rota.set_unavailable(
        app_state(request).db,
        request.path_params["member_id"],
        body.days,
        today=utcnow().date(),
    )
    await _audit(request, scope, "member.unavailable", "member", request.path_params["member_id"])
    return model_response(schemas.UnavailableOut(days=days))


async def request_swap(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.SwapRequestIn)
    await handoff.request_swap(
        app_state(request).db,
        request.path_params["session_id"],
        body.from_member_id,
        body.to_member_id,
        now=utcnow(),
    )
    await _audit(
        request, scope, "session.swap_request", "session", request.path_params["session_id"]
    )
    return Response(status_code=202)


async def list_outbox(request: Request) -> Response:
    actor = await require_organizer(request)
    db = app_state(request).db
    rows = await outbox.list_rows(
        db,
        status=request.query_params.get("status", "failed"),
        group_ids=await access.group_ids(db, actor),
    )
    return _items(schemas.OutboxRowOut, rows)


async def retry_outbox(request: Request) -> Response:
    scope = await scoped(request)
    row_id = request.path_params["row_id"]
    if not 0 < row_id < 2**31:
        raise NotFound("no failed message with that id", code="message_not_found")
    await outbox.retry_row(app_state(request).db, row_id)
    await _audit(request, scope, "outbox.retry", "message", str(row_id))
    return Response(status_code=202)


async def invite_group(request: Request) -> Response:
    scope = await scoped(request)
    count = await outbox.invite_group(
        app_state(request).db, request.path_params["session_id"], now=utcnow()
    )
    await _audit(
        request, scope, "session.invitations", "session", request.path_params["session_id"]
    )
    return model_response(schemas.InvitationsOut(invited=count), 202)


async def create_join_link(request: Request) -> Response:
    scope = await scoped(request)
    body = await parse(request, schemas.JoinLinkIn)
    state = app_state(request)
    link = await links.issue_join_link(
        state.db,
        secret=state.settings.secret_key,
        public_url=state.settings.public_url,
        session_id=request.path_params["session_id"],
        member_id=body.member_id,
        now=utcnow(),
    )
    await _audit(request, scope, "session.join_link", "member", body.member_id)
    return model_response(schemas.JoinLinkOut.model_validate(link), 201)


def _route(path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str) -> Route:
    """A route named after its handler (the OpenAPI description and links find it by name)."""
    return Route(path, endpoint, methods=[method], name=endpoint.__name__)


routes = [
    _route("/groups", create_group, "POST"),
    _route("/groups", list_groups, "GET"),
    _route("/groups/{group_id:id}", get_group, "GET"),
    _route("/groups/{group_id:id}", update_group, "PATCH"),
    _route("/groups/{group_id:id}", delete_group, "DELETE"),
    _route("/groups/{group_id:id}/audit", get_audit, "GET"),
    _route("/groups/{group_id:id}/organizers", set_organizers, "PUT"),
    _route("/groups/{group_id:id}/members", add_member, "POST"),
    _route("/groups/{group_id:id}/members", list_members, "GET"),
    _route("/members/{member_id:id}", get_member, "GET"),
    _route("/members/{member_id:id}", update_member, "PATCH"),
    _route("/members/{member_id:id}", erase_member, "DELETE"),
    _route("/members/{member_id:id}/feed-token", renew_member_links, "POST"),
    _route("/members/{member_id:id}/unavailable", get_unavailable, "GET"),
    _route("/members/{member_id:id}/unavailable", put_unavailable, "PUT"),
    _route("/groups/{group_id:id}/rota", get_rota, "GET"),
    _route("/groups/{group_id:id}/rota/run", run_rota, "POST"),
    _route("/groups/{group_id:id}/series", create_series, "POST"),
    _route("/groups/{group_id:id}/series", list_series, "GET"),
    _route("/groups/{group_id:id}/sessions", list_sessions, "GET"),
    _route("/series/{series_id:id}", get_series, "GET"),
    _route("/series/{series_id:id}", update_series, "PATCH"),
    _route("/sessions/{session_id:id}", get_session, "GET"),
    _route("/sessions/{session_id:id}", update_session, "PATCH"),
    _route("/sessions/{session_id:id}/facilitators", set_facilitators, "PUT"),
    _route("/sessions/{session_id:id}/bookings", create_booking, "POST"),
    _route("/sessions/{session_id:id}/bookings", list_bookings, "GET"),
    _route("/sessions/{session_id:id}/join-links", create_join_link, "POST"),
    _route("/sessions/{session_id:id}/invitations", invite_group, "POST"),
    _route("/sessions/{session_id:id}/swap-requests", request_swap, "POST"),
    _route("/outbox", list_outbox, "GET"),
    _route("/outbox/{row_id:int}/retry", retry_outbox, "POST"),
    _route("/bookings/{booking_id:id}", get_booking, "GET"),
    _route("/bookings/{booking_id:id}", cancel_booking, "DELETE"),
]
