"""The CRM pages: contacts (search), a contact's timeline and files, a company's
contacts and email, a thread with each email, and moving an email to another thread.

An email's HTML (sanitized at ingest) is shown in an ``iframe`` with ``srcdoc`` and an
empty ``sandbox``: no script runs, the frame has no origin of its own, and it inherits
the page's CSP, whose ``img-src`` allows remote images only when the user asks
(``?images=1``): they tell the sender the reader's IP address and when they read.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from core import queries, regroup, tracked_sends, web_reads
from core.errors import NotFound
from core.storage.models import Email
from extension_api.pages import words
from extension_api.pages._web import (
    PageError,
    Viewer,
    form,
    redirect,
    render,
    runtime_of,
    signed_in,
)

TIMELINE_LENGTH = 200


def _path_id(request: Request, name: str = "id") -> int:
    value = request.path_params.get(name)
    if not isinstance(value, int) or not 0 < value < 2**63:
        raise PageError(404, "Not found", "There is no such page.")
    return value


def _who(viewer: Viewer) -> int | None:
    """Whose eyes the read is for: an admin sees every email, a user not the team
    inboxes' they are not a member of (docs/tickets.md)."""
    return None if viewer.is_admin else viewer.user_id


@signed_in
async def contacts_page(request: Request, viewer: Viewer) -> Response:
    text = request.query_params.get("q", "")[:200]
    async with runtime_of(request).db.read() as session:
        found = await web_reads.search_contacts(session, viewer.portal_id, text)
    return render(request, "contacts.html", q=text, contacts=found)


@signed_in
async def contact_page(request: Request, viewer: Viewer) -> Response:
    async with runtime_of(request).db.read() as session:
        contact = await queries.contact(session, viewer.portal_id, _path_id(request))
        company = (await queries.company(session, viewer.portal_id, contact.company_id)
                   if contact.company_id else None)
        emails = await queries.timeline(session, viewer.portal_id, contact.id, viewer=_who(viewer),
                                        limit=TIMELINE_LENGTH)
        counts = await tracked_sends.counts_for(session, emails)
        files = await queries.contact_attachments(session, viewer.portal_id, contact.id,
                                                  viewer=_who(viewer))
    return render(request, "contact.html", contact=contact, company=company,
                  emails=emails, counts=counts, files=files, source=words.source)


@signed_in
async def company_page(request: Request, viewer: Viewer) -> Response:
    async with runtime_of(request).db.read() as session:
        company = await queries.company(session, viewer.portal_id, _path_id(request))
        people = await web_reads.company_contacts(session, viewer.portal_id, company.id)
        emails: dict[int, Email] = {}
        for person in people:
            for email in await queries.timeline(session, viewer.portal_id, person.id,
                                                viewer=_who(viewer), limit=TIMELINE_LENGTH):
                emails[email.id] = email
        ordered = sorted(emails.values(), key=lambda e: (e.sent_at, e.id), reverse=True)
        counts = await tracked_sends.counts_for(session, ordered)
    return render(request, "company.html", company=company, people=people,
                  emails=ordered[:TIMELINE_LENGTH], counts=counts, source=words.source)


_FRAME = ('<!doctype html><html><head><meta charset="utf-8">'
          '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
          'style-src \'unsafe-inline\'; img-src data:{images}">'
          '<style>body{{font:15px/1.45 system-ui,sans-serif;margin:.5rem;'
          'overflow-wrap:anywhere;color:#1d232b}}img{{max-width:100%}}</style></head>'
          '<body>{html}</body></html>')


def frame_document(html: str, *, remote_images: bool) -> str:
    """The ``srcdoc`` of an email's frame: its sanitized HTML under a CSP of its own,
    which can only narrow the page's (no script, images inline unless asked)."""
    return _FRAME.format(images=" https: http:" if remote_images else "", html=html)


@signed_in
async def thread_page(request: Request, viewer: Viewer) -> Response:
    """A thread's emails; ``?move=<email id>&find=<words>`` narrows that email's list
    of threads to move it to (its contacts' threads) to subjects with the words."""
    images = request.query_params.get("images") == "1"
    moving = request.query_params.get("move", "")
    find = request.query_params.get("find", "")[:200]
    async with runtime_of(request).db.read() as session:
        thread = await queries.thread(session, viewer.portal_id, _path_id(request))
        emails = await queries.thread_emails(session, viewer.portal_id, thread.id,
                                             viewer=_who(viewer))
        # Titled by the first email the viewer sees: a thread that also holds a team
        # inbox's mail must not show a non-member that mail's subject.
        subject = await queries.thread_subject(session, thread, emails, viewer=_who(viewer))
        counts = await tracked_sends.counts_for(session, emails)
        targets = {email.id: await web_reads.move_targets(
            session, viewer.portal_id, email.id, viewer=_who(viewer),
            text=find if moving == str(email.id) else "") for email in emails}
    shown = []
    for index, email in enumerate(emails):
        earlier = emails[index - 1] if index else None
        parent = (f"\u201c{earlier.subject or '(no subject)'}\u201d of "
                  f"{earlier.sent_at:%Y-%m-%d}" if earlier else "")
        shown.append({
            "email": email, "reason": words.thread_reason(email.thread_reason, parent),
            "frame": frame_document(email.html, remote_images=images) if email.html else "",
            "tracking": counts.get(email.id),
            "sources": [words.source(s.source) for s in email.sources],
            "targets": targets[email.id],
            "find": find if moving == str(email.id) else "",
        })
    return render(request, "thread.html", thread=thread, subject=subject, shown=shown,
                  images=images, moving=moving, inline_styles=True, remote_images=images)


@signed_in
async def move_email(request: Request, viewer: Viewer) -> Response:
    """Move an email to the thread of id ``thread_id``, or split it off (empty)."""
    fields = await form(request)
    email_id = _path_id(request)
    target_text = fields.get("thread_id", "").strip().removeprefix("#")
    if target_text and not (target_text.isdigit() and len(target_text) < 19):
        raise PageError(422, "Not moved", "Choose the thread to move it to, "
                        "or nothing to give it a thread of its own.")
    async with runtime_of(request).db.transaction() as session:
        email = await queries.email(session, viewer.portal_id, email_id, viewer=_who(viewer))
        if not viewer.is_admin and email.user_id not in (None, viewer.user_id):
            raise PageError(403, "Not yours", "This email was logged by another user: "
                            "only they or an admin may move it.")
        if target_text:  # not into a thread of only mail they may not see (its subject)
            await queries.visible_thread(session, viewer.portal_id, int(target_text),
                                         viewer=_who(viewer))
        moved = await regroup.move_to_thread(session, viewer.portal_id, email_id,
                                             int(target_text) if target_text else None)
        thread_id = moved.thread_id
    return redirect(request, f"/threads/{thread_id}#email-{email_id}")


@signed_in
async def attachment(request: Request, viewer: Viewer) -> Response:
    """A logged file, as a download (never rendered as a page of this origin)."""
    runtime = runtime_of(request)
    async with runtime.db.read() as session:
        found = await queries.attachment(session, viewer.portal_id, _path_id(request),
                                         viewer=_who(viewer))
    safe = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
            "Cache-Control": "no-store"}
    if found.blob_sha256 is None:
        raise NotFound("this attachment was listed but not stored")
    path = runtime.blobs.local_path(found.blob_sha256)
    if path is not None and path.exists():
        return FileResponse(path, media_type=found.content_type, filename=found.filename,
                            content_disposition_type="attachment", headers=safe)
    reader = await runtime.blobs.open(found.blob_sha256) if path is None else None
    if reader is None:
        raise NotFound("the attachment's file is gone")
    return StreamingResponse(reader.chunks, media_type=found.content_type, headers={
        **safe, "Content-Length": str(reader.size),
        "Content-Disposition": f"attachment; filename*=utf-8''{quote(found.filename)}"})


@signed_in
async def email_page(request: Request, viewer: Viewer) -> Response:
    """An email is shown in its thread: go there."""
    async with runtime_of(request).db.read() as session:
        email = await queries.email(session, viewer.portal_id, _path_id(request),
                                    viewer=_who(viewer))
        thread_id = email.thread_id
    return redirect(request, f"/threads/{thread_id}#email-{email.id}")
