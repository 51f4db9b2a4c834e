"""The OpenAPI description against what it describes: the app's routes, the handlers, the
pydantic models and docs/api.md.

:func:`spec_problems` is the checker; the tests at the bottom show it reports a path, a status
code or a field taken out of a copy of the spec, so a passing run means something.
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from dropin.config import Settings
from dropin.web import schemas
from dropin.web.app import create_app
from dropin.web.openapi import openapi_spec
from tests.helpers import Api

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
API = "/api/v1"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_]+)?}")


# What the app serves -----------------------------------------------------------------------


def routes_of(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, BaseRoute]]:
    """(OpenAPI path, lower-case method, route) for every HTTP and WebSocket route; mounted
    routers are walked, mounted apps (static files) are not routes."""
    for route in routes:
        if isinstance(route, Mount):
            yield from routes_of(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in (route.methods or set()) - {"HEAD"}:
                yield _PARAM.sub(r"{\1}", prefix + route.path), method.lower(), route
        elif isinstance(route, WebSocketRoute):  # documented as the GET that upgrades
            yield _PARAM.sub(r"{\1}", prefix + route.path), "get", route


# What a handler can answer, read from its code ---------------------------------------------

# Response builders: (index of the status argument, its keyword, the default status).
_BUILDERS = {
    "model_response": (1, "status", 200),
    "json_response": (1, "status", 200),
    "page": (2, "status", 200),
    "Response": (1, "status_code", 200),
    "HTMLResponse": (1, "status_code", 200),
    "RedirectResponse": (1, "status_code", 307),
    "_items": (99, "", 200),
}
# Error responses carry the error's own status: those come from docs/api.md and the rules.
_ERROR_BUILDERS = {"error_page"}


class HandlerFacts:
    def __init__(self) -> None:
        self.statuses: set[int] = set()
        self.parsed: set[str] = set()  # request models: parse(request, schemas.X)
        self.models: set[str] = set()  # every schemas.X the handler (or a helper) names


def handler_facts(endpoint: Callable[..., Any]) -> HandlerFacts:
    facts = HandlerFacts()
    _read(endpoint, facts, set())
    return facts


def _read(fn: Callable[..., Any], facts: HandlerFacts, seen: set[str]) -> None:
    key = f"{fn.__module__}.{fn.__qualname__}"
    if key in seen:
        return
    seen.add(key)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "schemas"
        ):
            facts.models.add(node.attr)
        if not isinstance(node, ast.Call):
            continue
        # Builders and helpers are called by plain name (``links.page(...)`` is no page).
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name in _BUILDERS:
            index, keyword, default = _BUILDERS[name]
            given = [k.value for k in node.keywords if k.arg == keyword]
            given += node.args[index : index + 1]
            if not given:
                facts.statuses.add(default)
            elif isinstance(given[0], ast.Constant) and isinstance(given[0].value, int):
                facts.statuses.add(given[0].value)
        elif name == "parse" and len(node.args) == 2:
            model = node.args[1]
            if isinstance(model, ast.Attribute):
                facts.parsed.add(model.attr)
        if name and name not in _ERROR_BUILDERS:
            helper = fn.__globals__.get(name)
            if inspect.isfunction(helper) and helper.__module__.startswith("dropin.web"):
                _read(helper, facts, seen)


# What docs/api.md promises ----------------------------------------------------------------

_MENTION = re.compile(
    r"`(?P<methods>(?:(?:GET|POST|PUT|PATCH|DELETE)`?/`?)*(?:GET|POST|PUT|PATCH|DELETE))"
    r" (?P<path>/[^`\s]+)`"
)
_STATUS = re.compile(
    r"→ (\d{3})\b|\b(\d{3}) `|\((\d{3})[;,)]|\b(\d{3}) or (\d{3})\b|\b(\d{3}) if\b"
)


def docs_statuses(text: str) -> dict[tuple[str, str], set[str]]:
    """(method, path as written) → statuses docs/api.md gives for it: each status belongs to
    the endpoint last named before it in the same paragraph."""
    found: dict[tuple[str, str], set[str]] = {}
    for paragraph in re.split(r"\n\s*\n", text):
        current: list[tuple[str, str]] = []
        events = sorted(
            [(m.start(), "mention", m) for m in _MENTION.finditer(paragraph)]
            + [(m.start(), "status", m) for m in _STATUS.finditer(paragraph)],
            key=lambda e: e[0],
        )
        for _, kind, match in events:
            if kind == "mention":
                path = match["path"].split("?")[0]
                current = [(m.lower(), path) for m in re.findall("|".join(METHODS), match[1])]
                for key in current:
                    found.setdefault(key, set())
            else:
                for key in current:
                    found[key] |= {code for code in match.groups() if code}
    return found


def _shape(path: str) -> str:
    return re.sub(r"{[^}]*}|<[^>]*>", "{}", path)


# The checker -------------------------------------------------------------------------------


def spec_problems(spec: dict[str, Any], app: Starlette, docs: str) -> list[str]:
    """Everything the description misses or invents, as sentences (empty: all is well)."""
    problems: list[str] = []
    paths: dict[str, dict[str, Any]] = spec["paths"]
    served = {(path, method): route for path, method, route in routes_of(list(app.routes))}
    for path, method in sorted(served):
        if method not in paths.get(path, {}):
            problems.append(f"{method.upper()} {path} is served but not described")
    for path, item in sorted(paths.items()):
        for method in item:
            if (path, method) not in served:
                problems.append(f"{method.upper()} {path} is described but not served")
    by_shape = {(m, _shape(p)): (p, m) for p, m in served}
    for (method, written), codes in sorted(docs_statuses(docs).items()):
        if "..." in written:
            continue
        key = by_shape.get((method, _shape(written))) or by_shape.get(
            (method, _shape(API + written))
        )
        if key is None:
            problems.append(f"docs/api.md names {method.upper()} {written}, which is not served")
            continue
        missing = codes - set(paths.get(key[0], {}).get(method, {}).get("responses", {}))
        if missing and method in paths.get(key[0], {}):
            problems.append(
                f"{method.upper()} {key[0]}: docs/api.md gives {sorted(missing)}, "
                "the description does not"
            )
    for (path, method), route in sorted(served.items()):
        operation = paths.get(path, {}).get(method)
        if operation is None or not isinstance(route, Route):
            continue
        problems += _operation_problems(spec, path, method, route, operation)
    return problems


def _operation_problems(
    spec: dict[str, Any], path: str, method: str, route: Route, operation: dict[str, Any]
) -> list[str]:
    where = f"{method.upper()} {path}"
    facts = handler_facts(route.endpoint)
    responses = set(operation.get("responses", {}))
    expected = {str(code) for code in facts.statuses}
    if path.startswith(API + "/"):
        expected.add("401")  # every API call needs a key
    if "{" in path:
        expected.add("404")  # a malformed id or an unknown link
    if facts.parsed:
        expected |= {"400", "413", "415", "422"}  # a JSON body: malformed, large, not JSON
    problems = [f"{where}: status {code} is not described" for code in sorted(expected - responses)]
    declared = sorted(operation.get("parameters", []), key=lambda p: p["name"])
    wanted = sorted(_PARAM.findall(path))
    if [p["name"] for p in declared if p["in"] == "path"] != wanted:
        problems.append(f"{where}: path parameters are not {wanted}")
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    request = _ref_name(body.get("schema", {}))
    if facts.parsed and request not in facts.parsed:
        problems.append(f"{where}: the request body is {request}, the handler reads {facts.parsed}")
    if not facts.parsed and request is not None:
        problems.append(f"{where}: a request body is described, the handler reads none")
    success = [
        r for code, r in operation.get("responses", {}).items() if code.startswith(("2", "3"))
    ]
    reached: set[str] = set()
    for response in success:
        for content in response.get("content", {}).values():
            reached |= _reachable(spec, content.get("schema", {}))
    if request is not None:
        reached |= _reachable(spec, body["schema"])
    for name in sorted(facts.models - facts.parsed - {"ItemList", "ErrorOut"}):
        if _is_model(name) and name not in reached:
            problems.append(f"{where}: the handler answers with {name}, not described")
    for name in sorted(reached):
        problems += _field_problems(spec, name)
    return problems


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[1] if isinstance(ref, str) else None


def _reachable(spec: dict[str, Any], schema: Any) -> set[str]:
    """Names of the component schemas ``schema`` refers to, transitively."""
    found: set[str] = set()
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            name = _ref_name(node)
            if name is not None and name not in found:
                found.add(name)
                todo.append(spec["components"]["schemas"].get(name, {}))
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    return found


def _is_model(name: str) -> bool:
    found = getattr(schemas, name, None)
    return isinstance(found, type) and issubclass(found, BaseModel)


@cache
def _fields(name: str) -> frozenset[str]:
    model = getattr(schemas, name)
    return frozenset(f.alias or n for n, f in model.model_fields.items())


def _field_problems(spec: dict[str, Any], name: str) -> list[str]:
    component = spec["components"]["schemas"].get(name)
    if component is None:
        return [f"schema {name} is referred to but missing"]
    if not _is_model(name):
        return []
    missing = _fields(name) - set(component.get("properties", {}))
    return [f"schema {name} lacks field {field}" for field in sorted(missing)]


# Tests -------------------------------------------------------------------------------------


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def spec(settings: Settings) -> dict[str, Any]:
    return copy.deepcopy(openapi_spec(settings.public_url))


def _docs() -> str:
    return DOCS.read_text(encoding="utf-8")


def test_the_description_matches_routes_handlers_models_and_docs(
    spec: dict[str, Any], app: Starlette
) -> None:
    assert spec_problems(spec, app, _docs()) == []


def test_every_api_route_has_its_success_status_and_auth(spec: dict[str, Any]) -> None:
    # Spot checks that the derived facts are the ones expected (the checker relies on them).
    assert handler_facts(create_app.__globals__["api"].create_group).statuses == {201}
    assert (
        "202" in spec["paths"]["/api/v1/sessions/{session_id}/swap-requests"]["post"]["responses"]
    )
    member_book = spec["paths"]["/m/{token}/sessions/{session_id}/book"]["post"]
    assert set(member_book["responses"]) >= {"303", "404"}
    assert "204" in spec["paths"]["/j/{token}/leave"]["post"]["responses"]


def test_docs_statuses_are_read_per_endpoint() -> None:
    found = docs_statuses(_docs())
    assert found[("post", "/j/<token>/leave")] == {"204", "404", "410"}
    assert found[("patch", "/api/v1/sessions/{session_id}")] >= {"409", "422"}
    assert found[("post", "/api/v1/sessions/{session_id}/join-links")] >= {"201", "403"}


def test_checker_reports_a_missing_path(spec: dict[str, Any], app: Starlette) -> None:
    del spec["paths"]["/api/v1/bookings/{booking_id}"]
    problems = spec_problems(spec, app, _docs())
    assert "GET /api/v1/bookings/{booking_id} is served but not described" in problems
    assert "DELETE /api/v1/bookings/{booking_id} is served but not described" in problems


def test_checker_reports_a_missing_link_route(spec: dict[str, Any], app: Starlette) -> None:
    del spec["paths"]["/s/{token}"]["post"]
    assert spec_problems(spec, app, _docs()) == ["POST /s/{token} is served but not described"]


def test_checker_reports_an_invented_path(spec: dict[str, Any], app: Starlette) -> None:
    spec["paths"]["/api/v1/groups/{group_id}/archive"] = {"post": {"responses": {}}}
    problems = spec_problems(spec, app, _docs())
    assert problems == ["POST /api/v1/groups/{group_id}/archive is described but not served"]


def test_checker_reports_a_missing_status(spec: dict[str, Any], app: Starlette) -> None:
    del spec["paths"]["/api/v1/sessions/{session_id}"]["patch"]["responses"]["409"]
    del spec["paths"]["/api/v1/groups"]["post"]["responses"]["201"]
    del spec["paths"]["/api/v1/groups/{group_id}"]["get"]["responses"]["401"]
    del spec["paths"]["/api/v1/groups/{group_id}/members"]["post"]["responses"]["415"]
    problems = spec_problems(spec, app, _docs())
    assert "PATCH /api/v1/sessions/{session_id}: docs/api.md gives ['409'], " in "".join(
        p[: len("PATCH /api/v1/sessions/{session_id}: docs/api.md gives ['409'], ")]
        for p in problems
    )
    assert "POST /api/v1/groups: status 201 is not described" in problems
    assert "GET /api/v1/groups/{group_id}: status 401 is not described" in problems
    assert "POST /api/v1/groups/{group_id}/members: status 415 is not described" in problems


def test_checker_reports_a_missing_field(spec: dict[str, Any], app: Starlette) -> None:
    del spec["components"]["schemas"]["SessionOut"]["properties"]["capacity"]
    del spec["components"]["schemas"]["BookingIn"]["properties"]["member_id"]
    problems = set(spec_problems(spec, app, _docs()))
    assert problems == {
        "schema SessionOut lacks field capacity",
        "schema BookingIn lacks field member_id",
    }


def test_checker_reports_a_wrong_model(spec: dict[str, Any], app: Starlette) -> None:
    operation = spec["paths"]["/api/v1/bookings/{booking_id}"]["get"]
    operation["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/SessionOut"
    }
    problems = spec_problems(spec, app, _docs())
    assert "GET /api/v1/bookings/{booking_id}: the handler answers with BookingOut, " in "".join(
        problems
    )


def test_checker_reports_docs_naming_a_route_that_is_not_served(
    spec: dict[str, Any], app: Starlette
) -> None:
    docs = _docs() + "\n\n`DELETE /api/v1/series/{series_id}` → 204.\n"
    problems = spec_problems(spec, app, docs)
    assert problems == ["docs/api.md names DELETE /api/v1/series/{series_id}, which is not served"]


@pytest.mark.asyncio
async def test_the_served_description_is_the_checked_one(api: Api, app: Starlette) -> None:
    served = await api.ok("GET", "/openapi.json")
    assert served == openapi_spec(api.settings.public_url)
    assert spec_problems(served, app, _docs()) == []
