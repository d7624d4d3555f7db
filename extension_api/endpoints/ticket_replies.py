"""What agents do from a ticket (docs/ticket-replies.md): reply or forward through the
team inbox, write internal notes that mention colleagues, say they are viewing or
replying (and hear who else is), and keep the inbox's canned responses.

A ticket or team inbox the caller is not a member of is a 404, as another portal's.
Replies, notes and presence are an agent's: an admin token (no user) gets a 403.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.inboxes import InboxError, MailboxSendFailed
from core.storage.models import Email, User
from core.tickets import canned, notes, presence, replies, service
from core.tickets.presence import ReplyCollision, State
from core.types import InboxErrorCode
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import path_id
from extension_api.endpoints.inboxes import STATUS as MAILBOX_STATUS
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.ticket_replies import (
    CannedResponsePatch,
    CannedResponseRequest,
    NoteRequest,
    PresenceRequest,
    RenderedCannedResponse,
    ReplyRequest,
    canned_of,
    collision_json,
    note_shape_of,
    presence_of,
    reply_sent_of,
)


def mailbox_failure(exc: InboxError) -> ApiError:
    """A reply the team mailbox's server did not take, answered as a CRM send's failure
    (``POST /api/v1/send``): 504 ``send_unconfirmed`` or ``timeout``, 429 (with
    Retry-After) ``throttled`` or ``too_many_connections``, 409 ``disconnected``..."""
    headers = ({"Retry-After": "60"} if exc.code in (
        InboxErrorCode.THROTTLED, InboxErrorCode.TOO_MANY_CONNECTIONS) else None)
    return ApiError(MAILBOX_STATUS.get(exc.code, 502), exc.code, exc.message, headers)


def _agent(principal: Principal) -> int:
    if principal.user_id is None:
        raise ApiError(403, ApiErrorCode.FORBIDDEN, "an agent does this: use the agent's "
                       "own user token, not the admin token")
    return principal.user_id


@authenticated
async def reply(request: Request, principal: Principal) -> Response:
    """Send a reply (or forward) from the ticket; 409 reply_collision when another
    agent replied since the caller loaded the ticket (unless ``force``)."""
    user_id, ticket_id = _agent(principal), path_id(request)
    runtime = runtime_of(request)
    async with runtime.db.read() as session:  # a 404 before the body is read
        await service.ticket(session, principal.portal_id, user_id, ticket_id)
    body = await read_body(request, ReplyRequest)
    try:
        sent = await replies.reply(runtime, principal.portal_id, user_id, ticket_id,
                                   body.request())
    except ReplyCollision as exc:
        return JSONResponse(collision_json(exc), 409)
    except MailboxSendFailed as exc:  # the team mailbox's: answered as a CRM send's
        raise mailbox_failure(exc.error) from None
    async with runtime.db.read() as session:
        email = await session.get(Email, sent.email_id)
        assert email is not None
        return respond(reply_sent_of(sent, email), 201)


@authenticated
async def ticket_notes(request: Request, principal: Principal) -> Response:
    """GET: the ticket's notes, oldest first. POST: add one (never sent)."""
    user_id, ticket_id = _agent(principal), path_id(request)
    runtime = runtime_of(request)
    if request.method == "GET":
        async with runtime.db.read() as session:
            found = await service.ticket(session, principal.portal_id, user_id, ticket_id)
            return respond({"items": [note_shape_of(n)
                                      for n in await notes.notes_of(session, found.id)]})
    async with runtime.db.transaction() as session:
        found = await service.ticket(session, principal.portal_id, user_id, ticket_id)
        body = await read_body(request, NoteRequest)
        note = await notes.add_note(session, found, user_id, body.text, body.mentions)
    return respond(note_shape_of(note), 201)


@authenticated
async def ticket_presence(request: Request, principal: Principal) -> Response:
    """GET: who else is on the ticket. POST: the caller is viewing, replying, or left."""
    user_id, ticket_id = _agent(principal), path_id(request)
    runtime = runtime_of(request)
    if request.method == "GET":
        async with runtime.db.read() as session:
            found = await service.ticket(session, principal.portal_id, user_id, ticket_id)
            return respond(presence_of(
                found.id, await presence.loaded_version(session, found.id, user_id),
                await presence.others(session, found.id, user_id)))
    async with runtime.db.transaction() as session:
        found = await service.ticket(session, principal.portal_id, user_id, ticket_id)
        body = await read_body(request, PresenceRequest)
        if body.state == "left":
            await presence.leave(session, found.id, user_id)
            seen = None
        else:
            row = await presence.register(session, found, user_id, State(body.state))
            seen = row.seen_activity_id
        return respond(presence_of(found.id, seen,
                                   await presence.others(session, found.id, user_id)))


@authenticated
async def rendered_canned_response(request: Request, principal: Principal) -> Response:
    """A canned response of the ticket's inbox, filled in for this ticket and agent."""
    user_id, ticket_id = _agent(principal), path_id(request)
    async with runtime_of(request).db.read() as session:
        found = await service.ticket(session, principal.portal_id, user_id, ticket_id)
        assert found.team_inbox_id is not None
        row = await canned.get_response(session, principal.portal_id, user_id,
                                        found.team_inbox_id, path_id(request, "rid"))
        agent = await session.get(User, user_id)
        assert agent is not None
        text = canned.render(row.body, await canned.context_of(session, found, agent))
        return respond(RenderedCannedResponse(id=row.id, name=row.name, text=text))


@authenticated
async def canned_responses(request: Request, principal: Principal) -> Response:
    """GET: a team inbox's canned responses by name. POST: add one."""
    inbox_id = path_id(request)
    runtime = runtime_of(request)
    if request.method == "GET":
        async with runtime.db.read() as session:
            found = await canned.list_responses(session, principal.portal_id,
                                                principal.user_id, inbox_id)
            return respond({"items": [canned_of(r) for r in found]})
    async with runtime.db.transaction() as session:
        await canned.list_responses(session, principal.portal_id, principal.user_id,
                                    inbox_id)  # a 404 before the body is read
        body = await read_body(request, CannedResponseRequest)
        made = await canned.create(session, principal.portal_id, principal.user_id,
                                   inbox_id, name=body.name, body=body.body)
        return respond(canned_of(made), 201)


@authenticated
async def canned_response(request: Request, principal: Principal) -> Response:
    """GET, PATCH or DELETE one canned response of a team inbox."""
    inbox_id, response_id = path_id(request), path_id(request, "rid")
    runtime = runtime_of(request)
    args = (principal.portal_id, principal.user_id, inbox_id, response_id)
    if request.method == "GET":
        async with runtime.db.read() as session:
            return respond(canned_of(await canned.get_response(session, *args)))
    async with runtime.db.transaction() as session:
        row = await canned.get_response(session, *args)
        if request.method == "DELETE":
            shown = canned_of(row)
            await canned.delete(session, *args)
            return respond(shown)
        body = await read_body(request, CannedResponsePatch)
        name, text = body.change()
        return respond(canned_of(await canned.update(session, *args, name=name, body=text)))
