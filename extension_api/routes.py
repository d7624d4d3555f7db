"""The whole URL map on one screen."""

from __future__ import annotations

from starlette.routing import Route

from extension_api.endpoints import (
    account,
    attachments,
    audit,
    contacts,
    emails,
    events,
    inboxes,
    oauth,
    system,
    tokens,
    tracked_sends,
    tracking,
    users,
)

API = "/api/v1"

routes = [
    # First: the router tries routes in order, and these take the most requests by far.
    Route("/t/o/{token}", tracking.pixel),
    Route("/t/c/{token}", tracking.click),
    Route(f"{API}/me", account.me),
    Route(f"{API}/settings", account.settings, methods=["GET", "PATCH"]),
    Route(f"{API}/settings/rotate-logging-address", account.rotate_logging_address,
          methods=["POST"]),
    Route(f"{API}/tokens", tokens.list_tokens, methods=["GET"]),
    Route(f"{API}/tokens", tokens.create, methods=["POST"]),
    Route(f"{API}/tokens/{{id:int}}", tokens.revoke, methods=["DELETE"]),
    Route(f"{API}/users", users.list_users, methods=["GET"]),
    Route(f"{API}/users", users.add_user, methods=["POST"]),
    Route(f"{API}/contacts", contacts.list_contacts),
    Route(f"{API}/contacts/lookup", contacts.lookup),
    Route(f"{API}/contacts/{{id:int}}", contacts.contact, methods=["GET", "DELETE"]),
    Route(f"{API}/contacts/{{id:int}}/timeline", contacts.contact_timeline),
    Route(f"{API}/contacts/{{id:int}}/attachments", contacts.contact_attachments),
    Route(f"{API}/companies/{{id:int}}", contacts.get_company),
    Route(f"{API}/emails", emails.find_emails),
    Route(f"{API}/emails/send", inboxes.send_email, methods=["POST"]),
    Route(f"{API}/emails/log", emails.log_email, methods=["POST"]),
    Route(f"{API}/emails/{{id:int}}", emails.email, methods=["GET", "DELETE"]),
    Route(f"{API}/emails/{{id:int}}/restore", emails.restore_email, methods=["POST"]),
    Route(f"{API}/emails/{{id:int}}/thread", emails.move_email, methods=["POST"]),
    Route(f"{API}/threads/{{id:int}}", emails.get_thread),
    Route(f"{API}/attachments/{{id:int}}", attachments.download),
    Route(f"{API}/tracked-sends", tracked_sends.create, methods=["POST"]),
    Route(f"{API}/tracked-sends/{{id:int}}", tracked_sends.get),
    Route(f"{API}/tracked-sends/{{id:int}}/sent", tracked_sends.sent, methods=["POST"]),
    Route(f"{API}/tracked-sends/{{id:int}}/hits", tracked_sends.hits),
    Route(f"{API}/events", events.list_events),
    Route(f"{API}/events/stream", events.stream),
    Route(f"{API}/ingest-log", audit.ingest_log),
    Route(f"{API}/inboxes", inboxes.list_inboxes, methods=["GET"]),
    Route(f"{API}/inboxes", inboxes.connect_inbox, methods=["POST"]),
    Route(f"{API}/inboxes/{{id:int}}", inboxes.get_inbox, methods=["GET"]),
    Route(f"{API}/inboxes/{{id:int}}/sync", inboxes.sync_inbox, methods=["POST"]),
    Route(f"{API}/inboxes/{{id:int}}/disconnect", oauth.disconnect, methods=["POST"]),
    Route(f"{API}/inboxes/oauth/{{provider}}", oauth.start, methods=["POST"]),
    Route("/oauth/callback", oauth.callback),
    Route("/oauth/result", oauth.result_page),
    Route("/healthz", system.healthz),
    Route("/metrics", system.metrics),
    Route("/openapi.json", system.openapi),
]
