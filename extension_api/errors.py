"""Every error leaves the API as ``{"error": {"code", "message"}}`` with a proper status."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.errors import (
    AddressTaken,
    AlreadyConfirmed,
    ConfirmationExpired,
    ConfirmationInvalid,
    ConfirmationRecentlySent,
    CoreError,
    InvalidInput,
    MessageTooLarge,
    NotFound,
    RelayFailed,
    RelayNotConfigured,
    SenderNotAllowed,
    StorageUnavailable,
)

log = logging.getLogger(__name__)

_STATUS: dict[type[CoreError], int] = {
    NotFound: 404,
    InvalidInput: 422,
    SenderNotAllowed: 403,
    MessageTooLarge: 413,
    StorageUnavailable: 503,
    AddressTaken: 409,
    AlreadyConfirmed: 409,
    ConfirmationRecentlySent: 429,
    ConfirmationInvalid: 404,
    ConfirmationExpired: 410,
    RelayNotConfigured: 409,  # the server's configuration, not a passing outage
    RelayFailed: 502,
}

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
    415: "unsupported_media_type", 422: "invalid_input", 429: "rate_limited",
}


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


class ApiError(HTTPException):
    """An HTTP error with a stable machine code, raised by endpoints."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.code = code


async def on_core_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CoreError)
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
    headers = {"Retry-After": "30"} if status == 503 else None
    return error_response(status, exc.code, exc.message, headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS = {
    CoreError: on_core_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
