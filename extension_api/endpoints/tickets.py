"""A team inbox's tickets: list, read (with emails and log), change, assign, close,
reopen, merge. Only the inbox's members and the admin see a ticket: anyone else gets a
404, as for another portal's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.tickets import service
from core.tickets.matching import Status
from core.tickets.rules import Priority
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import path_id, query_int
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.tickets import (
    AssignRequest,
    MergeRequest,
    TicketPatch,
    ticket_detail_of,
    ticket_of,
)

_MAX_ID = 2**63 - 1
_MAX_OFFSET = 1_000_000


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise ApiError(400, ApiErrorCode.BAD_REQUEST,
                       f"{name} must be one of {', '.join(allowed)}")
    return value or None


def _filter(request: Request) -> service.Filter:
    params = request.query_params
    status = _choice(request, "status", tuple(Status))
    priority = _choice(request, "priority", tuple(Priority))
    order = _choice(request, "sort", tuple(service.Order)) or service.Order.NEWEST
    assignee = params.get("assignee")
    if assignee is not None and assignee != "none" and not (
            assignee.isdigit() and 0 < int(assignee) <= _MAX_ID):
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, "assignee is a user id or none")
    inbox = query_int(request, "team_inbox_id", 0, low=0, high=_MAX_ID)
    before = query_int(request, "before", 0, low=0, high=_MAX_ID)
    offset = query_int(request, "offset", 0, low=0, high=_MAX_OFFSET)
    if order == service.Order.LATEST_ACTIVITY and before:
        raise ApiError(400, ApiErrorCode.BAD_REQUEST,
                       "sort=latest_activity pages by offset, not before")
    if order == service.Order.NEWEST and offset:
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, "the newest order pages by before")
    return service.Filter(
        status=Status(status) if status else None, team_inbox_id=inbox or None,
        assignee_user_id=int(assignee) if assignee and assignee != "none" else None,
        unassigned=assignee == "none", priority=Priority(priority) if priority else None,
        order=service.Order(order), before=before or None, offset=offset,
        limit=query_int(request, "limit", 50, low=1, high=200))


@authenticated
async def list_tickets(request: Request, principal: Principal) -> Response:
    """Newest first, paged by ``before`` (the answer's ``cursor``), or
    ``sort=latest_activity``, paged by ``offset`` (the answer's ``next_offset``)."""
    wanted = _filter(request)
    async with runtime_of(request).db.read() as session:
        found = await service.tickets(session, principal.portal_id, principal.user_id, wanted)
        contacts = await service.contact_ids_of(session, [t.id for t in found])
        items = [ticket_of(t, contacts[t.id]) for t in found]
    full = len(found) == wanted.limit
    if wanted.order is service.Order.LATEST_ACTIVITY:
        return respond({"items": items, "cursor": None,
                        "next_offset": wanted.offset + len(found) if full else None})
    return respond({"items": items, "cursor": found[-1].id if full else None})


async def _detail(request: Request, principal: Principal, ticket_id: int) -> object:
    async with runtime_of(request).db.read() as session:
        found = await service.ticket(session, principal.portal_id, principal.user_id,
                                     ticket_id)
        return ticket_detail_of(found, await service.contact_ids(session, found.id),
                                list(await service.emails_of(session, found.id)),
                                list(await service.activity_of(session, found.id)))


@authenticated
async def ticket(request: Request, principal: Principal) -> Response:
    ticket_id = path_id(request)
    if request.method == "PATCH":
        async with runtime_of(request).db.transaction() as session:
            found = await service.ticket(session, principal.portal_id, principal.user_id,
                                         ticket_id)
            body = await read_body(request, TicketPatch)
            await service.change(session, found, body.change(), actor=principal.user_id)
    return respond(await _detail(request, principal, ticket_id))


@authenticated
async def assign(request: Request, principal: Principal) -> Response:
    ticket_id = path_id(request)
    async with runtime_of(request).db.transaction() as session:
        found = await service.ticket(session, principal.portal_id, principal.user_id,
                                     ticket_id)
        body = await read_body(request, AssignRequest)
        await service.assign(session, found, user_id=body.user_id, team_id=body.team_id,
                             actor=principal.user_id)
    return respond(await _detail(request, principal, ticket_id))


async def _set_status(request: Request, principal: Principal, status: Status) -> Response:
    ticket_id = path_id(request)
    async with runtime_of(request).db.transaction() as session:
        found = await service.ticket(session, principal.portal_id, principal.user_id,
                                     ticket_id)
        await service.change(session, found, service.Change(status=status),
                             actor=principal.user_id)
    return respond(await _detail(request, principal, ticket_id))


@authenticated
async def close(request: Request, principal: Principal) -> Response:
    return await _set_status(request, principal, Status.CLOSED)


@authenticated
async def reopen(request: Request, principal: Principal) -> Response:
    return await _set_status(request, principal, Status.OPEN)


@authenticated
async def merge(request: Request, principal: Principal) -> Response:
    """Merge this ticket into another of its inbox; answers the one that lives on."""
    ticket_id = path_id(request)
    async with runtime_of(request).db.transaction() as session:
        found = await service.ticket(session, principal.portal_id, principal.user_id,
                                     ticket_id)
        body = await read_body(request, MergeRequest)
        into = await service.merge(session, principal.portal_id, principal.user_id, found,
                                   body.into)
        into_id = into.id
    return respond(await _detail(request, principal, into_id))
