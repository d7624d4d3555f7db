"""The pixel baseline: a bare Starlette app answering the same GIF, recording nothing.

`python -m bench._bare_pixel PORT` serves with uvicorn until killed.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from extension_api.endpoints.tracking import GIF, NO_CACHE


async def pixel(request: Request) -> Response:
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


app = Starlette(routes=[Route("/t/o/{token}", pixel)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False, server_header=False)
