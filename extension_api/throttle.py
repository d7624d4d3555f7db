"""What one caller may take from the server: requests per second, live streams, body bytes.

- ``RateLimiter``: request budgets per caller. Over budget is ``429`` with
  ``Retry-After``. On SQLite (one process serves the API) a moving window in memory (the
  ``limits`` library); on PostgreSQL one budget for every worker and node on the
  database (``extension_api.shared_budgets``), through :meth:`RateLimiter.attempt`.
- ``StreamSlots``: at most so many Server-Sent-Event streams open per caller.
- ``BodyLimit``: an ASGI middleware capping request bodies while they stream in: a
  declared ``Content-Length`` over the cap is answered ``413`` before a byte of the body
  is read, and a body that grows past it (chunked, or lying) is cut off at the cap.

A *caller* is a user (all their tokens share one budget: minting tokens gains nothing),
or an admin token.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from limits import RateLimitItem, parse_many, storage, strategies
from sse_starlette.sse import EventSourceResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.runtime import Runtime
from extension_api import shared_budgets
from extension_api.errors import ApiError, ApiErrorCode, error_response

# Bursts of 20 requests a second, ten a second over ten minutes: far above what an
# extension or a CRM integration needs, far below what would let one caller slow the
# others down (an unlimited caller made thousands a second).
DEFAULT_RATE_LIMIT = "200 per 10 seconds; 6000 per 10 minutes"
DEFAULT_STREAMS_PER_CALLER = 5


class RateLimiter:
    """Budgets per caller, for the API's requests and the pages' sign-in attempts.

    :meth:`attempt` and :meth:`enforce` count against the budgets every process shares
    on PostgreSQL (GCRA buckets in one table: ``N per T`` admits N at once, then one
    each ``T/N``), and against this process's moving windows on SQLite. :meth:`hit`,
    :meth:`check` and :meth:`overrun` are the in-memory windows alone."""

    def __init__(self, spec: str = DEFAULT_RATE_LIMIT, *, name: str = "") -> None:
        """``spec``: budgets such as ``"200 per 10 seconds; 6000 per 10 minutes"``; an
        empty spec turns limiting off. ``name`` keeps this limiter's shared budgets
        apart from another's with the same spec and callers."""
        self.items: list[RateLimitItem] = parse_many(spec) if spec.strip() else []
        self.name = name
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    async def attempt(self, caller: str, runtime: Runtime) -> int:
        """Count one attempt of ``caller`` where ``runtime``'s processes share budgets:
        0 if allowed, else the seconds to wait."""
        over = await self._overrun_shared(caller, runtime)
        return 0 if over is None else over[1]

    async def enforce(self, caller: str, runtime: Runtime) -> None:
        """:meth:`check`, on the budgets ``runtime``'s processes share."""
        self._refuse(await self._overrun_shared(caller, runtime))

    async def _overrun_shared(self, caller: str,
                              runtime: Runtime) -> tuple[RateLimitItem, int] | None:
        if not self.items:
            return None
        if runtime.db.is_sqlite:  # one process: its memory is the whole server's
            return self.overrun(caller)
        budgets = shared_budgets.for_database(runtime.settings.database_url)
        return await budgets.take(self.name, self.items, caller)

    def overrun(self, caller: str) -> tuple[RateLimitItem, int] | None:
        """Count one attempt of ``caller``: None while within every budget, else the
        budget it ran out of and the seconds until it may try again (at least 1)."""
        for item in self.items:
            if not self._limiter.hit(item, caller):
                reset = self._limiter.get_window_stats(item, caller).reset_time
                return item, max(1, math.ceil(reset - time.time()))
        return None

    def hit(self, caller: str) -> int:
        """Count one attempt of ``caller``: 0 if allowed, else the seconds to wait."""
        over = self.overrun(caller)
        return 0 if over is None else over[1]

    def check(self, caller: str) -> None:
        """Count one request of ``caller``; ApiError 429 with Retry-After when over."""
        self._refuse(self.overrun(caller))

    @staticmethod
    def _refuse(over: tuple[RateLimitItem, int] | None) -> None:
        if over is not None:
            item, wait = over
            raise ApiError(429, ApiErrorCode.RATE_LIMITED,
                           f"too many requests: at most {item} for one caller; "
                           f"retry in {wait} s", {"Retry-After": str(wait)})


class StreamSlots:
    """Counts the open event streams of each caller."""

    def __init__(self, per_caller: int = DEFAULT_STREAMS_PER_CALLER) -> None:
        self.per_caller = per_caller
        self._open: dict[str, int] = {}

    def acquire(self, caller: str) -> None:
        """Take a slot or raise ApiError 429; give it back with :meth:`release`."""
        if self._open.get(caller, 0) >= self.per_caller:
            raise ApiError(429, ApiErrorCode.TOO_MANY_STREAMS,
                           f"at most {self.per_caller} event streams open at once for one "
                           "caller: close one, or poll GET /api/v1/events",
                           {"Retry-After": "30"})
        self._open[caller] = self._open.get(caller, 0) + 1

    def release(self, caller: str) -> None:
        left = self._open.get(caller, 0) - 1
        if left > 0:
            self._open[caller] = left
        else:
            self._open.pop(caller, None)


class BodyLimit:
    """Caps every request body at ``default`` bytes, or at ``by_path[path]``."""

    def __init__(self, app: ASGIApp, *, default: int, by_path: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.by_path = dict(by_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.default)
        declared = next((value for name, value in scope["headers"]
                         if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Refused before reading: the server discards the body as it arrives.
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large_error(limit)
            return message

        await self.app(scope, limited, send)


def _too_large_error(limit: int) -> ApiError:
    return ApiError(413, ApiErrorCode.TOO_LARGE, f"the request body is over {limit} bytes")


def _too_large(limit: int) -> ASGIApp:
    error = _too_large_error(limit)
    return error_response(413, error.code, str(error.detail))


class SlotStream(EventSourceResponse):
    """An event stream (API or page) that gives its caller's ``StreamSlots`` slot back
    however it ends: finished, cancelled, or the client gone."""

    def __init__(self, *args: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
