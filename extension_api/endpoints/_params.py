"""Reading path and query parameters, and a body as JSON, with a clear 4xx when they are
wrong (a body's fields: ``extension_api.schemas``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from core.errors import NotFound
from extension_api.errors import ApiError, ApiErrorCode

_MAX_ID = 2**63 - 1
MAX_JSON_BODY = 1024 * 1024
MAX_JSON_DEPTH = 32


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
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, f"{name} must be between {low} and {high}")
    return value


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 413 over MAX_JSON_BODY bytes (``BodyLimit`` stops
    reading there), 400 when it is not JSON, not an object, or nested deeper than
    MAX_JSON_DEPTH."""
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise ApiError(413, ApiErrorCode.TOO_LARGE, "request body too large")
    try:
        value = json.loads(body or b"null")
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, "body must be a JSON object")
    if _depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    return value


def _too_deep() -> ApiError:
    return ApiError(400, ApiErrorCode.BAD_REQUEST,
                    f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value``, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest
