"""The whole URL map on one screen."""

from __future__ import annotations

from starlette.routing import Route

from extension_api.endpoints import account, attachments, audit, contacts, emails, system

API = "/api/v1"

routes = [
    Route(f"{API}/me", account.me),
    Route(f"{API}/settings", account.get_settings, methods=["GET"]),
    Route(f"{API}/settings", account.patch_settings, methods=["PATCH"]),
    Route(f"{API}/contacts", contacts.list_contacts),
    Route(f"{API}/contacts/{{id:int}}", contacts.get_contact, methods=["GET"]),
    Route(f"{API}/contacts/{{id:int}}", contacts.delete_contact, methods=["DELETE"]),
    Route(f"{API}/contacts/{{id:int}}/timeline", contacts.contact_timeline),
    Route(f"{API}/contacts/{{id:int}}/attachments", contacts.contact_attachments),
    Route(f"{API}/companies/{{id:int}}", contacts.get_company),
    Route(f"{API}/emails", emails.find_emails),
    Route(f"{API}/emails/{{id:int}}", emails.get_email, methods=["GET"]),
    Route(f"{API}/emails/{{id:int}}", emails.delete_email, methods=["DELETE"]),
    Route(f"{API}/emails/{{id:int}}/restore", emails.restore_email, methods=["POST"]),
    Route(f"{API}/threads/{{id:int}}", emails.get_thread),
    Route(f"{API}/attachments/{{id:int}}", attachments.download),
    Route(f"{API}/ingest-log", audit.ingest_log),
    Route("/healthz", system.healthz),
    Route("/openapi.json", system.openapi),
]
