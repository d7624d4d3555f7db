"""The ingest log: every message received and not logged, and why."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import audit
from core.storage.models import IngestLogEntry
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import query_int
from extension_api.schemas import iso


def entry_json(entry: IngestLogEntry) -> dict[str, object]:
    return {
        "id": entry.id, "at": iso(entry.at), "logging_address": entry.logging_address,
        "sender": entry.sender, "envelope_sender": entry.envelope_sender,
        "message_id": entry.message_id, "source": entry.source,
        "reason_code": entry.reason_code, "reason": entry.reason, "size": entry.size,
    }


@authenticated
async def ingest_log(request: Request, principal: Principal) -> Response:
    limit = query_int(request, "limit", 50, low=1, high=200)
    before = request.query_params.get("before")
    cursor = query_int(request, "before", 0, low=1, high=2**63 - 1) if before else None
    async with runtime_of(request).db.read() as session:
        items = await audit.entries(session, principal.portal_id, before=cursor, limit=limit)
    return JSONResponse({
        "items": [entry_json(e) for e in items],
        "cursor": items[-1].id if len(items) == limit else None,
    })
