"""Logged emails (find, read, delete, restore, move between threads) and threads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import deletion, extension_log, pipeline, queries, regroup, tracked_sends
from core.models import Portal, User
from core.retention import restorable_until
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import json_object, path_id
from extension_api.errors import ApiError
from extension_api.schemas import email_json, iso, thread_json


@authenticated
async def find_emails(request: Request, principal: Principal) -> Response:
    message_id = request.query_params.get("message_id")
    if not message_id or not message_id.strip("<> "):
        raise ApiError(400, "bad_request", "give ?message_id=")
    async with runtime_of(request).db.read() as session:
        found = await queries.emails_by_message_id(session, principal.portal_id, message_id)
        counts = await tracked_sends.counts_for(session, found)
        return JSONResponse({"items": [email_json(e, counts.get(e.id)) for e in found]})


@authenticated
async def get_email(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        found = await queries.email(session, principal.portal_id, path_id(request))
        counts = await tracked_sends.counts_for(session, [found])
        return JSONResponse(email_json(found, counts.get(found.id)))


@authenticated
async def get_thread(request: Request, principal: Principal) -> Response:
    thread_id = path_id(request)
    async with runtime_of(request).db.read() as session:
        thread = await queries.thread(session, principal.portal_id, thread_id)
        emails = await queries.thread_emails(session, principal.portal_id, thread_id)
        counts = await tracked_sends.counts_for(session, emails)
        return JSONResponse(thread_json(thread, list(emails), counts))


@authenticated
async def delete_email(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.transaction() as session:
        email = await deletion.delete_email(session, principal.portal_id, path_id(request))
        assert email.deleted_at is not None
        body = {"id": email.id, "deleted_at": iso(email.deleted_at),
                "restorable_until": iso(restorable_until(email.deleted_at))}
    return JSONResponse(body)


@authenticated
async def restore_email(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.transaction() as session:
        email = await deletion.restore_email(session, principal.portal_id, path_id(request))
        counts = await tracked_sends.counts_for(session, [email])
        body = email_json(email, counts.get(email.id))
    return JSONResponse(body)


async def email(request: Request) -> Response:
    handler = delete_email if request.method == "DELETE" else get_email
    return await handler(request)


@authenticated
async def move_email(request: Request, principal: Principal) -> Response:
    body = await json_object(request)
    if set(body) != {"thread_id"}:
        raise ApiError(422, "invalid_input",
                       'give {"thread_id": <id>} to move, or {"thread_id": null} to split off')
    target = body["thread_id"]
    if target is not None and (not isinstance(target, int) or isinstance(target, bool)
                               or not 1 <= target < 2**63):
        raise ApiError(422, "invalid_input", "thread_id must be a thread id or null")
    async with runtime_of(request).db.transaction() as session:
        email = await regroup.move_to_thread(session, principal.portal_id, path_id(request),
                                             target)
        counts = await tracked_sends.counts_for(session, [email])
        result = email_json(email, counts.get(email.id))
    return JSONResponse(result)


MAX_RAW_BYTES = pipeline.MAX_MESSAGE_BYTES


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
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_RAW_BYTES:
            raise ApiError(413, "too_large", f"messages over {MAX_RAW_BYTES} bytes are not logged")
    if not raw.strip():
        raise ApiError(400, "bad_request", "the body is empty: send the raw message")
    runtime = runtime_of(request)
    prepared = await pipeline.prepare(bytes(raw), spool_dir=runtime.blobs.spool_dir())

    async def work(session):  # type: ignore[no-untyped-def]
        portal = await session.get(Portal, principal.portal_id)
        user = await session.get(User, principal.user_id)
        logged = await extension_log.log_raw(
            session, portal=portal, user=user, prepared=prepared, blobs=runtime.blobs,
            bcc_domain=runtime.settings.bcc_domain)
        counts = await tracked_sends.counts_for(session, [logged.email])
        return logged.created, email_json(logged.email, counts.get(logged.email.id))

    created, body = await runtime.db.run(work)
    return JSONResponse(body, status_code=201 if created else 200)
