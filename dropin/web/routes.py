"""URLs by route name on the web side: every page link, form action, redirect and URL in the
JSON is built from a route's name (Starlette's ``url_path_for``), never from a path written a
second time. Personal links' paths and names are declared once in :mod:`dropin.link_paths`.
"""

from __future__ import annotations

from starlette.requests import Request

from dropin.web.state import app_state


def path_for(request: Request, name: str, **params: str) -> str:
    """The path of the app's route ``name`` with ``params``."""
    return str(request.app.url_path_for(name, **params))


def public_url_for(request: Request, name: str, **params: str) -> str:
    """The absolute URL handed out for route ``name``: ``DROPIN_PUBLIC_URL`` plus its path."""
    return app_state(request).settings.public_url + path_for(request, name, **params)
