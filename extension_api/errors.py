"""Every error leaves the API as ``{"error": {"code", "message"}}`` with a proper status."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping

from asyncpg.exceptions import CharacterNotInRepertoireError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.control_characters import NUL, NUL_MESSAGE
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

# 503 codes whose request must not be sent again automatically (no Retry-After): the
# reply went out and only its log failed (core.tickets.replies.ReplySentNotLogged).
_NOT_RETRIED = frozenset({"reply_sent_not_logged"})


class ApiErrorCode(enum.StrEnum):
    """The codes the HTTP adapter answers by itself (core's are ``CoreError.code``, a
    connected inbox's ``core.types.InboxErrorCode``)."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID_INPUT = "invalid_input"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_STREAMS = "too_many_streams"
    NOT_STORED = "not_stored"  # an attachment listed but not stored, or its file gone
    INBOXES_UNAVAILABLE = "inboxes_unavailable"  # no connector runs in this process
    INTERNAL_ERROR = "internal_error"
    ERROR = "error"  # an HTTP status without a code of its own


_HTTP_CODES = {
    400: ApiErrorCode.BAD_REQUEST, 401: ApiErrorCode.UNAUTHORIZED,
    403: ApiErrorCode.FORBIDDEN, 404: ApiErrorCode.NOT_FOUND,
    405: ApiErrorCode.METHOD_NOT_ALLOWED, 406: ApiErrorCode.NOT_ACCEPTABLE,
    409: ApiErrorCode.CONFLICT, 413: ApiErrorCode.TOO_LARGE,
    415: ApiErrorCode.UNSUPPORTED_MEDIA_TYPE, 422: ApiErrorCode.INVALID_INPUT,
    429: ApiErrorCode.RATE_LIMITED,
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
    # A passing outage invites a retry; a reply that already went out must not be resent.
    retry = status == 503 and exc.code not in _NOT_RETRIED
    headers = {"Retry-After": "30"} if retry else None
    return error_response(status, exc.code, exc.message, headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, ApiErrorCode.ERROR)
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


def _nul_refused(exc: BaseException | None) -> bool:
    """PostgreSQL refused a NUL in a text value (asyncpg's CharacterNotInRepertoireError,
    however SQLAlchemy wrapped it)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, CharacterNotInRepertoireError):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False


async def on_unexpected(request: Request, exc: Exception) -> Response:
    if _nul_refused(exc):  # a NUL that no shape check stopped (a query parameter): 422
        named = next((k for k, v in request.query_params.multi_items() if NUL in k + v), "")
        where = f"{named}: " if named else ""
        return error_response(422, ApiErrorCode.INVALID_INPUT, f"{where}{NUL_MESSAGE}")
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, ApiErrorCode.INTERNAL_ERROR, "internal server error")


EXCEPTION_HANDLERS = {
    CoreError: on_core_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
