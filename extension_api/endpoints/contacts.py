"""Contacts (look-up, timeline, attachments, deletion and erasure) and their companies."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core import deletion, queries, tracked_sends
from core.retention import remove_orphan_blobs
from extension_api.auth import Principal, authenticated, require_admin, runtime_of
from extension_api.endpoints._params import path_id, query_int
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import respond
from extension_api.schemas.mail import (
    ContactDeleted,
    Erased,
    Lookup,
    company_of,
    contact_attachment_of,
    contact_of,
    email_summary_of,
)


@authenticated
async def list_contacts(request: Request, principal: Principal) -> Response:
    email = request.query_params.get("email")
    async with runtime_of(request).db.read() as session:
        if email is not None:
            found = await queries.contacts_by_email(session, principal.portal_id, email)
            return respond({"items": [contact_of(c) for c in found]})
        after = query_int(request, "after", 0, low=0, high=2**63 - 1)
        limit = query_int(request, "limit", 50, low=1, high=200)
        page = await queries.contacts_page(session, principal.portal_id, after=after, limit=limit)
        cursor = page[-1].id if len(page) == limit else None
        return respond({"items": [contact_of(c) for c in page], "cursor": cursor})


@authenticated
async def get_contact(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        found = await queries.contact(session, principal.portal_id, path_id(request))
        return respond(contact_of(found))


@authenticated
async def contact_timeline(request: Request, principal: Principal) -> Response:
    limit = query_int(request, "limit", 50, low=1, high=200)
    async with runtime_of(request).db.read() as session:
        emails = await queries.timeline(session, principal.portal_id, path_id(request), limit=limit,
                                        viewer=principal.user_id)
        counts = await tracked_sends.counts_for(session, emails)
        return respond({"items": [email_summary_of(e, counts.get(e.id)) for e in emails]})


@authenticated
async def contact_attachments(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        rows = await queries.contact_attachments(session, principal.portal_id, path_id(request),
                                                 viewer=principal.user_id)
        return respond({"items": [contact_attachment_of(a, e) for a, e in rows]})


@authenticated
async def get_company(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        found = await queries.company(session, principal.portal_id, path_id(request))
        return respond(company_of(found))


@authenticated
async def delete_contact(request: Request, principal: Principal) -> Response:
    erase = request.query_params.get("erase", "false").lower()
    if erase not in ("true", "false", "1", "0"):
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, "erase must be true or false")
    if erase in ("true", "1"):
        require_admin(principal, "erasing a contact")
    runtime = runtime_of(request)
    if erase in ("true", "1"):  # in chunks: one person's mail never holds the write lock long
        erased = await deletion.erase_contact(runtime.db, principal.portal_id, path_id(request))
    else:
        async with runtime.db.transaction() as session:
            erased = await deletion.delete_contact(session, principal.portal_id,
                                                   path_id(request), erase=False)
    request.app.state.links.forget()  # erased emails take their tracked sends along
    # Right to be forgotten: the files go now, not at the next periodic purge.
    blobs = await remove_orphan_blobs(runtime.db, runtime.blobs) if erase in ("true", "1") else 0
    return respond(ContactDeleted(deleted=True, erased=Erased(
        emails=erased.emails, attachments=erased.attachments, events=erased.events,
        audit_entries=erased.audit_entries, blobs=blobs)))


async def contact(request: Request) -> Response:
    handler = delete_contact if request.method == "DELETE" else get_contact
    return await handler(request)


@authenticated
async def lookup(request: Request, principal: Principal) -> Response:
    """The extension's sidebar: the contact, their company, recent emails with tracking."""
    email = request.query_params.get("email", "").strip()
    if not email:
        raise ApiError(400, ApiErrorCode.BAD_REQUEST, "give ?email=")
    limit = query_int(request, "limit", 10, low=1, high=50)
    async with runtime_of(request).db.read() as session:
        found = await queries.contacts_by_email(session, principal.portal_id, email)
        if not found:
            return respond(Lookup(contact=None, company=None, recent_emails=[]))
        contact = found[0]
        company = (await queries.company(session, principal.portal_id, contact.company_id)
                   if contact.company_id else None)
        emails = await queries.timeline(session, principal.portal_id, contact.id, limit=limit,
                                        viewer=principal.user_id)
        counts = await tracked_sends.counts_for(session, emails)
        return respond(Lookup(
            contact=contact_of(contact), company=company_of(company) if company else None,
            recent_emails=[email_summary_of(e, counts.get(e.id)) for e in emails]))
