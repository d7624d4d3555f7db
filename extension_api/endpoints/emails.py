"""Logged emails (find, read, delete, restore, move between threads) and threads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import deletion, queries, regroup
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
        return JSONResponse({"items": [email_json(e) for e in found]})


@authenticated
async def get_email(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        found = await queries.email(session, principal.portal_id, path_id(request))
        return JSONResponse(email_json(found))


@authenticated
async def get_thread(request: Request, principal: Principal) -> Response:
    thread_id = path_id(request)
    async with runtime_of(request).db.read() as session:
        thread = await queries.thread(session, principal.portal_id, thread_id)
        emails = await queries.thread_emails(session, principal.portal_id, thread_id)
        return JSONResponse(thread_json(thread, list(emails)))


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
        body = email_json(email)
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
        result = email_json(email)
    return JSONResponse(result)
