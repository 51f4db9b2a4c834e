"""The OpenAPI 3.1 description, derived from the route tables and the pydantic schemas.

Paths, methods and path parameters come from the routes themselves (``api.routes`` under
:data:`API_PREFIX`, and the link routes of ``feeds``, ``member``, ``handoff`` and ``pages``),
found by route name; ``components.schemas`` are generated from the pydantic models. What is
written here is only what a route cannot say about itself: a summary, the models, the success
status and the error statuses particular to it. The statuses every operation of a kind can
answer are added here too: 401 for every API call, 404 for a path with an id or a link token,
400/413/415/422 for a JSON body, 410 for an expired link. ``tests/web/test_openapi.py`` checks
the result against the running app, the handlers and ``docs/api.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Mount, Route

from dropin.web import api, feeds, handoff, member, pages
from dropin.web import schemas as s

API_PREFIX = "/api/v1"
# Converters as OpenAPI sees them: ``{x:id}`` is ``{x}``.
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_]+))?}")


def openapi_path(path: str) -> str:
    """A Starlette path as OpenAPI writes it (converters dropped)."""
    return _PARAM.sub(r"{\1}", path)


@dataclass(frozen=True)
class Op:
    """What the description says about one route beyond its path and method."""

    summary: str
    request: type[BaseModel] | None = None
    status: int = 200
    response: type[BaseModel] | None = None
    # Error statuses particular to this operation (the common ones are added by kind).
    errors: str = ""
    query: tuple[tuple[str, str], ...] = ()


_SESSION_RANGE = (
    ("from", "ISO date (whole days in the group's zone) or date-time"),
    ("to", "ISO date (whole days in the group's zone) or date-time"),
)

# The JSON API, by route name (dropin/web/api.py).
OPERATIONS: dict[str, Op] = {
    "create_group": Op(
        "Create a group (its creator organizes it)", s.GroupIn, 201, s.GroupOut, errors="403"
    ),
    "list_groups": Op("List groups", None, 200, s.ItemList[s.GroupOut]),
    "get_group": Op("Get a group", None, 200, s.GroupOut),
    "update_group": Op("Rename a group or change its settings", s.GroupPatch, 200, s.GroupOut),
    "delete_group": Op("Delete a group and erase its members (nobody is mailed)", None, 204),
    "get_audit": Op(
        "Who did what in this group, newest first (ids only)",
        None,
        200,
        s.ItemList[s.AuditEntryOut],
    ),
    "set_organizers": Op(
        "Replace the group's organizers (organizer or admin accounts, by email)",
        s.OrganizersIn,
        200,
        s.GroupOut,
    ),
    "erase_member": Op(
        "Erase a member: places ahead cancelled (the waitlist moves), sessions they facilitate"
        " handed to the rotation, then their name, email and links gone for good",
        None,
        204,
    ),
    "get_member": Op("Get a member (with feed and page links)", None, 200, s.MemberOut),
    "update_member": Op(
        "Change a member's name, email or preferences", s.MemberPatch, 200, s.MemberOut, "409"
    ),
    "renew_member_links": Op(
        "Issue new feed and page links (the old ones stop working)", None, 200, s.MemberOut
    ),
    "get_series": Op("Get a series", None, 200, s.SeriesOut),
    "get_rota": Op(
        "The facilitator rota",
        None,
        200,
        s.ItemList[s.RotaLineOut],
        "422",
        (("days", "How many days ahead (default 180)"),),
    ),
    "run_rota": Op(
        "Fill sessions without a lead now (the worker does this hourly)",
        None,
        200,
        s.ItemList[s.RotaLineOut],
    ),
    "get_unavailable": Op("A facilitator's unavailable days", None, 200, s.UnavailableOut),
    "put_unavailable": Op(
        "Replace a facilitator's unavailable days (from today on)",
        s.UnavailableIn,
        200,
        s.UnavailableOut,
    ),
    "add_member": Op("Add a member", s.MemberIn, 201, s.MemberOut, "409"),
    "list_members": Op("List a group's members", None, 200, s.ItemList[s.MemberOut]),
    "create_series": Op("Create a recurring series", s.SeriesIn, 201, s.SeriesOut),
    "list_series": Op("List a group's series", None, 200, s.ItemList[s.SeriesOut]),
    "list_sessions": Op("List sessions", None, 200, s.SessionList, "422", _SESSION_RANGE),
    "update_series": Op(
        "Edit a series (re-plans future sessions)", s.SeriesPatch, 200, s.SeriesOut
    ),
    "get_session": Op("Get a session", None, 200, s.SessionOut),
    "update_session": Op(
        "Reschedule, resize or cancel one session", s.SessionPatch, 200, s.SessionOut, "409"
    ),
    "set_facilitators": Op(
        "Assign lead and co-facilitator", s.FacilitatorsIn, 200, s.SessionOut, "409"
    ),
    "create_booking": Op(
        "Book a place (or join the waitlist)", s.BookingIn, 201, s.BookingOut, "409"
    ),
    "list_bookings": Op("A session's bookings and waitlist", None, 200, s.ItemList[s.AttendeeOut]),
    "create_join_link": Op(
        "Issue a member's personal join link", s.JoinLinkIn, 201, s.JoinLinkOut, "403 409"
    ),
    "invite_group": Op(
        "Invite the group's parents without a place (email with accept / decline)",
        None,
        202,
        s.InvitationsOut,
        "409",
    ),
    "request_swap": Op(
        "Ask another facilitator to take one's place (they get a one-click link)",
        s.SwapRequestIn,
        202,
        None,
        "409",
    ),
    "list_outbox": Op(
        "Messages by status",
        None,
        200,
        s.ItemList[s.OutboxRowOut],
        "422",
        (("status", "pending, sending, sent, failed (default) or skipped"),),
    ),
    "retry_outbox": Op("Send a failed message again", None, 202),
    "get_booking": Op("Get a booking", None, 200, s.BookingOut),
    "cancel_booking": Op(
        "Cancel a booking (promotes the waitlist)", None, 200, s.BookingOut, "409"
    ),
}

_ERROR_TEXT = {
    "400": "Malformed JSON",
    "401": "Missing or invalid API key",
    "403": "Not allowed",
    "404": "No such resource",
    "409": "Conflicts with the current state",
    "413": "Body larger than 64 KiB",
    "415": "Body is not JSON",
    "422": "Invalid values",
}


@dataclass(frozen=True)
class Link:
    """A route people reach by a link (pages, feeds, the join page's calls)."""

    summary: str
    responses: dict[str, str]
    # The content type of the success response, if it has a body.
    content: str | None = None


_HTML = "text/html"
_CALENDAR = "text/calendar"
_NOT_LINK = {"404": "Unknown or revoked link", "410": "Expired link"}

# The link routes, by route name (feeds, member, handoff and pages modules).
LINKS: dict[str, Link] = {
    "member_feed": Link(
        "A member's private calendar feed (ETag, 304)",
        {"200": "OK", "304": "Not modified", "404": "Unknown or revoked link"},
        _CALENDAR,
    ),
    "group_feed": Link(
        "A public group's calendar feed (ETag, 304)",
        {"200": "OK", "304": "Not modified", "404": "No public calendar for this group"},
        _CALENDAR,
    ),
    "member_page": Link("A member's 'my drop-ins' page", {"200": "OK", **_NOT_LINK}, _HTML),
    "member_book": Link(
        "Book a place from the member's page (then back to the page)",
        {"303": "Back to the page, saying what happened", **_NOT_LINK, "409": "Not open"},
    ),
    "member_cancel": Link(
        "Cancel a place from the member's page (then back to the page)",
        {"303": "Back to the page, saying what happened", **_NOT_LINK, "409": "Not open"},
    ),
    "rsvp": Link(
        "An RSVP link from an email: a page that confirms itself with a POST",
        {"200": "OK", **_NOT_LINK},
        _HTML,
    ),
    "rsvp_apply": Link(
        "Apply an RSVP link: book (accept) or cancel (decline) the place",
        {"200": "Done", **_NOT_LINK, "409": "Not open"},
        _HTML,
    ),
    "handoff": Link(
        "A facilitator's confirm / can't-make-it link: a page that confirms itself",
        {"200": "OK", **_NOT_LINK},
        _HTML,
    ),
    "handoff_apply": Link("Confirm, or say one can't make it", {"200": "Done", **_NOT_LINK}, _HTML),
    "swap": Link(
        "A swap offer from a colleague: a page that confirms itself",
        {"200": "OK", **_NOT_LINK},
        _HTML,
    ),
    "swap_apply": Link("Take the colleague's place", {"200": "Done", **_NOT_LINK}, _HTML),
    "join": Link(
        "A member's join link (HTML page)",
        {"200": "Join page", "404": "Invalid link", "410": "Expired link"},
        _HTML,
    ),
    "join_info": Link(
        "What the join page shows: session, first name, role, status, next session",
        {
            "200": (
                "{status: open|too_early|ended|cancelled|removed|no_place, session_id, "
                "title, starts_at, ends_at, opens_at, seconds_until_open, timezone, "
                "when, display_name, role, discreet, next_session, page_url, feed_url}"
            ),
            "404": "Not a join link",
            "410": "Expired link",
        },
    ),
    "join_room_token": Link(
        "Exchange a join link for a room token (JWT, <= 15 min; docs/signaling.md)",
        {
            "200": "{token, expires_in, role, session_id, ws_url}",
            "403": "No place (any more): not_booked, or removed by a facilitator",
            "404": "Not a join link",
            "410": "Session over or cancelled",
            "425": "Too early: the room opens 15 minutes before",
        },
    ),
    "join_leave": Link(
        "Leave the room by the join link (the page's Leave while its WebSocket is down); "
        "no grace window",
        {"204": "Left, or was not in the room", "404": "Not a join link", "410": "Expired link"},
    ),
}

# Routes the application itself adds (dropin/web/app.py, signaling/ws.py), by path.
OTHERS: dict[str, dict[str, Any]] = {
    "/healthz": {
        "get": {
            "summary": "Liveness and database check",
            "responses": {
                "200": {"description": "OK"},
                "503": {"description": "Database unreachable"},
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This description",
            "responses": {"200": {"description": "OK"}},
        }
    },
    "/rooms/ws": {
        "get": {
            "summary": "The room WebSocket (protocol 1; upgrade only; docs/signaling.md)",
            "responses": {
                "101": {"description": "Switching protocols: send hello with a room token"},
            },
        }
    },
}


def route_tables() -> list[BaseRoute]:
    """The routes this description is derived from, mounted as ``create_app`` mounts them."""
    return [
        Mount(API_PREFIX, routes=api.routes),
        *feeds.routes,
        *member.routes,
        *handoff.routes,
        *pages.routes,
    ]


def served(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, Route]]:
    """(path as served, lower-case method, route) for every HTTP route, mounts walked."""
    for route in routes:
        if isinstance(route, Mount):
            yield from served(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield prefix + route.path, method.lower(), route


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer" if convertor == "int" else "string"},
        }
        for name, convertor in _PARAM.findall(path)
    ]


def api_errors(path: str, op: Op) -> list[str]:
    """Every error status of an API operation: those of its kind, then its own."""
    codes = {"401", *op.errors.split()}
    if _PARAM.search(path):
        codes.add("404")
    if op.request is not None:
        codes |= {"400", "413", "415", "422"}
    return sorted(codes)


@cache
def openapi_spec(server_url: str) -> dict[str, Any]:
    """The whole document (cached per server URL)."""
    models: list[type[BaseModel]] = [s.ErrorOut]
    for op in OPERATIONS.values():
        models += [m for m in (op.request, op.response) if m is not None]
    refs, top = models_json_schema(
        [
            (m, "validation" if m.__name__.endswith(("In", "Patch")) else "serialization")
            for m in dict.fromkeys(models)
        ],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for path, method, route in served(route_tables()):
        api_call = path.startswith(API_PREFIX + "/")
        described = OPERATIONS.get(route.name) if api_call else LINKS.get(route.name)
        if described is None:
            raise LookupError(f"{method.upper()} {path} ({route.name}) is not described here")
        if isinstance(described, Op):
            operation = _api_operation(refs, path, described)
        else:
            operation = _link_operation(path, described)
        paths.setdefault(openapi_path(path), {})[method] = operation
    for path, item in OTHERS.items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dropin",
            "version": "1",
            "description": "Schedules and hosts small monthly drop-ins for NVR parents. "
            'Errors are {"error": code, "detail": ...}.',
        },
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "organizerKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "dropin admin create-key NAME",
                }
            },
        },
    }


def _api_operation(refs: Any, path: str, op: Op) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": op.summary,
        "security": [{"organizerKey": []}],
        "responses": {
            str(op.status): _content(refs, op.response, "serialization", "OK"),
            **{
                code: _content(refs, s.ErrorOut, "serialization", _ERROR_TEXT[code])
                for code in api_errors(path, op)
            },
        },
        "parameters": _path_parameters(path)
        + [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in op.query
        ],
    }
    if op.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
        }
    return operation


def _link_operation(path: str, link: Link) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, text in sorted(link.responses.items()):
        responses[code] = {"description": text}
        if link.content is not None and code == "200":
            responses[code]["content"] = {link.content: {}}
    return {"summary": link.summary, "parameters": _path_parameters(path), "responses": responses}


def _content(refs: Any, model: type[BaseModel] | None, mode: str, text: str) -> dict[str, Any]:
    if model is None:
        return {"description": text}
    return {"description": text, "content": {"application/json": {"schema": refs[(model, mode)]}}}
