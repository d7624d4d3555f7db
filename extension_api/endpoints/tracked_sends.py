"""Tracked sends: the extension asks for trackable HTML, then says it was sent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core import extension_log, tracked_sends
from core.storage.models import Portal, User
from extension_api.auth import Principal, authenticated, runtime_of
from extension_api.endpoints._params import path_id, query_int
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.mail import email_of, tracking_of
from extension_api.schemas.tracking import (
    SentRequest,
    TrackedSendCreated,
    TrackedSendRequest,
    hit_of,
    not_logged_of,
    tracked_send_of,
)


def _user_only(principal: Principal) -> int:
    if principal.user_id is None:
        raise ApiError(403, ApiErrorCode.FORBIDDEN,
                       "tracked sends belong to a user: use a user token")
    return principal.user_id


@authenticated
async def create(request: Request, principal: Principal) -> Response:
    user_id = _user_only(principal)
    body = await read_body(request, TrackedSendRequest)
    runtime = runtime_of(request)
    async with runtime.db.transaction() as session:
        created = await tracked_sends.create(
            session, portal_id=principal.portal_id, user_id=user_id, request=body.request(),
            signer=request.app.state.signer, base_url=runtime.settings.base_url,
            creator_ip=request.client.host if request.client else "",
        )
        result = TrackedSendCreated(id=created.send.id, token=created.send.token,
                                    html=created.send.html, pixel_url=created.pixel_url)
    return respond(result, 201)


@authenticated
async def get(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        send = await tracked_sends.owned(session, principal.portal_id, path_id(request))
        counts = await tracked_sends.counts_for_send(session, send)
        return respond(tracked_send_of(send, tracking_of(counts)))


@authenticated
async def hits(request: Request, principal: Principal) -> Response:
    """The send's opens and clicks with their verdicts, oldest first, after a cursor."""
    after = query_int(request, "after", 0, low=0, high=2**63 - 1)
    limit = query_int(request, "limit", 100, low=1, high=500)
    async with runtime_of(request).db.read() as session:
        send = await tracked_sends.owned(session, principal.portal_id, path_id(request))
        found = await tracked_sends.hits_of(session, send, after=after, limit=limit)
    return respond({"items": [hit_of(hit) for hit in found],
                    "cursor": found[-1].id if found else after})


@authenticated
async def sent(request: Request, principal: Principal) -> Response:
    """The extension sent it: log it (unless its copy is logged already) and link it."""
    user_id = _user_only(principal)
    body = await read_body(request, SentRequest, optional=True)
    runtime = runtime_of(request)
    async with runtime.db.transaction() as session:
        send = await tracked_sends.owned(session, principal.portal_id, path_id(request))
        if send.user_id != user_id:
            raise ApiError(403, ApiErrorCode.FORBIDDEN, "this tracked send belongs to another user")
        portal, user = await session.get(Portal, send.portal_id), await session.get(User, user_id)
        assert portal is not None and user is not None
        if not send.log:
            await extension_log.mark_sent(send)
            return respond(not_logged_of(send))
        logged = await extension_log.log_tracked_send(
            session, portal=portal, user=user, send=send, message_id=body.given_message_id(),
            blobs=runtime.blobs, bcc_domain=runtime.settings.bcc_domain,
        )
        counts = await tracked_sends.counts_for(session, [logged.email])
        result = email_of(logged.email, counts.get(logged.email.id))
    return respond(result, 201 if logged.created else 200)
