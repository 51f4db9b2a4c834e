"""The ASGI entry point for ``dropin serve`` (and any ASGI server): settings from the env."""

from __future__ import annotations

from dropin.config import Settings
from dropin.web.app import create_app

app = create_app(Settings.from_env())
