"""The pages' URL map (mounted by ``extension_api.routes``)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from extension_api.pages import (
    admin,
    crm,
    grants,
    inboxes,
    password,
    reports,
    search,
    setup,
    sign_in,
    tickets,
    tokens,
    tracking,
)
from extension_api.pages._web import HERE


class _Static(StaticFiles):
    """Our CSS and JavaScript, never sniffed as anything else."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


routes = [
    Route("/", sign_in.home),
    Route("/sign-in", sign_in.sign_in_page, methods=["GET"]),
    Route("/sign-in", sign_in.sign_in, methods=["POST"]),
    Route("/sign-in/link", sign_in.request_sign_in_link, methods=["POST"]),
    Route("/sign-out", sign_in.sign_out, methods=["POST"]),
    Route("/password-reset", sign_in.reset_page, methods=["GET"]),
    Route("/password-reset", sign_in.request_reset, methods=["POST"]),
    Route("/link", sign_in.link_page, methods=["GET"]),
    Route("/link", sign_in.follow_link, methods=["POST"]),
    Route("/setup", setup.setup_page, methods=["GET"]),
    Route("/setup/settings", setup.save_settings, methods=["POST"]),
    Route("/live", setup.live),
    Route("/contacts", crm.contacts_page),
    Route("/contacts/{id:int}", crm.contact_page),
    Route("/companies/{id:int}", crm.company_page),
    Route("/threads/{id:int}", crm.thread_page),
    Route("/emails/{id:int}", crm.email_page),
    Route("/emails/{id:int}/move", crm.move_email, methods=["POST"]),
    Route("/files/{id:int}", crm.attachment),
    Route("/search", search.search_page),
    Route("/not-logged", admin.ingest_log_page),
    Route("/inboxes", inboxes.inboxes_page, methods=["GET"]),
    Route("/inboxes", inboxes.connect, methods=["POST"]),
    Route("/inboxes/{id:int}/sync", inboxes.sync, methods=["POST"]),
    Route("/inboxes/{id:int}/disconnect", inboxes.disconnect, methods=["POST"]),
    Route("/inboxes/connect/{provider}", inboxes.connect_with, methods=["POST"]),
    Route("/tracking", tracking.sends_page),
    Route("/tracking/{id:int}", tracking.send_page),
    Route("/team", admin.team_page, methods=["GET"]),
    Route("/team/invite", admin.invite, methods=["POST"]),
    Route("/team/{id:int}/role", admin.change_role, methods=["POST"]),
    Route("/oauth/authorize", grants.authorize_page, methods=["GET"]),
    Route("/oauth/authorize", grants.authorize, methods=["POST"]),
    Route("/oauth/token", grants.token, methods=["POST"]),
    Route("/oauth/revoke", grants.revoke, methods=["POST"]),
    Route("/password", password.password_page, methods=["GET"]),
    Route("/password", password.change_password, methods=["POST"]),
    Route("/tokens", tokens.tokens_page, methods=["GET"]),
    Route("/tokens", tokens.create_token, methods=["POST"]),
    Route("/tokens/{id:int}/revoke", tokens.revoke_token, methods=["POST"]),
    Route("/tickets", tickets.tickets_page),
    Route("/tickets/{id:int}", tickets.ticket_page),
    Route("/tickets/{id:int}/update", tickets.update, methods=["POST"]),
    Route("/tickets/{id:int}/reply", tickets.reply, methods=["POST"]),
    Route("/tickets/{id:int}/notes", tickets.add_note, methods=["POST"]),
    Route("/tickets/{id:int}/presence", tickets.report_presence, methods=["POST"]),
    Route("/tickets/{id:int}/merge", tickets.merge, methods=["POST"]),
    Route("/tickets/{id:int}/live", tickets.live),
    Route("/reports", reports.reports_page),
    Mount("/static", _Static(directory=HERE / "static"), name="static"),
]
