"""Every personal link resolves through the real app's router to the route of its name.

Links are built from :mod:`dropin.link_paths` (services) and by route name (pages, the API);
the routes are built from the same declarations. These tests close the loop: for each kind of
link, the URL a builder hands out is what ``app.router.url_path_for(name, ...)`` gives, and
requesting it with a genuine token does not 404.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.routing import Match

from dropin import link_paths
from dropin.config import Settings
from dropin.services import handoff, links, member_page
from dropin.services.feeds import LinkMaker
from dropin.web.app import create_app
from tests.helpers import Api


@pytest.fixture
def app(settings: Settings) -> Starlette:
    """The real application's routes (no lifespan needed to resolve paths)."""
    return create_app(settings)


def resolve(app: Starlette, path: str, method: str = "GET") -> tuple[str, dict[str, Any]]:
    """The name and parameters of the app's route that serves ``path`` (as the router would)."""
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    for route in app.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route.name, child["path_params"]  # type: ignore[attr-defined]
    raise AssertionError(f"no route serves {method} {path}")


def test_every_link_name_is_a_route_of_the_app(app: Starlette) -> None:
    for link in link_paths.LINKS:
        assert str(app.router.url_path_for(link.name, token="t0k.en")) == link.path_for(
            token="t0k.en"
        ), link.name
        assert resolve(app, link.path_for(token="t0k.en")) == (link.name, {"token": "t0k.en"})


def test_link_url_is_public_url_plus_path() -> None:
    assert link_paths.JOIN.url("https://drop.example", token="abc") == "https://drop.example/j/abc"
    assert link_paths.MEMBER_FEED.path_for(token="abc") == "/feeds/abc.ics"


async def _setup(api: Api) -> dict[str, Any]:
    group = await api.group(public=True)
    await api.series(group["id"], first_start="2028-01-01T19:30:00")
    [session] = await api.sessions(group["id"], **{"from": "2028-03-01", "to": "2028-03-31"})
    lead = await api.member(group["id"], "Lee", role="facilitator")
    colleague = await api.member(group["id"], "Kim", role="facilitator")
    parent = await api.member(group["id"], "Ann")
    await api.ok(
        "PUT",
        f"/api/v1/sessions/{session['id']}/facilitators",
        json={"lead_member_id": lead["id"], "co_member_id": None},
    )
    await api.book(session["id"], parent["id"])
    return {"group": group, "session": session, "lead": lead, "kim": colleague, "ann": parent}


async def test_each_built_link_resolves_to_its_route_and_answers(api: Api, app: Starlette) -> None:
    c = await _setup(api)
    session, ann, lee = c["session"], c["ann"], c["lead"]
    ends = datetime.fromisoformat(session["ends_at"].replace("Z", "+00:00"))
    maker = LinkMaker(api.settings.secret_key, api.settings.public_url)
    join = await api.ok(
        "POST", f"/api/v1/sessions/{session['id']}/join-links", 201, json={"member_id": ann["id"]}
    )
    built = {
        "join": join["url"],
        "member_page": ann["page_url"],
        "member_feed": ann["feed_url"],
        "group_feed": c["group"]["feed_url"],
        "rsvp": member_page.rsvp_url(maker, session["id"], ann["id"], "accept", ends),
        "handoff": handoff.handoff_url(maker, session["id"], lee["id"], "confirm", ends),
        "swap": handoff.swap_url(maker, session["id"], lee["id"], c["kim"]["id"], ends),
    }
    assert built["join"] == maker.join(session["id"], ann["id"], ends)
    assert built["join"] == links.join_url(
        api.settings.secret_key, api.settings.public_url, session["id"], ann["id"], ends
    )
    for name, url in built.items():
        assert url.startswith(api.settings.public_url + "/"), (name, url)
        path = urlsplit(url).path
        found, params = resolve(app, path)
        assert found == name, (name, url)
        assert str(app.router.url_path_for(name, **params)) == path
        response = await api.request("GET", path)
        assert response.status_code == 200, (name, response.status_code, response.text[:200])


async def test_pages_link_to_their_routes_by_name(api: Api, app: Starlette) -> None:
    c = await _setup(api)
    session, ann, lee = c["session"], c["ann"], c["lead"]
    ends = datetime.fromisoformat(session["ends_at"].replace("Z", "+00:00"))
    maker = LinkMaker(api.settings.secret_key, api.settings.public_url)
    page_path = urlsplit(ann["page_url"]).path
    token = page_path.rsplit("/", 1)[1]

    page = (await api.request("GET", page_path)).text
    actions = set(re.findall(r'action="([^"]+)"', page))
    cancel = str(app.router.url_path_for("member_cancel", token=token, session_id=session["id"]))
    assert cancel in {html.unescape(a) for a in actions}
    later = await api.sessions(c["group"]["id"], **{"from": "2028-04-01", "to": "2028-04-30"})
    book = str(app.router.url_path_for("member_book", token=token, session_id=later[0]["id"]))
    assert book in {html.unescape(a) for a in actions}
    response = await api.request("POST", book, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == page_path + "?done=booked"

    for name, url in (
        ("rsvp_apply", member_page.rsvp_url(maker, session["id"], ann["id"], "decline", ends)),
        ("handoff_apply", handoff.handoff_url(maker, session["id"], lee["id"], "confirm", ends)),
        ("swap_apply", handoff.swap_url(maker, session["id"], lee["id"], c["kim"]["id"], ends)),
    ):
        path = urlsplit(url).path
        body = (await api.request("GET", path)).text
        [action] = re.findall(r'action="([^"]+)"', body)
        assert html.unescape(action) == path
        assert resolve(app, path, "POST")[0] == name


async def test_expired_links_still_resolve_but_answer_gone(api: Api, app: Starlette) -> None:
    c = await _setup(api)
    maker = LinkMaker(api.settings.secret_key, api.settings.public_url)
    past = datetime.now(UTC) - timedelta(days=1)
    url = handoff.swap_url(maker, c["session"]["id"], c["lead"]["id"], c["kim"]["id"], past)
    assert resolve(app, urlsplit(url).path)[0] == "swap"
    assert (await api.request("GET", urlsplit(url).path)).status_code == 410
