"""The pages: sign-in and the CRM pages people look at, server-rendered (Starlette and
Jinja2 templates, a little JavaScript of our own, no build step) from the same core as
the JSON API. ``routes`` is their URL map; ``WebState`` goes in ``app.state.web``.
docs/pages.md describes them.
"""

from extension_api.pages._web import WebState
from extension_api.pages.routes import routes

__all__ = ["WebState", "routes"]
