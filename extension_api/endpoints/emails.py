"""Logged emails (find, read, delete, restore, move between threads) and threads."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import IO, Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from core import deletion, pipeline, queries, regroup, tracked_sends
from core.errors import InvalidInput, NotFound
from core.retention import restorable_until
from core.storage.models import User
from core.tickets.access import sees_email
from core.types import Channel, Envelope, IngestOutcome, Source
from extension_api.auth import Principal, authenticated, require_owner, runtime_of
from extension_api.endpoints._params import path_id
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import email_json, read_body, respond
from extension_api.schemas.mail import Deleted, MoveRequest, email_of, thread_of


@authenticated
async def find_emails(request: Request, principal: Principal) -> Response:
    message_id = request.query_params.get("message_id")
    if not message_id or not message_id.strip("<> "):
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, "give ?message_id=")
    async with runtime_of(request).db.read() as session:
        found = await queries.emails_by_message_id(session, principal.portal_id, message_id,
                                                   viewer=principal.user_id)
        counts = await tracked_sends.counts_for(session, found)
        return respond({"items": [email_of(e, counts.get(e.id)) for e in found]})


@authenticated
async def get_email(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        found = await queries.email(session, principal.portal_id, path_id(request),
                                    viewer=principal.user_id)
        counts = await tracked_sends.counts_for(session, [found])
        return respond(email_of(found, counts.get(found.id)))


@authenticated
async def get_thread(request: Request, principal: Principal) -> Response:
    thread_id = path_id(request)
    async with runtime_of(request).db.read() as session:
        thread = await queries.thread(session, principal.portal_id, thread_id)
        emails = await queries.thread_emails(session, principal.portal_id, thread_id,
                                             viewer=principal.user_id)
        subject = await queries.thread_subject(session, thread, emails,
                                               viewer=principal.user_id)
        counts = await tracked_sends.counts_for(session, emails)
        return respond(msgspec.structs.replace(thread_of(thread, list(emails), counts),
                                               subject=subject))


async def _check_owner(session: AsyncSession, principal: Principal, email_id: int) -> None:
    """404 for another portal's email; 403 for a colleague's, unless the caller is admin.

    The rule (README, "Roles"): a user changes only the emails logged for them (their
    own sends, the mail they forwarded, logged or synced); the portal's admin any.
    """
    email = await deletion.owned_email(session, principal.portal_id, email_id)
    if not await sees_email(session, email, principal.user_id):  # a team inbox's (404)
        raise NotFound(f"no email {email_id}")
    require_owner(principal, email.user_id, f"email {email_id}")


@authenticated
async def delete_email(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.transaction() as session:
        await _check_owner(session, principal, path_id(request))
        email = await deletion.delete_email(session, principal.portal_id, path_id(request))
        assert email.deleted_at is not None
        body = Deleted(id=email.id, deleted_at=email.deleted_at,
                       restorable_until=restorable_until(email.deleted_at))
    request.app.state.links.forget()  # a tracked send's links go with its email
    return respond(body)


@authenticated
async def restore_email(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.transaction() as session:
        await _check_owner(session, principal, path_id(request))
        email = await deletion.restore_email(session, principal.portal_id, path_id(request))
        counts = await tracked_sends.counts_for(session, [email])
        body = email_of(email, counts.get(email.id))
    request.app.state.links.forget()
    return respond(body)


async def email(request: Request) -> Response:
    handler = delete_email if request.method == "DELETE" else get_email
    return await handler(request)


@authenticated
async def move_email(request: Request, principal: Principal) -> Response:
    body = await read_body(request, MoveRequest)
    async with runtime_of(request).db.transaction() as session:
        await _check_owner(session, principal, path_id(request))
        if body.thread_id is not None:  # not a thread of only mail they may not see
            await queries.visible_thread(session, principal.portal_id, body.thread_id,
                                         viewer=principal.user_id)
        email = await regroup.move_to_thread(session, principal.portal_id, path_id(request),
                                             body.thread_id)
        counts = await tracked_sends.counts_for(session, [email])
        result = email_of(email, counts.get(email.id))
    return respond(result)


MAX_RAW_BYTES = pipeline.MAX_MESSAGE_BYTES
_MEMORY_PART = 1024 * 1024  # a body past this waits in a temporary file, not in pieces


def _temporary_file(directory: Path) -> IO[bytes]:
    return tempfile.TemporaryFile(dir=directory)


async def _receive_raw(request: Request, spool_dir: Path) -> bytes:
    """The request body as one bytes object, held once: past 1 MB it is written to a
    temporary file as it arrives and read back in one allocation (not a growing buffer
    plus its copy). Over MAX_RAW_BYTES is a 413 as soon as it gets there."""
    held = bytearray()
    spill: IO[bytes] | None = None
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_RAW_BYTES:
                raise ApiError(413, "too_large",
                               f"messages over {MAX_RAW_BYTES} bytes are not logged")
            held += chunk
            if len(held) >= _MEMORY_PART:
                if spill is None:
                    spill = await asyncio.to_thread(_temporary_file, spool_dir)
                await asyncio.to_thread(spill.write, bytes(held))
                held.clear()
        if spill is None:
            return bytes(held)
        file = spill
        file.write(held)

        def read_back() -> bytes:
            file.seek(0)
            return file.read()  # sized from the file: one allocation

        return await asyncio.to_thread(read_back)
    finally:
        if spill is not None:
            spill.close()


@authenticated
async def log_email(request: Request, principal: Principal) -> Response:
    """One-click logging: the raw message the user has open, through the same pipeline."""
    if principal.user_id is None:
        raise ApiError(403, "forbidden", "logging is done on a user's behalf: use a user token")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("message/rfc822", "application/octet-stream", "text/plain"):
        raise ApiError(415, "unsupported_media_type", "send the raw message as message/rfc822")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_RAW_BYTES:
        raise ApiError(413, "too_large", f"messages over {MAX_RAW_BYTES} bytes are not logged")
    runtime = runtime_of(request)
    raw = await _receive_raw(request, runtime.blobs.spool_dir())
    if not raw or raw.isspace():  # not raw.strip(): that would copy a large message
        raise ApiError(400, "bad_request", "the body is empty: send the raw message")
    async with runtime.db.read() as session:
        user = await queries.owned(session, User, principal.portal_id, principal.user_id)
        on_behalf_of = user.email
    arrival = pipeline.Arrival.for_portal(Channel.EXTENSION, principal.portal_id, Envelope(
        source_hint=Source.EXTENSION, on_behalf_of=on_behalf_of))
    results = await pipeline.log_message(runtime, raw, arrival)
    del raw  # the raw message and its parse go before the answer is written
    result = results.only()
    if result.email_id is None:
        raise InvalidInput(f"not logged: {result.reason}")
    async with runtime.db.read() as session:
        # A copy of a team inbox's email the user may not see: 404, not that email.
        email = await queries.email(session, principal.portal_id, result.email_id,
                                    viewer=principal.user_id)
        counts = await tracked_sends.counts_for(session, [email])
        body = email_json(email, counts.get(email.id))
    return _email_response(body, 201 if result.outcome is IngestOutcome.LOGGED else 200)


_LARGE_TEXT = 1024 * 1024


def _email_response(body: dict[str, Any], status: int) -> Response:
    """The email as JSON; one with a large text is written out piece by piece, never
    held as one more whole string (and its bytes) beside the email."""
    if len(body.get("text", "")) + len(body.get("html", "")) < _LARGE_TEXT:
        return JSONResponse(body, status_code=status)
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    pieces = (piece.encode() for piece in encoder.iterencode(body))
    return StreamingResponse(pieces, status_code=status, media_type="application/json")
