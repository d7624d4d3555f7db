"""Attachment downloads, served from the blob store (streamed, never held whole)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from core import queries
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import path_id
from extension_api.errors import ApiError, ApiErrorCode

# Never let a browser render a logged file as a page of this origin.
_SAFE = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


@authenticated
async def download(request: Request, principal: Principal) -> Response:
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        found = await queries.attachment(session, principal.portal_id, path_id(request),
                                         viewer=principal.user_id)
    if found.blob_sha256 is None:
        raise ApiError(404, ApiErrorCode.NOT_STORED, "this attachment was listed but not stored")
    path = runtime.blobs.local_path(found.blob_sha256)
    if path is not None:
        if not path.exists():
            raise ApiError(404, ApiErrorCode.NOT_STORED, "the attachment's file is gone")
        return FileResponse(
            path, media_type=found.content_type, filename=found.filename,
            content_disposition_type="attachment", headers=_SAFE,
        )
    reader = await runtime.blobs.open(found.blob_sha256)
    if reader is None:
        raise ApiError(404, ApiErrorCode.NOT_STORED, "the attachment's file is gone")
    return StreamingResponse(reader.chunks, media_type=found.content_type, headers={
        **_SAFE, "Content-Length": str(reader.size),
        "Content-Disposition": _attachment_disposition(found.filename)})


def _attachment_disposition(filename: str) -> str:
    """As Starlette's ``FileResponse`` writes it."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'
