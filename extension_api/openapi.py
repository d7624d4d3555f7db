"""The OpenAPI 3.1 description of the API, served at ``/openapi.json``.

The operations are written out next to the routes so they say exactly what the
endpoints do (tests compare them with the URL map); the schemas of their bodies are
generated from the shapes they name (``extension_api.schemas``), the types that also
validate the requests and write the responses.
"""

from __future__ import annotations

from typing import Any

from extension_api.schemas._codec import components
from extension_api.schemas.account import (
    AddedUserAddress,
    Error,
    Health,
    IngestLogEntry,
    Me,
    NewToken,
    NewUser,
    Rotated,
    RotateRequest,
    Settings,
    SettingsPatch,
    Token,
    TokenRequest,
    User,
    UserAddress,
    UserAddressRequest,
    UserRequest,
)
from extension_api.schemas.inboxes import (
    Inbox,
    InboxConnect,
    OAuthStart,
    OAuthStarted,
    SendRequest,
    Sent,
    SyncReport,
)
from extension_api.schemas.mail import (
    Company,
    Contact,
    ContactAttachment,
    ContactDeleted,
    Deleted,
    Email,
    EmailSummary,
    Lookup,
    MoveRequest,
    Thread,
)
from extension_api.schemas.reports import (
    ResponseTimesReport,
    StatusReport,
    VolumeReport,
    WorkloadReport,
)
from extension_api.schemas.search import SearchPage
from extension_api.schemas.ticket_replies import (
    CannedResponsePatch,
    CannedResponseRequest,
    CannedResponseShape,
    CrossedReplyShape,
    NoteRequest,
    PresenceRequest,
    PresenceShape,
    PresentAgent,
    RenderedCannedResponse,
    ReplyRequest,
    ReplySent,
    TicketNote,
)
from extension_api.schemas.tickets import (
    Agent,
    AgentRequest,
    AssignRequest,
    MergeRequest,
    RoutingRule,
    RoutingRuleRequest,
    Team,
    TeamInbox,
    TeamInboxRequest,
    TeamRequest,
    Ticket,
    TicketDetail,
    TicketPatch,
)
from extension_api.schemas.tracking import (
    Event,
    SentRequest,
    TrackedSend,
    TrackedSendCreated,
    TrackedSendNotLogged,
    TrackedSendRequest,
    TrackingHit,
)
from extension_api.schemas.webhooks import (
    Delivery,
    NewWebhook,
    Webhook,
    WebhookPatch,
    WebhookRequest,
)

_ID = {"type": "integer", "minimum": 1}
_NULLABLE_ID = {"type": ["integer", "null"]}
_STR = {"type": "string"}
_DATE = {"type": "string", "format": "date-time"}

# Every shape an operation names; their components (and those of the shapes they use)
# are generated from them.
_SHAPES: list[type[Any]] = []


def _ref(shape: str | type[Any]) -> dict[str, str]:
    """A reference to a component: a shape's (by its class), or a written one's."""
    if isinstance(shape, type):
        if shape not in _SHAPES:
            _SHAPES.append(shape)
        shape = shape.__name__
    return {"$ref": f"#/components/schemas/{shape}"}


def _obj(props: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required}


def _items(shape: str | type[Any], **extra: Any) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": _ref(shape)}, **extra}, required=["items"])


def _json(shape_or_schema: str | type[Any] | dict[str, Any],
          description: str = "OK") -> dict[str, Any]:
    schema = shape_or_schema if isinstance(shape_or_schema, dict) else _ref(shape_or_schema)
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "bad request", 401: "missing, invalid or revoked token",
            404: "not found (or another portal's)", 413: "too large",
            415: "send message/rfc822", 422: "invalid input", 503: "database unavailable",
            403: "not for this caller (code forbidden): admin only, another user's, or it "
                 "needs a user token", 409: "the inbox is disconnected",
            429: "too many requests or event streams for this caller (Retry-After says "
                 "when to try again); for a mail server, the provider is throttling",
            502: "the mail server failed or refused", 410: "expired",
            504: "the mail server did not answer", 507: "the mailbox is full"}
    return {str(s): _json(Error, text[s]) for s in statuses}


def _path_id(name: str = "id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}


def _query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _op(summary: str, ok: dict[str, Any], *errors: int, params: list[Any] | None = None,
        body: dict[str, Any] | None = None, auth: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params or [],
                          "responses": {"200": ok, **_errors(*errors)}}
    if auth:
        # Every caller has request budgets: past them 429 with Retry-After.
        op["responses"].update(_errors(401, 429))
    else:
        op["security"] = []
    if body is not None:
        # Any request body can be malformed or too large.
        op["requestBody"] = body
        op["responses"].update({k: v for k, v in _errors(400, 413).items()
                                if k not in op["responses"]})
    return op


_LIMIT = {"type": "integer", "minimum": 1, "maximum": 200}


def _created(op: dict[str, Any]) -> dict[str, Any]:
    """An operation answering 201 where ``_op`` wrote 200."""
    op["responses"] = {("201" if k == "200" else k): v for k, v in op["responses"].items()}
    return op


def _also_created(op: dict[str, Any], created: dict[str, Any]) -> dict[str, Any]:
    """An operation answering 201 when it made something and 200 when it existed."""
    op["responses"]["201"] = created
    return op


def _sent(op: dict[str, Any]) -> dict[str, Any]:
    """The send: 201 sent and logged, 202 sent and logged later, 200 sent only."""
    op["responses"]["201"] = _json(
        {"allOf": [_ref(Sent), {"properties": {"email": _ref(Email)}}]},
        "sent and logged, with the email")
    op["responses"]["202"] = _json(
        Sent, "sent; the database could not log it now, it is logged later (log: pending); "
        "or logged but the email cannot be read back now (log: logged, email null)")
    op["responses"]["504"] = _json(
        Error, "the mail server did not answer (timeout); or, with code "
        "send_unconfirmed, it received the message and never confirmed it: it may have "
        "been sent, is not logged, and must not be sent again before checking the Sent "
        "folder")
    return op


def _body(shape: str | type[Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(shape)}}}

PATHS: dict[str, Any] = {
    "/api/v1/me": {"get": _op("The caller, their portal and logging address", _json(Me))},
    "/api/v1/contacts": {"get": _op(
        "Look a contact up by email, or page through contacts",
        _json(_items(Contact, cursor=_NULLABLE_ID)), 400,
        params=[_query("email", _STR), _query("after", {"type": "integer", "minimum": 0}),
                _query("limit", _LIMIT)])},
    "/api/v1/contacts/{id}": {
        "get": _op("A contact", _json(Contact), 404, params=[_path_id()]),
        "delete": _op(
            "Delete a contact; with erase=true also every email, file, event and audit "
            "entry no other contact needs (right to be forgotten; admin only)",
            _json(ContactDeleted), 400, 403, 404,
            params=[_path_id(), _query("erase", {"enum": ["true", "false", "1", "0"]})]),
    },
    "/api/v1/contacts/{id}/timeline": {"get": _op(
        "A contact's emails, newest first", _json(_items(EmailSummary)), 400, 404,
        params=[_path_id(), _query("limit", _LIMIT)])},
    "/api/v1/contacts/{id}/attachments": {"get": _op(
        "Every file logged with a contact's emails", _json(_items(ContactAttachment)), 404,
        params=[_path_id()])},
    "/api/v1/companies/{id}": {"get": _op("A company (contacts join one by email domain)",
                                          _json(Company), 404, params=[_path_id()])},
    "/api/v1/emails": {"get": _op(
        "Find emails by Message-ID (with or without <>)", _json(_items(Email)), 400,
        params=[_query("message_id", {"type": "string", "minLength": 1}, required=True)])},
    "/api/v1/emails/{id}": {
        "get": _op("A logged email", _json(Email), 404, params=[_path_id()]),
        "delete": _op("Delete an email; restorable for 90 days. A user may delete the "
                      "emails logged for them, the admin any", _json(Deleted), 403, 404,
                      params=[_path_id()]),
    },
    "/api/v1/emails/{id}/restore": {"post": _op(
        "Restore a deleted email within 90 days (a user: their own emails)", _json(Email),
        403, 404, params=[_path_id()])},
    "/api/v1/emails/{id}/thread": {"post": _op(
        "Move an email to another thread, or split it off onto a new one (thread_id null)",
        _json(Email), 403, 404, 422, params=[_path_id()],
        body=_body(MoveRequest))},
    "/api/v1/ingest-log": {"get": _op(
        "Messages received and not logged, and why; newest first, kept 30 days",
        _json(_items(IngestLogEntry, cursor=_NULLABLE_ID)), 400,
        params=[_query("before", {"type": "integer", "minimum": 1}), _query("limit", _LIMIT)])},
    "/api/v1/search": {"get": _op(
        "Full-text search over the portal's emails, best first (syntax in docs/search.md:"
        ' "phrase", -word, from:, to:, subject:, has:attachment, before:, after:)',
        _json(SearchPage), 400, 422,
        params=[_query("q", {"type": "string", "minLength": 1, "maxLength": 500},
                       required=True),
                _query("contact_id", _ID), _query("company_id", _ID),
                _query("direction", {"enum": ["outgoing", "incoming"]}),
                _query("source", {"enum": ["bcc", "forward", "rule", "extension", "sync",
                                           "crm_send", "team_inbox"]}),
                _query("after", {**_STR, "description": "sent at or after: an ISO 8601 date "
                                 "or date-time"}),
                _query("before", {**_STR, "description": "sent before: an ISO 8601 date or "
                                  "date-time"}),
                _query("has_attachment", {"enum": ["true", "false", "1", "0"]}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                _query("cursor", _STR)])},
    "/api/v1/threads/{id}": {"get": _op("A thread, its emails oldest first", _json(Thread),
                                        404, params=[_path_id()])},
    "/api/v1/attachments/{id}": {"get": _op(
        "An attachment's bytes (Content-Disposition: attachment)",
        {"description": "the file", "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}},
        404, params=[_path_id()])},
    "/api/v1/settings": {
        "get": _op("The portal's logging settings", _json(Settings)),
        "patch": _op("Change some logging settings (admin only)", _json(Settings),
                     400, 403, 413, 422,
                     body={"required": True, "content": {
                         "application/json": {"schema": _ref(SettingsPatch)}}}),
    },
    "/api/v1/settings/rotate-logging-address": {"post": _op(
        "A new logging address (admin only); the old one keeps logging for grace_days "
        "(default 7), then answers 550 5.1.1 with a hint. A rotation within the grace "
        "period of the previous one ends that one at once",
        _json(Rotated), 400, 403, 422, body=_body(RotateRequest, required=False))},
    "/api/v1/inboxes": {
        "get": _op("The caller's connected inboxes (all of the portal's for an admin)",
                   _json(_items(Inbox))),
        "post": _created(_op(
            "Connect an inbox: test the IMAP and SMTP logins, store it, start syncing. "
            "Error codes: name_not_found, connection_refused, tls_failure, auth_rejected, "
            "app_password_required, no_imap, no_smtp, destination_not_allowed (422: not a "
            "public address on a mail port, nor allowed by --allow-mail-hosts); timeout "
            "(504); throttled, too_many_connections (429); remote_protocol_violation (502: "
            "the server broke a limit of the conversation)",
            _json(Inbox, "connected"), 400, 403, 413, 422, 429, 502, 503, 504,
            body=_body(InboxConnect))),
    },
    "/api/v1/inboxes/{id}": {"get": _op(
        "A connected inbox, its status and checkpoints (a user: their own; the admin: any)",
        _json(Inbox), 403, 404, params=[_path_id()])},
    "/api/v1/inboxes/{id}/sync": {"post": _op(
        "Sync INBOX and Sent now (reconnecting a disconnected inbox); what was done",
        _json(SyncReport), 403, 404, 422, 429, 502, 504, params=[_path_id()])},
    "/api/v1/inboxes/{id}/disconnect": {"post": _op(
        "Disconnect the inbox: revoke the OAuth grant at the provider (where it has a "
        "revocation endpoint), forget the credentials, stop syncing. The checkpoints "
        "stay: connecting it again resumes",
        _json(Inbox), 403, 404, params=[_path_id()])},
    "/api/v1/inboxes/oauth/{provider}": {"post": _op(
        "Start connecting an inbox with OAuth 2.0: the authorization URL to open in the "
        "user's browser (authorization code with PKCE S256; state signed, bound to the "
        "user, good for 10 minutes and once). The provider sends the browser back to "
        "/oauth/callback. Error codes: oauth_not_configured (404)",
        _json(OAuthStarted), 403, 404, 422,
        params=[{"name": "provider", "in": "path", "required": True, "schema": _STR}],
        body=_body(OAuthStart, required=False))},
    "/oauth/callback": {"get": {
        "summary": "The provider's redirect (opened by the browser, no token): exchange "
                   "the code, connect or reconnect the inbox; always 303 to /oauth/result "
                   "with status (connected, failed) and code (connected, reconnected, "
                   "oauth_denied, oauth_state_invalid, oauth_scope_missing, "
                   "provider_unavailable, ...)",
        "security": [],
        "parameters": [_query(n, _STR) for n in ("code", "state", "error")],
        "responses": {"303": {"description": "to the result page"}}}},
    "/oauth/result": {"get": {
        "summary": "The result page the browser lands on after /oauth/callback",
        "security": [],
        "parameters": [_query(n, _STR) for n in ("status", "code", "inbox_id")],
        "responses": {"200": {"description": "a page", "content": {
            "text/html": {"schema": _STR}}}}}},
    "/api/v1/emails/send": {"post": _sent(_op(
        "Send through the caller's connected inbox, copy to its Sent folder and log it "
        "(source crm_send); nothing is logged unless the SMTP server accepted it. Once it "
        "did, the answer is a success (201, 202 or 200), never an error. Error codes: "
        "throttled (429, the SMTP server answered 421 or a rate limit), mailbox_full "
        "(507), send_rejected (502), disconnected (409), send_unconfirmed (504: the "
        "server received the message but never answered, so it may have been sent; "
        "nothing is logged: check the Sent folder before sending it again)",
        _json(Sent, "sent, not logged (log: not_logged, or failed)"),
        400, 403, 409, 413, 422, 429, 502, 503, 504, 507, body=_body(SendRequest)))},
    "/api/v1/tokens": {
        "get": _op("The caller's API tokens (all of the portal's for an admin), no secrets",
                   _json(_items(Token))),
        "post": _created(_op("A new token for the caller (an admin may name a user_id)",
                             _json(NewToken), 400, 403, 404, 413, 422,
                             body=_body(TokenRequest))),
    },
    "/api/v1/tokens/{id}": {"delete": _op(
        "Revoke a token at once (a user: their own; the admin: any)", _json(Token), 403, 404,
        params=[_path_id()])},
    "/api/v1/users": {
        "get": _op("The portal's users (admin only)", _json(_items(User)), 403),
        "post": _created(_op("Add a user with their addresses; their first API token is "
                             "shown once (admin only)", _json(NewUser), 400, 403, 413, 422,
                             body=_body(UserRequest))),
    },
    "/api/v1/users/{id}/addresses": {
        "get": _op("The user's sender addresses, confirmed or waiting for their link (the "
                   "user, or the admin)", _json(_items(UserAddress)), 403, 404,
                   params=[_path_id()]),
        "post": _created(_op(
            "Add a sender address: stored unconfirmed, a confirmation link (single use, 48 "
            "hours) mailed to it through the server's SMTP relay; it counts as the user's "
            "once the link is followed. Error codes: address_taken and already_confirmed "
            "(409), confirmation_recently_sent (429, under a minute ago), "
            "smtp_relay_not_configured (409: the server has no --smtp-relay; nothing is "
            "stored), smtp_relay_failed (502)",
            _json(AddedUserAddress),
            403, 404, 409, 422, 502, params=[_path_id()],
            body=_body(UserAddressRequest))),
    },
    "/api/v1/users/{id}/addresses/{address_id}": {"delete": _op(
        "Remove a sender address (not the primary one: 422); mail from it is no longer "
        "the user's", _json(UserAddress), 403, 404, 422,
        params=[_path_id(), _path_id("address_id")])},
    "/confirm-address": {
        "get": {"summary": "The confirmation link's page (no token needed): what it "
                           "confirms and a button; changes nothing. JSON with Accept: "
                           "application/json. 404 confirmation_invalid (used, replaced, "
                           "unknown), 410 confirmation_expired",
                "security": [],
                "parameters": [_query("token", _STR, required=True)],
                "responses": {s: {"description": d, "content": {
                    "text/html": {"schema": _STR}, "application/json": {"schema": {
                        "type": "object"}}}} for s, d in (
                    ("200", "the page"), ("404", "not valid"), ("410", "expired"))}},
        "post": {"summary": "Confirm the address (the page's form, token=..., or JSON "
                            "{\"token\"}); the token is spent",
                 "security": [],
                 "parameters": [],
                 "requestBody": {"content": {
                     "application/x-www-form-urlencoded": {"schema": _obj({"token": _STR})},
                     "application/json": {"schema": _obj({"token": _STR})}}},
                 "responses": {s: {"description": d, "content": {
                     "text/html": {"schema": _STR}, "application/json": {"schema": {
                         "type": "object"}}}} for s, d in (
                     ("200", "confirmed"), ("404", "not valid"), ("410", "expired"))}
                 | _errors(400, 413)},
    },
    "/api/v1/contacts/lookup": {"get": _op(
        "The extension sidebar: contact, company, recent emails with opens and clicks",
        _json(Lookup), 400,
        params=[_query("email", {"type": "string", "minLength": 1}, required=True),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 50})])},
    "/api/v1/emails/log": {"post": _also_created(_op(
        "Log the raw message the user has open (one click): 201, or 200 when already logged",
        _json(Email, "already logged"), 400, 403, 413, 415, 422,
        body={"required": True, "content": {"message/rfc822": {
            "schema": {"type": "string", "format": "binary"}}}}), _json(Email, "logged"))},
    "/api/v1/tracked-sends": {"post": _created(_op(
        "Trackable HTML for an email about to be sent: links rewritten, pixel appended",
        _json(TrackedSendCreated), 400, 403, 413, 422, body=_body(TrackedSendRequest)))},
    "/api/v1/tracked-sends/{id}": {"get": _op(
        "A tracked send and its opens and clicks", _json(TrackedSend), 404,
        params=[_path_id()])},
    "/api/v1/tracked-sends/{id}/hits": {"get": _op(
        "The send's opens and clicks, oldest first, each with its verdict, reason and client",
        _json(_items(TrackingHit, cursor={"type": "integer", "minimum": 0})), 400, 404,
        params=[_path_id(), _query("after", {"type": "integer", "minimum": 0}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500})])},
    "/api/v1/tracked-sends/{id}/sent": {"post": _also_created(_op(
        "It was sent: log it (source extension, 201) unless its copy is logged already "
        "(200), or just mark it sent when it is not to be logged",
        _json({"oneOf": [_ref(Email), _ref(TrackedSendNotLogged)]}, "already logged"),
        400, 403, 404, 413, 422, params=[_path_id()],
        body={"required": False, "content": {"application/json": {
            "schema": _ref(SentRequest)}}}), _json(Email, "logged"))},
    "/api/v1/events": {"get": _op(
        "The caller's notifications after a cursor: open, click, reply, logged",
        _json(_items(Event, cursor={"type": "integer", "minimum": 0})), 400,
        params=[_query("after", {"type": "integer", "minimum": 0}),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500})])},
    "/api/v1/events/stream": {"get": _op(
        "The same events live, as Server-Sent Events (resumes from Last-Event-ID, which "
        "must be an event id: 400 otherwise); at most 5 streams open at once per caller "
        "(429 past that)",
        {"description": "an event stream", "content": {"text/event-stream": {
            "schema": {"type": "string"}}}}, 400,
        params=[_query("after", {"type": "integer", "minimum": 0})])},
    "/t/o/{token}": {"get": {**_op("Open pixel: a 1x1 GIF, never cached", {
        "description": "the pixel", "content": {"image/gif": {
            "schema": {"type": "string", "format": "binary"}}}}, auth=False),
        "parameters": [{"name": "token", "in": "path", "required": True,
                        "schema": {"type": "string"}}]}},
    "/t/c/{token}": {"get": {
        "summary": "Click: 302 to the URL the send had at this position, if its send is stored "
                   "and not deleted in the token's portal and the link has not expired "
                   "(http(s) only); anything else is 404, never a redirect",
        "security": [],
        "parameters": [{"name": "token", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"302": {"description": "to the original URL"},
                      "404": {"description": "a tampered or unknown token, a deleted send, "
                                             "another URL or portal, an expired link",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "parameters": [],
                         "responses": {"200": {"description": "metrics", "content": {
                             "text/plain": {"schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": _op("This OpenAPI description", _json({"type": "object"}),
                                 auth=False)},
    "/healthz": {"get": {**_op("Liveness and database reachability", _json(Health),
                               auth=False),
                         "responses": {"200": _json(Health),
                                       "503": _json(Health, "database unavailable")}}},
}

PATHS["/api/v1/users/{id}/addresses"]["post"]["responses"]["409"] = _json(
    Error, "the address is another user's of the portal, or confirmed already; or the "
    "server sends no mail (smtp_relay_not_configured)")


_ADMIN_WEBHOOKS = " (admin only; another portal's is 404)"
PATHS.update({
    "/api/v1/webhooks": {
        "get": _op("The portal's webhooks, no secrets" + _ADMIN_WEBHOOKS,
                   _json(_items(Webhook)), 403),
        "post": _created(_op(
            "Register a webhook: the portal's events of the given types are POSTed to the "
            "URL, signed (Standard Webhooks headers webhook-id, webhook-timestamp, "
            "webhook-signature), retried with backoff on 5xx, 408, 429 and no answer; the "
            "secret is shown once" + _ADMIN_WEBHOOKS,
            _json(NewWebhook), 400, 403, 413, 422, body=_body(WebhookRequest))),
    },
    "/api/v1/webhooks/{id}": {
        "get": _op("One webhook" + _ADMIN_WEBHOOKS, _json(Webhook), 403, 404,
                   params=[_path_id()]),
        "patch": _op("Change a webhook's URL, events or description, or turn it off and on "
                     "(enabled)" + _ADMIN_WEBHOOKS, _json(Webhook), 400, 403, 404, 413, 422,
                     params=[_path_id()], body=_body(WebhookPatch)),
        "delete": _op("Delete a webhook and its delivery log" + _ADMIN_WEBHOOKS,
                      _json(Webhook), 403, 404, params=[_path_id()]),
    },
    "/api/v1/webhooks/{id}/deliveries": {"get": _op(
        "A webhook's deliveries, newest first, each with its attempts (response code, "
        "duration, next attempt)" + _ADMIN_WEBHOOKS,
        _json(_items(Delivery, cursor=_NULLABLE_ID)), 400, 403, 404,
        params=[_path_id(), _query("before", _ID), _query("limit", _LIMIT),
                _query("status", {"enum": ["pending", "delivered", "failed"]})])},
})


# Team inboxes and tickets (docs/tickets.md).
_MEMBERS = "; a team inbox the caller is not a member of is 404, as another portal's"
_TICKET = [_path_id()]
PATHS.update({
    "/api/v1/team-inboxes": {
        "get": _op("The team inboxes the caller is a member of (the admin: all)",
                   _json(_items(TeamInbox))),
        "post": _created(_op(
            "Create a team inbox (admin only): its mail comes to forwarding_address or "
            "alias_address, anyone may write to it, each new conversation a ticket",
            _json(TeamInbox), 403, 422, body=_body(TeamInboxRequest))),
    },
    "/api/v1/team-inboxes/{id}": {
        "get": _op("A team inbox" + _MEMBERS, _json(TeamInbox), 404, params=[_path_id()]),
        "patch": _op("Change a team inbox's settings or members (admin only)",
                     _json(TeamInbox), 403, 404, 422, params=[_path_id()],
                     body=_body(TeamInboxRequest)),
    },
    "/api/v1/teams": {
        "get": _op("The portal's teams", _json(_items(Team))),
        "post": _created(_op("Create a team (admin only)", _json(Team), 403, 422,
                             body=_body(TeamRequest))),
    },
    "/api/v1/teams/{id}": {"patch": _op(
        "Rename a team or replace its users (admin only)", _json(Team), 403, 404, 422,
        params=[_path_id()], body=_body(TeamRequest))},
    "/api/v1/routing-rules": {
        "get": _op("The routing rules in the order they apply (admin only)",
                   _json(_items(RoutingRule)), 403),
        "post": _created(_op(
            "Add a routing rule (admin only): every rule whose conditions hold applies, in "
            "position order, until one with stop", _json(RoutingRule), 403, 422,
            body=_body(RoutingRuleRequest))),
    },
    "/api/v1/routing-rules/{id}": {
        "patch": _op("Change a routing rule (admin only)", _json(RoutingRule), 403, 404, 422,
                     params=[_path_id()], body=_body(RoutingRuleRequest)),
        "delete": _op("Delete a routing rule (admin only); answers it as it was",
                      _json(RoutingRule), 403, 404, params=[_path_id()]),
    },
    "/api/v1/agents/{id}": {"patch": _op(
        "An agent's availability (the agent or the admin) and capacity (the admin)",
        _json(Agent), 403, 404, 422, params=[_path_id()], body=_body(AgentRequest))},
    "/api/v1/tickets": {"get": _op(
        "The tickets of the caller's team inboxes, newest first (paged by before), or "
        "by latest activity with sort=latest_activity (paged by offset: next_offset)",
        _json(_items(Ticket, cursor=_NULLABLE_ID, next_offset=_NULLABLE_ID)), 400,
        params=[_query("status", {"enum": ["open", "pending", "closed"]}),
                _query("team_inbox_id", _ID),
                _query("assignee", {"type": "string", "description": "a user id, or none"}),
                _query("priority", {"enum": ["low", "normal", "high", "urgent"]}),
                _query("sort", {"enum": ["newest", "latest_activity"]}),
                _query("before", _ID), _query("offset", {"type": "integer", "minimum": 0}),
                _query("limit", _LIMIT)])},
    "/api/v1/tickets/{id}": {
        "get": _op("A ticket with its emails and activity log" + _MEMBERS,
                   _json(TicketDetail), 404, params=_TICKET),
        "patch": _op("Change a ticket's status, priority, pipeline, stage, subject or tags",
                     _json(TicketDetail), 404, 422, params=_TICKET, body=_body(TicketPatch)),
    },
    "/api/v1/tickets/{id}/assign": {"post": _op(
        "Assign a ticket to a member of its inbox, a team (round-robin) or nobody",
        _json(TicketDetail), 404, 422, params=_TICKET, body=_body(AssignRequest))},
    "/api/v1/tickets/{id}/close": {"post": _op(
        "Close a ticket", _json(TicketDetail), 404, 422, params=_TICKET)},
    "/api/v1/tickets/{id}/reopen": {"post": _op(
        "Reopen a ticket: a new response cycle", _json(TicketDetail), 404, 422,
        params=_TICKET)},
    "/api/v1/tickets/{id}/merge": {"post": _op(
        "Merge a ticket into another of its inbox; answers the one that lives on",
        _json(TicketDetail), 404, 422, params=_TICKET, body=_body(MergeRequest))},
})


_REPORT_PARAMS = [
    _query("from", {"type": "string", "format": "date"}),
    _query("to", {"type": "string", "format": "date"}),
    _query("time_zone", _STR), _query("team_inbox_id", _ID)]
_REPORT_SCOPE = (" (a user: the team inboxes they are a member of; the admin: all). "
                 "from/to: days included, default the last 30, at most 366; time_zone: "
                 "where days begin (default UTC); team_inbox_id: one inbox")
PATHS.update({
    "/api/v1/reports/volume": {"get": _op(
        "Tickets created per day and channel" + _REPORT_SCOPE, _json(VolumeReport), 400, 404,
        params=_REPORT_PARAMS)},
    "/api/v1/reports/first-response": {"get": _op(
        "First-response percentiles (p50, p90) in business hours, reopened cycles apart; "
        "next response and first resolution too" + _REPORT_SCOPE,
        _json(ResponseTimesReport), 400, 404, params=_REPORT_PARAMS)},
    "/api/v1/reports/workload": {"get": _op(
        "Per agent: open and pending now, assigned in the range and their share, closed "
        "in the range" + _REPORT_SCOPE, _json(WorkloadReport), 400, 404,
        params=_REPORT_PARAMS)},
    "/api/v1/reports/status": {"get": _op(
        "Open, pending, closed, unassigned and stale tickets" + _REPORT_SCOPE,
        _json(StatusReport), 400, 404, params=[
            *_REPORT_PARAMS, _query("stale_hours", {"type": "integer", "minimum": 1,
                                                    "maximum": 24 * 366})])},
})

# What agents do from a ticket (docs/ticket-replies.md).
_AGENT = "; for an agent's user token (the admin token: 403)" + _MEMBERS
_CANNED = [_path_id(), _path_id("rid")]
_COLLISION = _json({"allOf": [_ref(Error), {"properties": {
    "crossed": {"type": "array", "items": _ref(CrossedReplyShape)},
    "others": {"type": "array", "items": _ref(PresentAgent)}}}]},
    "reply_collision: another agent replied since the ticket was loaded (send again with "
    "force to send anyway); or smtp_relay_not_configured: this server sends no mail")
PATHS.update({
    "/api/v1/tickets/{id}/replies": {"post": _created(_op(
        "Reply to the ticket's customer (or forward it) From the team inbox, threaded "
        "(In-Reply-To, References, [Ticket#N]), with the inbox's signature; logged on "
        "the ticket once the relay took it" + _AGENT,
        _json(ReplySent), 403, 404, 422, 502, params=_TICKET, body=_body(ReplyRequest)))},
    "/api/v1/tickets/{id}/notes": {
        "get": _op("The ticket's internal notes, oldest first" + _AGENT,
                   _json(_items(TicketNote)), 403, 404, params=_TICKET),
        "post": _created(_op(
            "Add an internal note (never sent); @address or mentions tell those members "
            "(a ticket_mentioned event)" + _AGENT, _json(TicketNote), 403, 404, 422,
            params=_TICKET, body=_body(NoteRequest))),
    },
    "/api/v1/tickets/{id}/presence": {
        "get": _op("Who else is viewing or replying to the ticket" + _AGENT,
                   _json(PresenceShape), 403, 404, params=_TICKET),
        "post": _op("The caller is viewing, replying (renew within expires_in) or left"
                    + _AGENT, _json(PresenceShape), 403, 404, 422, params=_TICKET,
                    body=_body(PresenceRequest)),
    },
    "/api/v1/tickets/{id}/canned-responses/{rid}": {"get": _op(
        "A canned response of the ticket's inbox filled in for this ticket" + _AGENT,
        _json(RenderedCannedResponse), 403, 404, params=_CANNED)},
    "/api/v1/team-inboxes/{id}/canned-responses": {
        "get": _op("The inbox's canned responses by name" + _MEMBERS,
                   _json(_items(CannedResponseShape)), 404, params=[_path_id()]),
        "post": _created(_op("Add a canned response; an unknown placeholder is a 422"
                             + _MEMBERS, _json(CannedResponseShape), 404, 422,
                             params=[_path_id()], body=_body(CannedResponseRequest))),
    },
    "/api/v1/team-inboxes/{id}/canned-responses/{rid}": {
        "get": _op("A canned response" + _MEMBERS, _json(CannedResponseShape), 404,
                   params=_CANNED),
        "patch": _op("Rename or rewrite a canned response" + _MEMBERS,
                     _json(CannedResponseShape), 404, 422, params=_CANNED,
                     body=_body(CannedResponsePatch)),
        "delete": _op("Delete a canned response; answers it as it was" + _MEMBERS,
                      _json(CannedResponseShape), 404, params=_CANNED),
    },
})
PATHS["/api/v1/tickets/{id}/replies"]["post"]["responses"]["409"] = _COLLISION

SCHEMAS: dict[str, Any] = components(_SHAPES)


def openapi_document(base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "inboxlog API", "version": "1",
                 "description": "Email logging for CRMs: contacts, timelines, emails."},
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": PATHS,
    }
