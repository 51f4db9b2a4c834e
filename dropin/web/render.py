"""JSON in and out: bounded body reading, pydantic validation, fast responses."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from dropin.errors import BadRequest, DropinError, Invalid

MAX_BODY = 64 * 1024
M = TypeVar("M", bound=BaseModel)


class TooLarge(DropinError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(DropinError):
    status = 415
    code = "unsupported_media_type"


def json_response(
    data: Any, status: int = 200, *, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response; datetimes in UTC are written with ``Z``."""
    body = orjson.dumps(data, option=orjson.OPT_UTC_Z)
    return Response(body, status, headers=headers, media_type="application/json")


def model_response(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status, media_type="application/json")


async def read_body(request: Request) -> bytes:
    """The request body: at most 64 KiB, declared as JSON (or undeclared), not empty."""
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
        raise UnsupportedMediaType("send JSON with Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge(f"the body must be at most {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"the body must be at most {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest("a JSON body is required", code="malformed_json")
    return raw


async def parse(request: Request, model: type[M]) -> M:
    """The body validated against ``model`` straight from JSON.

    Malformed JSON is a 400, anything but an object a 422 ``invalid_body``, field errors a
    422 ``invalid_fields`` listing each field.
    """
    raw = await read_body(request)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise BadRequest("malformed JSON", code="malformed_json") from None
        if any(e["type"] == "model_type" and not e["loc"] for e in errors):
            raise Invalid("the body must be a JSON object", code="invalid_body") from None
        raise Invalid(field_errors(exc), code="invalid_fields") from None


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "a.b", "message": "..."}]``, without echoing input."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_input=False, include_url=False)
    ]
