"""The baseline: a trivial Starlette app served exactly like dropin (same uvicorn, same flags)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def ok(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def echo(request: Request) -> Response:
    return JSONResponse(await request.json(), status_code=201)


app = Starlette(routes=[Route("/healthz", ok), Route("/echo", echo, methods=["POST"])])
