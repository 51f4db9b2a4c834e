"""The error tree services raise; :mod:`dropin.web.errors` maps it to HTTP in one place.

Every error has a stable machine ``code`` (what clients branch on), an HTTP ``status`` and a
human ``detail``. Details never carry names or email addresses.
"""

from __future__ import annotations

from typing import Any


class DropinError(Exception):
    """Base of every expected failure of a use case."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: Any = None, *, code: str | None = None) -> None:
        self.detail = detail if detail is not None else self.code.replace("_", " ")
        if code is not None:
            self.code = code
        super().__init__(f"{self.code}: {self.detail}")


class BadRequest(DropinError):
    """The request cannot be read at all (malformed JSON, wrong content type)."""


class Unauthorized(DropinError):
    """No credentials, or credentials that are not valid."""

    status = 401
    code = "unauthorized"


class Forbidden(DropinError):
    """Valid credentials, but this action is not allowed for them or for this member."""

    status = 403
    code = "forbidden"


class NotFound(DropinError):
    """No such resource (or not one the caller may know about)."""

    status = 404
    code = "not_found"


class Conflict(DropinError):
    """The request is well-formed but clashes with the current state."""

    status = 409
    code = "conflict"


class Gone(DropinError):
    """The resource existed but is no longer usable (an expired link)."""

    status = 410
    code = "gone"


class Invalid(DropinError):
    """The request is readable but its values are not acceptable."""

    status = 422
    code = "invalid"
