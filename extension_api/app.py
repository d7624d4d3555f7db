"""The ASGI application of the HTTP adapter."""

from __future__ import annotations

from starlette.applications import Starlette

from core.runtime import Runtime
from extension_api.errors import EXCEPTION_HANDLERS
from extension_api.routes import routes


def create_app(runtime: Runtime) -> Starlette:
    """The API app serving ``runtime``; the caller owns the runtime's lifetime."""
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    app.state.runtime = runtime
    return app
