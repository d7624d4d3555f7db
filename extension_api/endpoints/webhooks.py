"""Webhooks: the portal's admin registers endpoints that receive its events, signed,
and reads each endpoint's delivery log (core.webhooks; the sender: inbox_sync.webhooks).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from core import webhooks
from extension_api.auth import Principal, authenticated, require_admin, runtime_of
from extension_api.endpoints._params import path_id, query_int
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.webhooks import (
    WebhookPatch,
    WebhookRequest,
    delivery_of,
    new_webhook_of,
    webhook_of,
)

_MAX_ID = 2**63 - 1
_STATUSES = (webhooks.DeliveryStatus.PENDING, webhooks.DeliveryStatus.DELIVERED,
             webhooks.DeliveryStatus.FAILED)


def _refuse_literal(request: Request, url: str) -> None:
    """422 for a URL whose address the server will never send to (an IP literal off
    the destination policy); names are decided on their address when sending."""
    sender = getattr(request.app.state, "webhooks", None)
    refusal: Callable[[str], str | None] | None = getattr(sender, "refusal", None)
    if refusal is not None and (reason := refusal(url)) is not None:
        raise ApiError(422, ApiErrorCode.INVALID_INPUT, reason)


def _wake_sender(request: Request) -> None:
    sender = getattr(request.app.state, "webhooks", None)
    if sender is not None:
        sender.wake()


@authenticated
async def create(request: Request, principal: Principal) -> Response:
    """Register an endpoint; its signing secret is in this answer only."""
    require_admin(principal, "managing webhooks")
    body = await read_body(request, WebhookRequest)
    url = webhooks.checked_url(body.url)
    _refuse_literal(request, url)
    runtime = runtime_of(request)
    box = webhooks.secret_box(runtime.settings.secret_key)
    async with runtime.db.transaction() as session:
        endpoint, secret = await webhooks.create_endpoint(
            session, box, principal.portal_id, url=url, event_types=body.events,
            description=body.description)
        created = new_webhook_of(endpoint, secret)
    _wake_sender(request)  # events from now on: no wait for the sender's next look
    return respond(created, 201)


@authenticated
async def list_webhooks(request: Request, principal: Principal) -> Response:
    require_admin(principal, "managing webhooks")
    async with runtime_of(request).db.read() as session:
        found = await webhooks.endpoints_of(session, principal.portal_id)
        return respond({"items": [webhook_of(e) for e in found]})


@authenticated
async def webhook(request: Request, principal: Principal) -> Response:
    """GET one endpoint, PATCH it (url, events, description, enabled), DELETE it."""
    require_admin(principal, "managing webhooks")
    endpoint_id = path_id(request)
    db = runtime_of(request).db
    if request.method == "GET":
        async with db.read() as session:
            return respond(webhook_of(await webhooks.endpoint_of(
                session, principal.portal_id, endpoint_id)))
    if request.method == "DELETE":
        async with db.transaction() as session:
            endpoint = await webhooks.endpoint_of(session, principal.portal_id, endpoint_id)
            gone = webhook_of(endpoint)
            await webhooks.delete_endpoint(session, principal.portal_id, endpoint_id)
        return respond(gone)
    body = await read_body(request, WebhookPatch)
    change = body.change()
    if change.url is not None:
        _refuse_literal(request, webhooks.checked_url(change.url))
    async with db.transaction() as session:
        endpoint = await webhooks.change_endpoint(session, principal.portal_id, endpoint_id,
                                                  change)
        changed = webhook_of(endpoint)
    _wake_sender(request)
    return respond(changed)


@authenticated
async def deliveries(request: Request, principal: Principal) -> Response:
    """An endpoint's delivery log, newest first: ``?before=`` the ``cursor`` of the
    previous page, ``?status=`` pending, delivered or failed."""
    require_admin(principal, "reading webhook deliveries")
    endpoint_id = path_id(request)
    before = query_int(request, "before", _MAX_ID, low=1, high=_MAX_ID)
    limit = query_int(request, "limit", 50, low=1, high=200)
    status = request.query_params.get("status")
    if status is not None and status not in _STATUSES:
        raise ApiError(400, ApiErrorCode.BAD_REQUEST,
                       f"status must be one of {', '.join(_STATUSES)}")
    async with runtime_of(request).db.read() as session:
        found = await webhooks.deliveries_of(session, principal.portal_id, endpoint_id,
                                             before=before, status=status, limit=limit)
        items = [delivery_of(d) for d in found]
    return respond({"items": items,
                    "cursor": found[-1].id if len(found) == limit else None})
