"""Team inboxes, teams, routing rules and agents' capacity (docs/tickets.md).

Setting them up is the admin's; a member reads the team inboxes they belong to (anyone
else's is a 404, as if it did not exist); an agent may set their own availability.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from core.inboxes import team_mailbox
from core.storage.models import Portal, TeamInbox
from core.tickets import inboxes
from extension_api.auth import Principal, authenticated, require_admin, runtime_of
from extension_api.endpoints._params import path_id
from extension_api.errors import ApiError, ApiErrorCode
from extension_api.schemas import read_body, respond
from extension_api.schemas.tickets import (
    AgentRequest,
    RoutingRuleRequest,
    TeamInboxRequest,
    TeamRequest,
    agent_of,
    rule_of,
    team_inbox_of,
    team_of,
)


async def _inbox_body(request: Request, session: AsyncSession, inbox: TeamInbox) -> object:
    portal = await session.get(Portal, inbox.portal_id)
    assert portal is not None
    return team_inbox_of(inbox, await inboxes.members_of(session, inbox.id), portal.bcc_token,
                         runtime_of(request).settings.bcc_domain,
                         await team_mailbox(session, inbox.id))


@authenticated
async def create_team_inbox(request: Request, principal: Principal) -> Response:
    require_admin(principal, "creating a team inbox")
    body = await read_body(request, TeamInboxRequest)
    async with runtime_of(request).db.transaction() as session:
        inbox = await inboxes.create_inbox(session, principal.portal_id, body.change())
        result = await _inbox_body(request, session, inbox)
    return respond(result, 201)


@authenticated
async def list_team_inboxes(request: Request, principal: Principal) -> Response:
    async with runtime_of(request).db.read() as session:
        found = await inboxes.list_inboxes(session, principal.portal_id, principal.user_id)
        return respond({"items": [await _inbox_body(request, session, i) for i in found]})


@authenticated
async def team_inbox(request: Request, principal: Principal) -> Response:
    inbox_id = path_id(request)
    if request.method == "GET":
        async with runtime_of(request).db.read() as session:
            inbox = await inboxes.visible_inbox(session, principal.portal_id,
                                                principal.user_id, inbox_id)
            return respond(await _inbox_body(request, session, inbox))
    async with runtime_of(request).db.transaction() as session:
        # A member learns nothing of an inbox they are not in: 404 before 403.
        await inboxes.visible_inbox(session, principal.portal_id, principal.user_id, inbox_id)
        require_admin(principal, "changing a team inbox")
        body = await read_body(request, TeamInboxRequest)
        inbox = await inboxes.update_inbox(session, principal.portal_id, inbox_id,
                                           body.change())
        result = await _inbox_body(request, session, inbox)
    return respond(result)


@authenticated
async def teams(request: Request, principal: Principal) -> Response:
    if request.method == "GET":
        async with runtime_of(request).db.read() as session:
            found = await inboxes.list_teams(session, principal.portal_id)
            return respond({"items": [team_of(t, await inboxes.team_user_ids(session, t.id))
                                      for t in found]})
    require_admin(principal, "creating a team")
    body = await read_body(request, TeamRequest)
    async with runtime_of(request).db.transaction() as session:
        team = await inboxes.save_team(
            session, principal.portal_id, None, name=body.change_name(),
            user_ids=body.change_users())
        result = team_of(team, await inboxes.team_user_ids(session, team.id))
    return respond(result, 201)


@authenticated
async def team(request: Request, principal: Principal) -> Response:
    require_admin(principal, "changing a team")
    body = await read_body(request, TeamRequest)
    async with runtime_of(request).db.transaction() as session:
        found = await inboxes.save_team(session, principal.portal_id, path_id(request),
                                        name=body.change_name(), user_ids=body.change_users())
        result = team_of(found, await inboxes.team_user_ids(session, found.id))
    return respond(result)


@authenticated
async def routing_rules(request: Request, principal: Principal) -> Response:
    require_admin(principal, "routing rules")
    if request.method == "GET":
        async with runtime_of(request).db.read() as session:
            found = await inboxes.list_rules(session, principal.portal_id)
            return respond({"items": [rule_of(r) for r in found]})
    body = await read_body(request, RoutingRuleRequest)
    async with runtime_of(request).db.transaction() as session:
        rule = await inboxes.save_rule(session, principal.portal_id, None, body.change())
        result = rule_of(rule)
    return respond(result, 201)


@authenticated
async def routing_rule(request: Request, principal: Principal) -> Response:
    require_admin(principal, "routing rules")
    rule_id = path_id(request)
    if request.method == "DELETE":
        async with runtime_of(request).db.transaction() as session:
            result = rule_of(await inboxes.delete_rule(session, principal.portal_id, rule_id))
        return respond(result)
    body = await read_body(request, RoutingRuleRequest)
    async with runtime_of(request).db.transaction() as session:
        rule = await inboxes.save_rule(session, principal.portal_id, rule_id, body.change())
        result = rule_of(rule)
    return respond(result)


@authenticated
async def agent(request: Request, principal: Principal) -> Response:
    """An agent's availability (the admin, or the agent themself) and capacity (the
    admin only)."""
    user_id = path_id(request)
    body = await read_body(request, AgentRequest)
    if not principal.is_admin and (principal.user_id != user_id or body.sets_capacity()):
        raise ApiError(403, ApiErrorCode.FORBIDDEN,
                       "an agent sets only their own availability; capacity is the admin's")
    async with runtime_of(request).db.transaction() as session:
        row = await inboxes.set_capacity(
            session, principal.portal_id, user_id, capacity=body.capacity_value(),
            set_capacity=body.sets_capacity(), available=body.available_value())
        result = agent_of(row)
    return respond(result)
