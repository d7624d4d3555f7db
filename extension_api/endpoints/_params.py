"""Reading path, query and body parameters with a clear 4xx when they are wrong."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from core.errors import NotFound
from extension_api.errors import ApiError

_MAX_ID = 2**63 - 1
MAX_JSON_BODY = 1024 * 1024


def path_id(request: Request, name: str = "id") -> int:
    value = int(request.path_params[name])
    if value > _MAX_ID:
        raise NotFound(f"no object {value}")
    return value


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be between {low} and {high}")
    return value


async def json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise ApiError(413, "too_large", "request body too large")
    try:
        value = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    return value
