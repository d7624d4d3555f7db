"""The ASGI application of the HTTP adapter."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from core.runtime import Runtime
from core.tracking import TokenSigner
from extension_api import shared_budgets
from extension_api.click_links import LinkCache
from extension_api.endpoints._params import MAX_JSON_BODY
from extension_api.endpoints.emails import MAX_RAW_BYTES
from extension_api.errors import EXCEPTION_HANDLERS
from extension_api.live import EventBus, HitRecorder
from extension_api.pages import WebState
from extension_api.pages import routes as page_routes
from extension_api.pixel_lane import PixelLane
from extension_api.routes import API, routes
from extension_api.throttle import (
    DEFAULT_RATE_LIMIT,
    DEFAULT_STREAMS_PER_CALLER,
    BodyLimit,
    RateLimiter,
    StreamSlots,
)
from extension_api.tracking_clock import hit_clock

log = logging.getLogger(__name__)

# Request bodies are JSON of at most MAX_JSON_BODY bytes, but for a raw message to log.
BODY_LIMITS = {f"{API}/emails/log": MAX_RAW_BYTES}

# Where the extension runs: its own pages, and the webmail it injects into.
DEFAULT_CORS_ORIGINS = (
    r"chrome-extension://[a-p]{32}|moz-extension://[0-9a-f-]{36}|"
    r"safari-web-extension://[0-9A-Za-z-]+|"
    r"https://mail\.google\.com|https://outlook\.(office|office365|live)\.com"
)


def create_app(runtime: Runtime, *, cors_origins: str = DEFAULT_CORS_ORIGINS,
               rate_limit: str = DEFAULT_RATE_LIMIT,
               streams_per_caller: int = DEFAULT_STREAMS_PER_CALLER,
               tracking_link_days: int | None = None) -> Starlette:
    """The API app serving ``runtime``; the caller owns the runtime's lifetime.

    ``cors_origins`` is a regular expression of the origins allowed to call the API
    from a browser; hits are dated by ``extension_api.tracking_clock.hit_clock()``.
    ``rate_limit`` is the request budgets of one caller (``limits`` notation, empty for
    none), ``streams_per_caller`` how many event streams one caller may hold open;
    request bodies are capped as they stream in (``BodyLimit``).
    ``tracking_link_days``: tracking links answer 404, and opens are no longer
    recorded, that many days after their send (None: never).
    The app's lifespan runs the tracking-hit recorder and flushes it
    on shutdown.
    """
    secret = runtime.settings.secret_key
    if not secret:
        log.warning("no secret key: tracking links made now will not survive a restart")
        secret = secrets.token_urlsafe(32)
    events = EventBus()
    recorder = HitRecorder(runtime.db, on_recorded=events.notify,
                           link_days=tracking_link_days)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        recorder.start()
        try:
            yield
        finally:
            await recorder.stop()
            await shared_budgets.close_all()  # the rate limits' pools, on PostgreSQL

    app = Starlette(
        routes=[*routes, *page_routes], exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan,
        middleware=[Middleware(PixelLane), Middleware(
            CORSMiddleware, allow_origin_regex=cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"], max_age=600,
        ), Middleware(BodyLimit, default=MAX_JSON_BODY, by_path=BODY_LIMITS)],
    )
    app.state.runtime = runtime
    app.state.signer = TokenSigner(secret)
    app.state.recorder = recorder
    app.state.links = LinkCache(runtime.db)
    app.state.link_days = tracking_link_days
    app.state.hit_clock = hit_clock()
    app.state.events = events
    app.state.limiter = RateLimiter(rate_limit, name="api")
    app.state.streams = StreamSlots(streams_per_caller)
    app.state.web = WebState(secret)  # the pages: session and CSRF keys, sign-in budgets
    return app
