"""A local OAuth 2.0 authorization server for the tests, built on Authlib's server
components (Flask integration): authorization code with PKCE S256 (required), refresh
with rotation, RFC 7009 revocation, RFC 7662 introspection (which Dovecot's ``oauth2``
passdb and the XOAUTH2 SMTP test server ask), a userinfo endpoint. In memory, on
loopback, in a thread of the test process.

Browser-less: ``/authorize`` approves at once for ``approve_as`` (the user "signed in"
at the provider), or answers ``access_denied`` when ``deny`` is set. The test controls
what goes wrong: ``expire_access_tokens()``, ``revoke_grants()`` (the user revoked the
app: refresh is ``invalid_grant``), ``down`` (the token endpoint answers 503),
``granted_scope`` (grant less than asked).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.models import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from tests.support.server import free_port

CLIENT_ID, CLIENT_SECRET = "inboxlog-test", "test-secret"
# Dovecot and the SMTP server introspect as this resource server (HTTP Basic).
RESOURCE_ID, RESOURCE_SECRET = "mail-servers", "introspect-secret"
SCOPE = "openid email mail"


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0] if self.redirect_uris else ""

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPE.split())

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return not self.redirect_uris or redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str
    code_challenge_method: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token(TokenMixin):  # type: ignore[misc]
    client_id: str
    user: str
    access_token: str
    refresh_token: str
    scope: str
    expires_in: int
    issued_at: float = field(default_factory=time.time)
    revoked: bool = False
    expired: bool = False

    def check_client(self, client: Client) -> bool:
        return bool(self.client_id == client.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.expired or time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked


class OAuthTestServer:
    """``start()`` it; ``base_url``; the controls above; ``calls`` counts requests per
    endpoint (``token``, ``refresh``, ``revoke``, ``introspect``)."""

    def __init__(self, redirect_uri: str = "", expires_in: int = 3600) -> None:
        self.port = free_port()
        self.expires_in = expires_in
        self.approve_as = ""
        self.deny = False
        self.down = False
        self.granted_scope: str | None = None
        self.clients = {CLIENT_ID: Client(CLIENT_ID, CLIENT_SECRET,
                                          [redirect_uri] if redirect_uri else []),
                        RESOURCE_ID: Client(RESOURCE_ID, RESOURCE_SECRET)}
        self.codes: dict[str, Code] = {}
        self.tokens: list[Token] = []
        self.calls: dict[str, int] = {}
        self.revoked: list[str] = []
        self._lock = threading.RLock()
        self.app = self._app()
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OAuthTestServer:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- controls ----------------------------------------------------------------------

    def expire_access_tokens(self, user: str) -> None:
        """Every access token of ``user`` expires now (introspection: inactive)."""
        with self._lock:
            for token in self.tokens:
                if token.user == user:
                    token.expired = True

    def revoke_grants(self, user: str) -> None:
        """The user revoked the app: every token of theirs is dead, refresh included."""
        with self._lock:
            for token in self.tokens:
                if token.user == user:
                    token.revoked = True

    def issue_token(self, user: str) -> str:
        """An access token for ``user`` straight from the store (the test's own IMAP
        client, playing the user's mail program)."""
        from authlib.common.security import generate_token

        token = Token(CLIENT_ID, user, generate_token(40), "", SCOPE, 3600)
        with self._lock:
            self.tokens.append(token)
        return token.access_token

    def active_refresh_tokens(self, user: str) -> list[str]:
        with self._lock:
            return [t.refresh_token for t in self.tokens if t.user == user and not t.revoked]

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def _find(self, value: str, kind: str) -> Token | None:
        with self._lock:
            return next((t for t in self.tokens if getattr(t, kind) == value), None)

    # -- the Authlib server ------------------------------------------------------------

    def _app(self) -> Flask:
        app = Flask(__name__)
        outer = self

        def query_client(client_id: str) -> Client | None:
            return outer.clients.get(client_id)

        def save_token(token: dict[str, Any], req: Any) -> None:
            scope = token.get("scope", "")
            if outer.granted_scope is not None:
                scope = token["scope"] = outer.granted_scope
            with outer._lock:
                outer.tokens.append(Token(req.client.client_id, req.user,
                                          token["access_token"],
                                          token.get("refresh_token", ""), scope,
                                          int(token["expires_in"])))

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": self.expires_in,
                                                 "refresh_token": self.expires_in}
        server.register_token_generator(
            "default", _TokenGenerator(self))

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

            def save_authorization_code(self, code: str, req: Any) -> None:
                outer.codes[code] = Code(
                    code, req.client.client_id, req.payload.redirect_uri, req.scope,
                    req.user, req.payload.data.get("code_challenge"),
                    req.payload.data.get("code_challenge_method"))

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = outer.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                outer.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> str:
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

            def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
                token = outer._find(refresh_token, "refresh_token")
                return token if token is not None and not token.revoked else None

            def authenticate_user(self, refresh_token: Token) -> str:
                return refresh_token.user

            def revoke_old_credential(self, refresh_token: Token) -> None:
                refresh_token.revoked = True

        class Revocation(RevocationEndpoint):  # type: ignore[misc]
            def query_token(self, token_string: str, token_type_hint: str) -> Token | None:
                return (outer._find(token_string, "refresh_token")
                        or outer._find(token_string, "access_token"))

            def revoke_token(self, token: Token, req: Any) -> None:
                outer.revoke_grants(token.user)  # revoking the grant revokes it all
                outer.revoked.append(token.user)

        class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
            def query_token(self, token_string: str, token_type_hint: str) -> Token | None:
                return outer._find(token_string, "access_token")

            def introspect_token(self, token: Token) -> dict[str, Any]:
                return {"active": True, "client_id": token.client_id, "username": token.user,
                        "scope": token.scope, "token_type": "Bearer",
                        "exp": int(token.issued_at + token.expires_in)}

            def check_permission(self, token: Token, client: Client, req: Any) -> bool:
                return bool(client.client_id == RESOURCE_ID)

        server.register_grant(CodeGrant, [CodeChallenge(required=True)])
        server.register_grant(RefreshGrant)
        server.register_endpoint(Revocation)
        server.register_endpoint(Introspection)

        @app.get("/authorize")
        def authorize() -> Any:
            grant = server.get_consent_grant(end_user=outer.approve_as or None)
            return server.create_authorization_response(
                grant=grant, grant_user=None if outer.deny else outer.approve_as)

        @app.post("/token")
        def token() -> Any:
            kind = "refresh" if request.form.get("grant_type") == "refresh_token" else "token"
            outer._count(kind)
            if outer.down:
                return jsonify({"error": "temporarily_unavailable"}), 503
            return server.create_token_response()

        @app.post("/revoke")
        def revoke() -> Any:
            outer._count("revoke")
            return server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)

        @app.post("/introspect")
        def introspect() -> Any:
            outer._count("introspect")
            return server.create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)

        @app.get("/userinfo")
        def userinfo() -> Any:
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            found = outer._find(bearer, "access_token")
            if found is None or found.is_expired() or found.is_revoked():
                return jsonify({"error": "invalid_token"}), 401
            return jsonify({"sub": found.user, "email": found.user, "email_verified": True})

        return app


class _TokenGenerator:
    """Opaque bearer tokens; ``expires_in`` as the test server is set now."""

    def __init__(self, server: OAuthTestServer) -> None:
        self.server = server

    def __call__(self, grant_type: str, client: Client, user: Any = None, scope: Any = None,
                 expires_in: int | None = None, include_refresh_token: bool = True
                 ) -> dict[str, Any]:
        from authlib.common.security import generate_token

        token: dict[str, Any] = {"token_type": "Bearer", "access_token": generate_token(40),
                                 "expires_in": self.server.expires_in}
        if include_refresh_token:
            token["refresh_token"] = generate_token(48)
        if scope:
            token["scope"] = scope
        return token
