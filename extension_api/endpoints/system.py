"""Health, metrics and the OpenAPI description."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import metrics as counters
from core.errors import StorageUnavailable
from extension_api.auth import runtime_of
from extension_api.openapi import openapi_document
from extension_api.schemas import respond
from extension_api.schemas.account import Health


async def healthz(request: Request) -> Response:
    try:
        async with runtime_of(request).db.read() as session:
            await session.execute(text("SELECT 1"))
    except StorageUnavailable as exc:
        return respond(Health(status="unavailable", database=exc.message), 503)
    return respond(Health(status="ok", database="ok"))


async def metrics(request: Request) -> Response:
    # Every worker's counts under serve --workers N (core.metrics.exposition).
    return Response(counters.exposition(), media_type=counters.CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(runtime_of(request).settings.base_url))
