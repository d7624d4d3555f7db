"""Setup: the logging address (with a copy button) and how to BCC or forward to it from
Gmail and Outlook, the "send a test email" check (the page shows it arriving, over the
live stream), and the portal's settings (admins change them; users read them).

The live stream (``/live``) is the API's event feed for a signed-in browser: the user's
own events as Server-Sent Events, sharing the API's stream slots of the same user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from core import accounts
from core.errors import InvalidInput
from core.storage.models import Event, Portal
from extension_api.errors import ApiError
from extension_api.live import event_stream
from extension_api.pages._web import (
    PageError,
    Viewer,
    fields_of,
    form,
    redirect,
    render,
    require_admin,
    runtime_of,
    signed_in,
)
from extension_api.throttle import SlotStream

LIVE_POLL_SECONDS = 0.5


async def _portal(request: Request, viewer: Viewer) -> Portal:
    async with runtime_of(request).db.read() as session:
        portal = await session.get(Portal, viewer.portal_id)
    if portal is None:
        raise PageError(404, "Not found", "This portal is gone.")
    return portal


@signed_in
async def setup_page(request: Request, viewer: Viewer) -> Response:
    runtime = runtime_of(request)
    portal = await _portal(request, viewer)
    return render(request, "setup.html", address=f"{portal.bcc_token}@"
                  f"{runtime.settings.bcc_domain}", settings=accounts.portal_settings(portal),
                  modes=accounts.INBOX_LOG_MODES, policies=accounts.SENDER_AUTH_POLICIES,
                  saved=request.query_params.get("saved") == "1", error="")


@signed_in
async def save_settings(request: Request, viewer: Viewer) -> Response:
    fields = await form(request)
    require_admin(viewer, "Changing the portal's settings")
    never_log = [line.strip() for line in fields.get("never_log", "").splitlines()
                 if line.strip()]
    changes: dict[str, Any] = {
        "log_attachments": "log_attachments" in fields,
        "auto_create_contacts": "auto_create_contacts" in fields,
        "never_log": never_log,
    }
    for choice in ("inbox_log_mode", "sender_auth"):
        if values := fields_of(request, choice):
            changes[choice] = values[-1]
    runtime = runtime_of(request)
    try:
        async with runtime.db.transaction() as session:
            portal = await session.get(Portal, viewer.portal_id)
            assert portal is not None
            accounts.update_settings(portal, accounts.SettingsChange(**changes))
    except InvalidInput as exc:
        portal = await _portal(request, viewer)
        return render(request, "setup.html", status=422,
                      address=f"{portal.bcc_token}@{runtime.settings.bcc_domain}",
                      settings={**accounts.portal_settings(portal), "never_log": never_log},
                      modes=accounts.INBOX_LOG_MODES, policies=accounts.SENDER_AUTH_POLICIES,
                      saved=False, error=exc.message)
    return redirect(request, "/setup?saved=1#settings")


@signed_in
async def live(request: Request, viewer: Viewer) -> Response:
    """The user's events after ``?after=`` (or Last-Event-ID), then as they happen."""
    text = request.headers.get("last-event-id") or request.query_params.get("after", "0")
    after = int(text) if text.isdigit() and len(text) < 19 else 0
    runtime = runtime_of(request)
    bus = request.app.state.events
    slots = request.app.state.streams

    async def read(after: int) -> Sequence[Event]:
        async with runtime.db.read() as session:
            return (await session.scalars(select(Event).where(
                Event.portal_id == viewer.portal_id, Event.user_id == viewer.user_id,
                Event.id > after).order_by(Event.id).limit(200))).all()

    try:
        slots.acquire(viewer.caller)
    except ApiError as exc:  # the API's 429: said as a page would
        raise PageError(429, "Too many pages open", "Close a few inboxlog tabs.") from exc
    stream = event_stream(read, bus, after, poll=LIVE_POLL_SECONDS, portal_id=viewer.portal_id)
    return SlotStream(stream, ping=15, send_timeout=30,
                       headers={"Cache-Control": "no-store"},
                       release=lambda: slots.release(viewer.caller))
