"""The ticket pages: a viewer's tickets (the team inboxes they are a member of; the
admin's: all), and a ticket with its conversation, controls, reply and note boxes, and
the warning when another agent is on it (docs/tickets.md, "Pages").

Every change goes through core's ticket functions, as the API's do (``service.change``,
``service.assign``, ``replies.reply``, ``notes.add_note``, ``presence``): the pages
decide nothing of their own. A ticket of an inbox the viewer is not a member of, or of
another portal, is a 404, as over the API. Opening a ticket registers the viewer as
viewing it; the page's script renews that (``replying`` while they write) and shows
who else is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import queries
from core.errors import InvalidInput, NotFound, RelayFailed, RelayNotConfigured
from core.inboxes import MailboxSendFailed
from core.storage.models import (
    Company,
    Contact,
    Email,
    Event,
    TeamInbox,
    Ticket,
    TicketActivity,
    User,
)
from core.tickets import access, canned, notes, presence, replies, service
from core.tickets.activity import Kind
from core.tickets.inboxes import list_inboxes
from core.tickets.matching import Status
from core.tickets.presence import Present, ReplyCollision, State
from core.tickets.rules import Priority
from extension_api.endpoints.ticket_replies import mailbox_failure
from extension_api.errors import ApiError
from extension_api.live import event_stream
from extension_api.pages import _ticket_reads, words
from extension_api.pages._web import (
    PageError,
    Viewer,
    form,
    label_field,
    redirect,
    render,
    runtime_of,
    security_headers,
    signed_in,
)
from extension_api.pages.crm import frame_document
from extension_api.pages.setup import LIVE_POLL_SECONDS
from extension_api.throttle import SlotStream

PAGE_SIZE = 25
MAX_PAGE = 10_000
MAX_LABEL = 50  # a pipeline, stage or tag, as the API's
MAX_TAGS = 50
ASSIGNEES = {"": "anyone", "me": "me", "none": "unassigned"}
_EMAIL_KINDS = {Kind.CREATED.value: "opened the ticket",
                Kind.CUSTOMER_MESSAGE.value: "wrote", Kind.AGENT_REPLY.value: "replied",
                Kind.AUTOMATIC.value: "an automatic reply (changes nothing)"}


def _who(viewer: Viewer) -> int | None:
    """Whose membership a read counts: None for an admin, who sees every inbox."""
    return None if viewer.is_admin else viewer.user_id


def _ticket_id(request: Request) -> int:
    value = request.path_params.get("id")
    if not isinstance(value, int) or not 0 < value < 2**63:
        raise PageError(404, "Not found", "There is no such ticket.")
    return value


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise PageError(400, "Not a filter", f"{name} is one of {', '.join(allowed)}.")
    return value


def _number(value: str, name: str, high: int = 2**63 - 1) -> int | None:
    if not value:
        return None
    if not (value.isdigit() and 0 < int(value) <= high):
        raise PageError(400, "Not a filter", f"{name} is a number from 1 to {high}.")
    return int(value)


# --- the list --------------------------------------------------------------------------

@signed_in
async def tickets_page(request: Request, viewer: Viewer) -> Response:
    """``/tickets?team_inbox_id=&status=&assignee=me|none&priority=&page=`` (the reports
    page's name for the inbox; ``inbox=``, the older one, still works)."""
    params = request.query_params
    given = {name: params.get(name, "").strip()[:40]
             for name in ("inbox", "status", "assignee", "priority")}
    named = params.get("team_inbox_id", "").strip()[:40]
    if named and given["inbox"] and named != given["inbox"]:
        raise PageError(400, "Not a filter", "Give team_inbox_id once (inbox is its old name).")
    given["inbox"] = named or given["inbox"]
    page = _number(params.get("page", ""), "page", MAX_PAGE) or 1
    status = _choice(given["status"], tuple(Status), "status")
    priority = _choice(given["priority"], tuple(Priority), "priority")
    assignee = _choice(given["assignee"], ("me", "none"), "assignee")
    inbox_id = _number(given["inbox"], "team_inbox_id")
    wanted = service.Filter(
        status=Status(status) if status else None, team_inbox_id=inbox_id,
        assignee_user_id=viewer.user_id if assignee == "me" else None,
        unassigned=assignee == "none", priority=Priority(priority) if priority else None,
        order=service.Order.LATEST_ACTIVITY, offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE + 1)
    async with runtime_of(request).db.read() as session:
        inboxes = list(await list_inboxes(session, viewer.portal_id, _who(viewer)))
        found = list(await service.tickets(session, viewer.portal_id, _who(viewer), wanted))
        more, found = len(found) > PAGE_SIZE, found[:PAGE_SIZE]
        people = await _ticket_reads.users(
            session, viewer.portal_id, [t.assignee_user_id for t in found])
        customers = await _ticket_reads.contacts(
            session, viewer.portal_id, [t.contact_id for t in found])
    names = {inbox.id: inbox.name for inbox in inboxes}
    if inbox_id is not None and inbox_id not in names:
        raise PageError(404, "Not found", "There is no such team inbox.")
    filters = {"team_inbox_id" if k == "inbox" else k: v for k, v in given.items() if v}
    pages = {"newer": f"/tickets?{urlencode({**filters, 'page': page - 1})}"
             if page > 1 else "",
             "older": f"/tickets?{urlencode({**filters, 'page': page + 1})}"
             if more else ""}
    return render(request, "tickets.html", tickets=found, inboxes=inboxes,
                  inbox_names=names, people=people, customers=customers, given=given,
                  statuses=tuple(Status), priorities=tuple(Priority), assignees=ASSIGNEES,
                  page=page, pages=pages)


# --- one ticket ------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One item of the conversation: an email, a note or a change, at ``at``."""

    kind: str  # "email", "note" or "change"
    at: datetime
    anchor: str
    sentence: str = ""
    email: Email | None = None
    frame: str = ""
    note: notes.Note | None = None


def _label(user: User | None) -> str:
    if user is None:
        return "someone"
    return f"{user.name} ({user.email})" if user.name.strip() else user.email


def _sentence(row: TicketActivity, people: dict[int, User]) -> str:
    """A change in the log, in words."""
    actor = people.get(row.actor_user_id) if row.actor_user_id else None
    by = f" by {_label(actor)}" if actor is not None else ""
    how = (row.detail or {}).get("how") or (row.detail or {}).get("reason")
    why = {"rule": " (a routing rule)", "round_robin": " (round-robin)",
           "customer_reply": " (the customer replied)"}.get(str(how), "")
    if row.kind == Kind.ASSIGNED.value and (row.detail or {}).get("how") == "rule_not_followed":
        named = ("a team with nobody in the inbox"
                 if (row.detail or {}).get("reason") == "team_not_member"
                 else "someone outside the inbox")
        return f"Not assigned (a routing rule named {named})"
    if row.kind == Kind.ASSIGNED.value:
        target = row.to_value or ""
        if target.startswith("user:") and target[5:].isdigit():
            whom = _label(people.get(int(target[5:])))
        elif target.startswith("team:"):
            whom = f"team {target[5:]}"
        else:
            whom = "nobody"
        return f"Assigned to {whom}{by}{why}"
    if row.kind == Kind.MERGED.value:
        return (f"Merged into ticket {row.to_value}{by}" if row.to_value
                else f"Ticket {row.from_value} was merged into this one{by}")
    name = {"status": "Status", "priority": "Priority", "stage": "Stage",
            "pipeline": "Pipeline"}.get(row.kind, row.kind)
    return f"{name} {row.from_value or '—'} → {row.to_value or '—'}{by}{why}"


def _entries(emails: list[Email], log: list[TicketActivity], people: dict[int, User],
             images: bool) -> list[Entry]:
    by_id = {email.id: email for email in emails}
    shown: set[int] = set()
    entries: list[Entry] = []
    for row in log:
        if row.email_id is not None and row.email_id in by_id and row.email_id not in shown:
            email = by_id[row.email_id]
            shown.add(email.id)
            entries.append(Entry("email", row.at, f"activity-{row.id}",
                                 _EMAIL_KINDS.get(row.kind, ""), email=email,
                                 frame=frame_document(email.html, remote_images=images)
                                 if email.html else ""))
        elif row.kind == Kind.NOTE.value:
            entries.append(Entry("note", row.at, f"activity-{row.id}", note=notes.note_of(row)))
        elif row.kind in (Kind.STATUS.value, Kind.ASSIGNED.value, Kind.PRIORITY.value,
                          Kind.STAGE.value, Kind.PIPELINE.value, Kind.MERGED.value):
            entries.append(Entry("change", row.at, f"activity-{row.id}",
                                 _sentence(row, people)))
    for email in emails:  # mail of a ticket merged into this one has no activity here
        if email.id not in shown:
            entries.append(Entry("email", email.sent_at, f"email-{email.id}", "wrote",
                                 email=email, frame=frame_document(
                                     email.html, remote_images=images) if email.html else ""))
    return sorted(entries, key=lambda e: e.at)


def others_of(present: list[Present]) -> list[dict[str, str]]:
    """The other agents on a ticket, as the page and its script show them."""
    return [{"name": p.name or p.email, "email": p.email, "state": p.state.value}
            for p in present]


async def _ticket_context(request: Request, viewer: Viewer, ticket_id: int, *,
                          register: bool = True) -> dict[str, Any]:
    """Everything the ticket page shows. Opening it registers the viewer's presence."""
    runtime = runtime_of(request)
    images = request.query_params.get("images") == "1"
    async with runtime.db.transaction() as session:
        found = await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
        if register:
            await presence.register(session, found, viewer.user_id, State.VIEWING)
    async with runtime.db.read() as session:
        found = await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
        assert found.team_inbox_id is not None
        inbox = await session.get(TeamInbox, found.team_inbox_id)
        assert inbox is not None
        emails = list(await service.emails_of(session, found.id))
        log = list(await service.activity_of(session, found.id))
        member_ids = await access.inbox_members(session, found.team_inbox_id)
        people = await _ticket_reads.users(session, viewer.portal_id, [
            *member_ids, found.assignee_user_id, viewer.user_id,
            *(row.actor_user_id for row in log),
            *(int(row.to_value[5:]) for row in log if row.kind == Kind.ASSIGNED.value
              and row.to_value and row.to_value.startswith("user:")
              and row.to_value[5:].isdigit())])
        customers = await _ticket_reads.contacts(
            session, viewer.portal_id, [found.contact_id,
                                        *await service.contact_ids(session, found.id)])
        contact: Contact | None = customers.get(found.contact_id) if found.contact_id else None
        company_id = found.company_id or (contact.company_id if contact else None)
        company: Company | None = None
        if company_id is not None:
            company = await queries.company(session, viewer.portal_id, company_id)
        responses = list(await canned.list_responses(session, viewer.portal_id, _who(viewer),
                                                     found.team_inbox_id))
        chosen = _number(request.query_params.get("canned", ""), "canned")
        prefill = ""
        if chosen is not None:
            response = await canned.get_response(session, viewer.portal_id, _who(viewer),
                                                 found.team_inbox_id, chosen)
            prefill = canned.render(response.body, await canned.context_of(
                session, found, people[viewer.user_id]))
        others = others_of(await presence.others(session, found.id, viewer.user_id))
        version = await presence.last_activity(session, found.id)
        events_after = await _ticket_reads.last_event_id(session, viewer.portal_id)
    return {"ticket": found, "inbox": inbox, "entries": _entries(emails, log, people, images),
            "contact": contact, "company": company,
            "customers": [c for c in customers.values() if c.id != found.contact_id],
            "members": [people[m] for m in member_ids if m in people], "people": people,
            "assignee": people.get(found.assignee_user_id) if found.assignee_user_id else None,
            "is_member": viewer.user_id in member_ids, "responses": responses,
            "chosen": chosen, "prefill": prefill, "others": others, "version": version,
            "events_after": events_after,
            "statuses": tuple(Status), "priorities": tuple(Priority), "images": images,
            "source": words.source,
            "inline_styles": any(e.html for e in emails), "remote_images": images}


def _show(request: Request, context: dict[str, Any], *, status: int = 200,
          **extra: Any) -> Response:
    values = {"reply_text": context.pop("prefill"), "collision": None, **extra}
    return render(request, "ticket.html", status=status,
                  inline_styles=context.pop("inline_styles"),
                  remote_images=context.pop("remote_images"), values=values, **context)


@signed_in
async def ticket_page(request: Request, viewer: Viewer) -> Response:
    """``/tickets/{id}`` (``?canned=<id>`` fills the reply box with that canned
    response for this ticket; ``?images=1`` shows the emails' remote images;
    ``?refresh=1`` is the page's script reading it again, which leaves the viewer's
    presence as the script last said: replying stays replying)."""
    refresh = request.query_params.get("refresh") == "1"
    return _show(request, await _ticket_context(request, viewer, _ticket_id(request),
                                                register=not refresh))


async def _editable(request: Request, viewer: Viewer) -> tuple[dict[str, str], int]:
    fields = await form(request)
    ticket_id = _ticket_id(request)
    async with runtime_of(request).db.read() as session:  # a 404 before anything else
        await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
    return fields, ticket_id


def _assignee_value(found: Ticket) -> str:
    """What the assignee control shows selected for the ticket as it is."""
    if found.assignee_user_id is not None:
        return f"user:{found.assignee_user_id}"
    return f"team:{found.assignee_team_id}" if found.assignee_team_id is not None else ""


def _label_of(fields: dict[str, str], name: str) -> str | None:
    """A pipeline or stage as typed: None (unchanged) when empty or missing."""
    value = label_field(name, fields.get(name, "").strip())
    if len(value) > MAX_LABEL:
        raise PageError(400, "Not changed", f"A {name} is at most {MAX_LABEL} characters.")
    return value or None


def _tags_of(fields: dict[str, str]) -> tuple[str, ...] | None:
    """The tags, comma-separated (an empty field: none); None when the form has no
    ``tags`` (unchanged)."""
    if "tags" not in fields:
        return None
    tags = tuple(dict.fromkeys(t.strip() for t in label_field("tags", fields["tags"])
                               .split(",") if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_LABEL for t in tags):
        raise PageError(400, "Not changed", f"At most {MAX_TAGS} tags, each at most "
                        f"{MAX_LABEL} characters.")
    return tags


@signed_in
async def update(request: Request, viewer: Viewer) -> Response:
    """The controls: ``status``, ``priority``, ``assignee`` (``user:<id>``, or empty
    for nobody), ``pipeline``, ``stage`` and ``tags`` (comma-separated); a field left as
    it was changes nothing (an assignee who has left the inbox, or a team's queue, stays
    as it is unless another is chosen; an empty pipeline or stage is left as it is)."""
    fields, ticket_id = await _editable(request, viewer)
    status = _choice(fields.get("status", ""), tuple(Status), "status")
    priority = _choice(fields.get("priority", ""), tuple(Priority), "priority")
    pipeline, stage = _label_of(fields, "pipeline"), _label_of(fields, "stage")
    tags = _tags_of(fields)
    async with runtime_of(request).db.transaction() as session:
        found = await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
        value = fields.get("assignee", _assignee_value(found))
        if value != _assignee_value(found):  # as it was (a team's queue too): unchanged
            if value and not (value.startswith("user:") and value[5:].isdigit()
                              and 0 < int(value[5:]) < 2**63):
                raise PageError(422, "Not changed", "Choose an agent of this inbox, or "
                                "nobody.")
            await service.assign(session, found, user_id=int(value[5:]) if value else None,
                                 team_id=None, actor=viewer.user_id)
        await service.change(session, found, service.Change(
            status=Status(status) if status and status != found.status else None,
            priority=Priority(priority) if priority else None, pipeline=pipeline,
            stage=stage, tags=None if tags == tuple(found.tags or ()) else tags),
            actor=viewer.user_id)
    return redirect(request, f"/tickets/{ticket_id}")


@signed_in
async def merge(request: Request, viewer: Viewer) -> Response:
    """Merge this ticket into ticket ``into`` (of the same inbox): core's merge, as the
    API's; the page goes to the ticket that lives on."""
    fields, ticket_id = await _editable(request, viewer)
    into_id = _number(fields.get("into", "").strip().lstrip("#"), "into")
    if into_id is None:
        raise PageError(400, "Not merged", "Give the number of the ticket to merge into.")
    async with runtime_of(request).db.transaction() as session:
        found = await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
        into = await service.merge(session, viewer.portal_id, _who(viewer), found, into_id)
        into_id = into.id
    return redirect(request, f"/tickets/{into_id}")


@signed_in
async def live(request: Request, viewer: Viewer) -> Response:
    """The ticket's ``ticket_*`` events after ``?after=`` (or Last-Event-ID) as
    Server-Sent Events, then as they happen (``extension_api.live.event_stream``, as
    ``/live``): the page's script refreshes the conversation on each."""
    ticket_id = _ticket_id(request)
    runtime = runtime_of(request)
    async with runtime.db.read() as session:  # a 404 before the stream opens
        await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
    text = request.headers.get("last-event-id") or request.query_params.get("after", "0")
    after = int(text) if text.isdigit() and len(text) < 19 else 0
    feed = _ticket_reads.TicketFeed(viewer.portal_id, ticket_id)

    async def read(after: int) -> Sequence[Event]:
        async with runtime.db.read() as session:
            found = await feed.read(session, after)
            if found:  # still theirs (taken out of the inbox since: nothing more)
                try:
                    await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
                except NotFound:
                    return []
            return found

    # A budget of its own beside the user's (a ticket page holds /live too): as many
    # ticket pages as other pages open at once, still a bound per user.
    slots, caller = request.app.state.streams, f"{viewer.caller}:tickets"
    try:
        slots.acquire(caller)
    except ApiError as exc:  # the API's 429: said as a page would
        raise PageError(429, "Too many pages open", "Close a few inboxlog tabs.") from exc
    stream = event_stream(read, request.app.state.events, after, poll=LIVE_POLL_SECONDS,
                          portal_id=viewer.portal_id)
    return SlotStream(stream, ping=15, send_timeout=30, headers={"Cache-Control": "no-store"},
                      release=lambda: slots.release(caller))


@signed_in
async def reply(request: Request, viewer: Viewer) -> Response:
    """Send the reply box: ``text``, ``then`` (a status after it), ``seen`` (the
    ticket version the page showed: another agent's reply since is a collision) and
    ``force`` (send anyway)."""
    fields, ticket_id = await _editable(request, viewer)
    then = _choice(fields.get("then", ""), (Status.PENDING.value, Status.CLOSED.value),
                   "then")
    seen = _number(fields.get("seen", ""), "seen")
    text = fields.get("text", "")
    wanted = replies.ReplyRequest(text=text, seen_activity_id=seen,
                                  force=fields.get("force") == "1",
                                  status=Status(then) if then else None)
    runtime = runtime_of(request)
    try:
        sent = await replies.reply(runtime, viewer.portal_id, viewer.user_id, ticket_id,
                                   wanted)
    except ReplyCollision as exc:
        context = await _ticket_context(request, viewer, ticket_id, register=False)
        async with runtime.db.read() as session:
            people = await _ticket_reads.users(session, viewer.portal_id,
                                               [c.user_id for c in exc.crossed])
        crossed = [{"who": _label(people.get(c.user_id) if c.user_id else None),
                    "at": c.at, "email_id": c.email_id} for c in exc.crossed]
        context["prefill"] = text
        return _show(request, context, status=409, collision=crossed,
                     reply_then=then or "")
    except RelayNotConfigured:
        raise PageError(409, "Not sent", "This server sends no mail (it has no SMTP "
                        "relay): the reply was not sent, nor logged.") from None
    except MailboxSendFailed as exc:  # the team mailbox's error, as the API says it
        failure = mailbox_failure(exc.error)
        raise PageError(failure.status_code, "Not sent", "The team mailbox did not send "
                        f"the reply, which was not logged: {failure.detail} "
                        f"({failure.code})", failure.headers) from None
    except RelayFailed as exc:
        raise PageError(502, "Not sent", f"The mail relay refused the reply, which was "
                        f"not logged: {exc.message}") from None
    except NotFound:
        raise PageError(403, "Members reply", "Only the members of this ticket's inbox "
                        "reply to it.") from None
    return redirect(request, f"/tickets/{ticket_id}#activity-{sent.activity_id}")


@signed_in
async def add_note(request: Request, viewer: Viewer) -> Response:
    """An internal note (never sent); ``@address`` mentions a member of the inbox."""
    fields, ticket_id = await _editable(request, viewer)
    async with runtime_of(request).db.transaction() as session:
        found = await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
        note = await notes.add_note(session, found, viewer.user_id, fields.get("text", ""))
    return redirect(request, f"/tickets/{ticket_id}#activity-{note.id}")


@signed_in
async def report_presence(request: Request, viewer: Viewer) -> Response:
    """The page's script: ``state`` viewing, replying or left; answers (JSON) the
    others on the ticket."""
    fields, ticket_id = await _editable(request, viewer)
    state = fields.get("state", "")
    if state not in ("viewing", "replying", "left"):
        raise InvalidInput("state is viewing, replying or left")
    async with runtime_of(request).db.transaction() as session:
        found = await service.ticket(session, viewer.portal_id, _who(viewer), ticket_id)
        if state == "left":
            await presence.leave(session, found.id, viewer.user_id)
        else:
            await presence.register(session, found, viewer.user_id, State(state))
        others = others_of(await presence.others(session, found.id, viewer.user_id))
    return JSONResponse({"others": others}, headers=security_headers())
