"""The ingest log: every message received and not logged, and why (a team inbox's
entries only for its members and the admin: ``core.audit.visible_entry``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core import audit
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import query_int
from extension_api.schemas import respond
from extension_api.schemas.account import ingest_log_entry_of


@authenticated
async def ingest_log(request: Request, principal: Principal) -> Response:
    limit = query_int(request, "limit", 50, low=1, high=200)
    before = request.query_params.get("before")
    cursor = query_int(request, "before", 0, low=1, high=2**63 - 1) if before else None
    async with runtime_of(request).db.read() as session:
        items = await audit.entries(session, principal.portal_id, before=cursor, limit=limit,
                                    viewer=principal.user_id)
    return respond({
        "items": [ingest_log_entry_of(e) for e in items],
        "cursor": items[-1].id if len(items) == limit else None,
    })
