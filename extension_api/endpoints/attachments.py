"""Attachment downloads, served from the blob store."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from core import queries
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import path_id
from extension_api.errors import ApiError


@authenticated
async def download(request: Request, principal: Principal) -> Response:
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        found = await queries.attachment(session, principal.portal_id, path_id(request))
    if found.blob_sha256 is None:
        raise ApiError(404, "not_stored", "this attachment was listed but not stored")
    path = runtime.blobs.path(found.blob_sha256)
    if not path.exists():
        raise ApiError(404, "not_stored", "the attachment's file is gone")
    return FileResponse(
        path, media_type=found.content_type, filename=found.filename,
        content_disposition_type="attachment",
        # Never let a browser render a logged file as a page of this origin.
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )
