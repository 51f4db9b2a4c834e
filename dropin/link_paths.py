"""Where personal links point: each public link route's name and path, written once.

``dropin/web`` builds its Starlette routes from these (``JOIN.route(endpoint, ...)``), and
services, workers and the web build the URLs they hand out from them by route name, with
Starlette's ``url_path_for`` (``JOIN.url(public_url, token=...)``). A mailed link and the route
that answers it cannot drift apart; ``tests/web/test_link_paths.py`` checks every name against
the real app's router.

This module sits outside ``dropin.web`` so that services can build links without importing
the web layer. Paths of routes that nothing outside the web builds (the join page's own calls,
the member page's buttons) are written beside their handlers and derive from these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from starlette.routing import Route


def _not_served(*_: Any) -> None:  # pragma: no cover - a template route only builds paths
    raise RuntimeError("a LinkPath template route is never served")


@dataclass(frozen=True)
class LinkPath:
    """A public link route: its Starlette route name and its path template."""

    name: str
    path: str

    def route(
        self, endpoint: Callable[..., Any], *, methods: list[str], name: str | None = None
    ) -> Route:
        """The Starlette route for this link; ``name`` names a second method's route."""
        return Route(self.path, endpoint, methods=methods, name=name or self.name)

    @cached_property
    def _template(self) -> Route:
        return Route(self.path, _not_served, name=self.name)

    def path_for(self, **params: str) -> str:
        """The path of this link for ``params`` (``url_path_for`` on the route's template)."""
        token = params.get("token")
        if params.keys() == {"token"} and token and "/" not in token:
            # A feed holds hundreds of links: put the token where url_path_for put a marker
            # once, rather than matching the route again for each (same result, tested).
            before, after = self._around_token
            return before + token + after
        return str(self._template.url_path_for(self.name, **params))

    @cached_property
    def _around_token(self) -> tuple[str, str]:
        marker = "\x00"
        before, _, after = str(self._template.url_path_for(self.name, token=marker)).partition(
            marker
        )
        return before, after

    def url(self, public_url: str, **params: str) -> str:
        """The absolute URL handed out: ``public_url`` plus :meth:`path_for`."""
        return public_url + self.path_for(**params)


JOIN = LinkPath("join", "/j/{token}")
MEMBER_PAGE = LinkPath("member_page", "/m/{token}")
MEMBER_FEED = LinkPath("member_feed", "/feeds/{token}.ics")
RSVP = LinkPath("rsvp", "/r/{token}")
HANDOFF = LinkPath("handoff", "/h/{token}")
SWAP = LinkPath("swap", "/s/{token}")

# Every link built outside dropin.web (one ``token`` parameter each).
LINKS = (JOIN, MEMBER_PAGE, MEMBER_FEED, RSVP, HANDOFF, SWAP)
