"""Why not logged (the ingest log, searchable by sender, address and time; a team
inbox's entries only for its members and admins) and the
team page (users and their roles, for everyone; changing roles, invitations by mail
and the open ones, and how each user signs in, for admins)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response

from core import web_accounts, web_reads
from core.errors import RelayFailed, RelayNotConfigured
from core.storage.models import utcnow
from core.types import Role
from extension_api.pages import _dates, words
from extension_api.pages._web import (
    PageError,
    Viewer,
    form,
    redirect,
    render,
    require_admin,
    runtime_of,
    signed_in,
)


def _day(text: str, name: str) -> date | None:
    return _dates.day(text.strip(), name,
                      refuse=lambda message: PageError(422, "Not a date", message))


@signed_in
async def ingest_log_page(request: Request, viewer: Viewer) -> Response:
    params = request.query_params
    sender, address = params.get("sender", "")[:320], params.get("address", "")[:320]
    since, until = _day(params.get("since", ""), "From"), _day(params.get("until", ""), "To")
    async with runtime_of(request).db.read() as session:
        entries = await web_reads.ingest_log(
            session, viewer.portal_id, sender=sender, address=address,
            since=datetime.combine(since, time(), UTC) if since else None,
            until=(datetime.combine(until, time(), UTC) + timedelta(days=1)
                   if until else None),
            # A team inbox's refused mail names who wrote to it: its members' and the
            # admin's only (docs/tickets.md, "Who sees what").
            viewer=None if viewer.is_admin else viewer.user_id)
    shown = [{"entry": e, "reason": words.not_logged(e.reason_code, e.reason),
              "source": words.SOURCES_OF_REFUSAL.get(e.source, e.source)} for e in entries]
    return render(request, "ingest_log.html", shown=shown, sender=sender, address=address,
                  since=since.isoformat() if since else "",
                  until=until.isoformat() if until else "")


async def _team(request: Request, viewer: Viewer, *, status: int = 200, notice: str = "",
                link: str = "") -> Response:
    async with runtime_of(request).db.read() as session:
        members = await web_reads.team(session, viewer.portal_id)
        # A user sees who is on the team and their roles, read-only; who is invited and
        # who still signs in without a password is the admins' business.
        invitations = (await web_reads.open_invitations(session, viewer.portal_id, utcnow())
                       if viewer.is_admin else [])
    return render(request, "team.html", status=status, members=members,
                  invitations=invitations, roles=[r.value for r in Role], notice=notice,
                  link=link)


@signed_in
async def team_page(request: Request, viewer: Viewer) -> Response:
    return await _team(request, viewer)


@signed_in
async def invite(request: Request, viewer: Viewer) -> Response:
    """Invite an address by mail; a server that sends no mail shows the admin the link
    to pass on."""
    fields = await form(request)
    require_admin(viewer, "Inviting users")
    role = fields.get("role", "user")
    if role not in (r.value for r in Role):
        raise PageError(422, "Not invited", "The role is admin or user.")
    runtime = runtime_of(request)
    async with runtime.db.transaction() as session:
        issued = await web_accounts.invite(session, viewer.account, fields.get("email", ""),
                                           Role(role))
        portal = await web_accounts.portal_name(session, viewer.portal_id)
        address = issued.link.email
    url = issued.url(runtime.settings.base_url)
    try:
        sender = runtime.settings.outbound_mail
        await sender.send(web_accounts.link_message(
            kind=web_accounts.LinkPurpose.INVITE, to=address, portal_name=portal, url=url,
            sender=sender.sender), address)
    except (RelayNotConfigured, RelayFailed) as exc:
        return await _team(request, viewer, status=201, link=url,
                           notice=f"{exc.message}. Pass this invitation link on to "
                           f"{address} yourself (it works once, for 7 days):")
    return await _team(request, viewer, status=201,
                       notice=f"An invitation is on its way to {address}.")


@signed_in
async def change_role(request: Request, viewer: Viewer) -> Response:
    fields = await form(request)
    require_admin(viewer, "Changing roles")
    role = fields.get("role", "")
    if role not in (r.value for r in Role):
        raise PageError(422, "Not changed", "The role is admin or user.")
    async with runtime_of(request).db.transaction() as session:
        await web_accounts.change_role(session, viewer.account, request.path_params["id"],
                                       Role(role))
    return redirect(request, "/team")
