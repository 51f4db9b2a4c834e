"""The OpenAPI 3.1 description of the JSON API, built from the pydantic schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from dropin.web import schemas as s

# (method, path, summary, request model, success status, response model, error statuses)
OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, int, type[BaseModel] | None, str]] = [
    ("post", "/api/v1/groups", "Create a group", s.GroupIn, 201, s.GroupOut, "400 401 413 415 422"),
    ("get", "/api/v1/groups", "List groups", None, 200, s.ItemList[s.GroupOut], "401"),
    ("get", "/api/v1/groups/{group_id}", "Get a group", None, 200, s.GroupOut, "401 404"),
    (
        "patch",
        "/api/v1/groups/{group_id}",
        "Rename a group or change its settings",
        s.GroupPatch,
        200,
        s.GroupOut,
        "400 401 404 422",
    ),
    (
        "get",
        "/api/v1/members/{member_id}",
        "Get a member (with feed and page links)",
        None,
        200,
        s.MemberOut,
        "401 404",
    ),
    (
        "patch",
        "/api/v1/members/{member_id}",
        "Change a member's name or preferences",
        s.MemberPatch,
        200,
        s.MemberOut,
        "400 401 404 422",
    ),
    (
        "post",
        "/api/v1/members/{member_id}/feed-token",
        "Issue new feed and page links (the old ones stop working)",
        None,
        200,
        s.MemberOut,
        "401 404",
    ),
    ("get", "/api/v1/series/{series_id}", "Get a series", None, 200, s.SeriesOut, "401 404"),
    (
        "get",
        "/api/v1/groups/{group_id}/rota",
        "The facilitator rota (query: days)",
        None,
        200,
        s.ItemList[s.RotaLineOut],
        "401 404 422",
    ),
    (
        "post",
        "/api/v1/groups/{group_id}/rota/run",
        "Fill sessions without a lead now (the worker does this hourly)",
        None,
        200,
        s.ItemList[s.RotaLineOut],
        "401 404",
    ),
    (
        "get",
        "/api/v1/members/{member_id}/unavailable",
        "A facilitator's unavailable days",
        None,
        200,
        s.UnavailableOut,
        "401 404",
    ),
    (
        "put",
        "/api/v1/members/{member_id}/unavailable",
        "Replace a facilitator's unavailable days (from today on)",
        s.UnavailableIn,
        200,
        s.UnavailableOut,
        "400 401 404 422",
    ),
    (
        "post",
        "/api/v1/groups/{group_id}/members",
        "Add a member",
        s.MemberIn,
        201,
        s.MemberOut,
        "400 401 404 409 422",
    ),
    (
        "get",
        "/api/v1/groups/{group_id}/members",
        "List a group's members",
        None,
        200,
        s.ItemList[s.MemberOut],
        "401 404",
    ),
    (
        "post",
        "/api/v1/groups/{group_id}/series",
        "Create a recurring series",
        s.SeriesIn,
        201,
        s.SeriesOut,
        "400 401 404 422",
    ),
    (
        "get",
        "/api/v1/groups/{group_id}/series",
        "List a group's series",
        None,
        200,
        s.ItemList[s.SeriesOut],
        "401 404",
    ),
    (
        "get",
        "/api/v1/groups/{group_id}/sessions",
        "List sessions (query: from, to)",
        None,
        200,
        s.SessionList,
        "401 404 422",
    ),
    (
        "patch",
        "/api/v1/series/{series_id}",
        "Edit a series (re-plans future sessions)",
        s.SeriesPatch,
        200,
        s.SeriesOut,
        "400 401 404 422",
    ),
    ("get", "/api/v1/sessions/{session_id}", "Get a session", None, 200, s.SessionOut, "401 404"),
    (
        "patch",
        "/api/v1/sessions/{session_id}",
        "Reschedule, resize or cancel one session",
        s.SessionPatch,
        200,
        s.SessionOut,
        "400 401 404 409 422",
    ),
    (
        "put",
        "/api/v1/sessions/{session_id}/facilitators",
        "Assign lead and co-facilitator",
        s.FacilitatorsIn,
        200,
        s.SessionOut,
        "400 401 404 409 422",
    ),
    (
        "post",
        "/api/v1/sessions/{session_id}/bookings",
        "Book a place (or join the waitlist)",
        s.BookingIn,
        201,
        s.BookingOut,
        "400 401 404 409 422",
    ),
    (
        "get",
        "/api/v1/sessions/{session_id}/bookings",
        "A session's bookings and waitlist",
        None,
        200,
        s.ItemList[s.AttendeeOut],
        "401 404",
    ),
    (
        "post",
        "/api/v1/sessions/{session_id}/join-links",
        "Issue a member's personal join link",
        s.JoinLinkIn,
        201,
        s.JoinLinkOut,
        "400 401 403 404 409 422",
    ),
    (
        "post",
        "/api/v1/sessions/{session_id}/invitations",
        "Invite the group's parents without a place (email with accept / decline)",
        None,
        202,
        s.InvitationsOut,
        "401 404 409",
    ),
    (
        "post",
        "/api/v1/sessions/{session_id}/swap-requests",
        "Ask another facilitator to take one's place (they get a one-click link)",
        s.SwapRequestIn,
        202,
        None,
        "400 401 404 409 422",
    ),
    (
        "get",
        "/api/v1/outbox",
        "Messages by status (query: status, default failed)",
        None,
        200,
        s.ItemList[s.OutboxRowOut],
        "401 422",
    ),
    (
        "post",
        "/api/v1/outbox/{row_id}/retry",
        "Send a failed message again",
        None,
        202,
        None,
        "401 404",
    ),
    ("get", "/api/v1/bookings/{booking_id}", "Get a booking", None, 200, s.BookingOut, "401 404"),
    (
        "delete",
        "/api/v1/bookings/{booking_id}",
        "Cancel a booking (promotes the waitlist)",
        None,
        200,
        s.BookingOut,
        "401 404 409",
    ),
]

_ERROR_TEXT = {
    "400": "Malformed JSON",
    "401": "Missing or invalid organizer key",
    "403": "Not allowed",
    "404": "No such resource",
    "409": "Conflicts with the current state",
    "413": "Body larger than 64 KiB",
    "415": "Body is not JSON",
    "422": "Invalid values",
}


_LINK_ERRORS: dict[str, Any] = {
    "404": {"description": "Not a join link"},
    "410": {"description": "Expired link"},
}


def _join_link(method: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    """One operation on a join-link route (``/j/{token}...``)."""
    return {
        method: {
            "summary": summary,
            "parameters": [
                {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": responses,
        }
    }


@cache
def openapi_spec(server_url: str) -> dict[str, Any]:
    """The whole document (cached per server URL)."""
    models: list[type[BaseModel]] = [s.ErrorOut]
    for _, _, _, req, _, resp, _ in OPERATIONS:
        models += [m for m in (req, resp) if m is not None]
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema(
        [
            (m, "validation" if m.__name__.endswith(("In", "Patch")) else "serialization")
            for m in unique
        ],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, req, status, resp, errors in OPERATIONS:
        op: dict[str, Any] = {
            "summary": summary,
            "security": [{"organizerKey": []}],
            "responses": {
                str(status): _content(refs, resp, "serialization", "OK"),
                **{
                    code: _content(refs, s.ErrorOut, "serialization", _ERROR_TEXT[code])
                    for code in errors.split()
                },
            },
        }
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
        if path.endswith("/sessions") and method == "get":
            op["parameters"] += [
                {
                    "name": n,
                    "in": "query",
                    "required": False,
                    "description": "ISO date (whole days in the group's zone) or date-time",
                    "schema": {"type": "string"},
                }
                for n in ("from", "to")
            ]
        if req is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(req, "validation")]}},
            }
        paths.setdefault(path, {})[method] = op
    paths["/healthz"] = {
        "get": {
            "summary": "Liveness and database check",
            "responses": {
                "200": {"description": "OK"},
                "503": {"description": "Database unreachable"},
            },
        }
    }
    for path, summary, kind in (
        ("/feeds/{token}.ics", "A member's private calendar feed (ETag, 304)", "text/calendar"),
        ("/feeds/groups/{group_id}.ics", "A public group's calendar feed", "text/calendar"),
        ("/m/{token}", "A member's 'my drop-ins' page", "text/html"),
        ("/r/{token}", "An RSVP link from an email (GET confirms, POST acts)", "text/html"),
    ):
        param = path.split("{")[1].split("}")[0]
        paths[path] = {
            "get": {
                "summary": summary,
                "parameters": [
                    {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "OK", "content": {kind: {}}},
                    "304": {"description": "Not modified (feeds)"},
                    "404": {"description": "Unknown or revoked link"},
                    "410": {"description": "Expired link"},
                },
            }
        }
    paths["/j/{token}/room-token"] = _join_link(
        "post",
        "Exchange a join link for a room token (JWT, <= 15 min; docs/signaling.md)",
        {
            "200": {"description": "{token, expires_in, role, session_id, ws_url}"},
            "403": {"description": "No place (any more): not_booked, or removed by a facilitator"},
            "404": {"description": "Not a join link"},
            "410": {"description": "Session over or cancelled"},
            "425": {"description": "Too early: the room opens 15 minutes before"},
        },
    )
    paths["/j/{token}/leave"] = _join_link(
        "post",
        "Leave the room by the join link (the page's Leave while its WebSocket is down); "
        "no grace window",
        {"204": {"description": "Left, or was not in the room"}, **_LINK_ERRORS},
    )
    paths["/rooms/ws"] = {
        "get": {
            "summary": "The room WebSocket (protocol 1; upgrade only; docs/signaling.md)",
            "responses": {
                "101": {"description": "Switching protocols: send hello with a room token"},
            },
        }
    }
    paths["/j/{token}/info"] = _join_link(
        "get",
        "What the join page shows: session, first name, role, status, next session",
        {
            "200": {
                "description": (
                    "{status: open|too_early|ended|cancelled|removed|no_place, session_id, "
                    "title, starts_at, ends_at, opens_at, seconds_until_open, timezone, "
                    "when, display_name, role, discreet, next_session, page_url, feed_url}"
                )
            },
            **_LINK_ERRORS,
        },
    )
    paths["/j/{token}"] = _join_link(
        "get",
        "A member's join link (HTML page)",
        {
            "200": {"description": "Join page"},
            "404": {"description": "Invalid link"},
            "410": {"description": "Expired link"},
        },
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dropin",
            "version": "1",
            "description": "Schedules and hosts small monthly drop-ins for NVR parents. "
            'Errors are {"error": code, "detail": ...}.',
        },
        "servers": [{"url": server_url}],
        "paths": paths,
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


def _content(refs: Any, model: type[BaseModel] | None, mode: str, text: str) -> dict[str, Any]:
    if model is None:
        return {"description": text}
    return {"description": text, "content": {"application/json": {"schema": refs[(model, mode)]}}}
