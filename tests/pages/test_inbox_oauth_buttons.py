"""The connected-inboxes page offers "connect with …" for the OAuth providers the
operator configured (and none otherwise); a button starts the API's flow: its page
links to the provider's authorization URL, with PKCE and the signed state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.pages.conftest import Browsers, csrf_of, unique, web_account
from tests.support.server import Server, free_port


@pytest.fixture(scope="module")
def google_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """`inboxlog serve` with Google configured, its endpoints on a loopback port that
    nothing here ever connects to."""
    server = Server(tmp_path_factory.mktemp("oauth-pages"))
    authority = f"127.0.0.1:{free_port()}"
    server.extra_env.update({
        "INBOXLOG_OAUTH_GOOGLE_CLIENT_ID": "pages-client",
        "INBOXLOG_OAUTH_GOOGLE_CLIENT_SECRET": "pages-secret",
        "INBOXLOG_OAUTH_GOOGLE_AUTHORIZE_URL": f"http://{authority}/authorize",
        "INBOXLOG_OAUTH_GOOGLE_TOKEN_URL": f"http://{authority}/token",
        "INBOXLOG_OAUTH_GOOGLE_REVOCATION_URL": f"http://{authority}/revoke",
        "INBOXLOG_OAUTH_GOOGLE_USERINFO_URL": f"http://{authority}/userinfo",
        "INBOXLOG_ALLOW_OAUTH_HOSTS": authority})
    server.start()
    yield server, authority
    server.stop()


def _buttons(page: str) -> list[tuple[str, str]]:
    return re.findall(r'id="connect-([a-z]+)">Connect with ([^<]+)<', page)


def test_no_provider_no_button(web_server: Server, browsers: Browsers) -> None:
    client = browsers.new(web_account(web_server, unique("plain")))
    page = client.get("/inboxes")
    assert page.status_code == 200 and _buttons(page.text) == []
    refused = client.post("/inboxes/connect/google", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 404 and "no such sign-in provider" in refused.text


def test_connect_with_google_starts_the_apis_flow(
        google_server: tuple[Server, str]) -> None:
    server, authority = google_server
    browsers = Browsers(server)
    try:
        client = browsers.new(web_account(server, unique("oauth")))
        page = client.get("/inboxes")
        assert _buttons(page.text) == [("google", "Google")]
        csrf = csrf_of(page.text)
        assert client.post("/inboxes/connect/google", data={}).status_code == 403
        assert client.post("/inboxes/connect/microsoft",
                           data={"csrf": csrf}).status_code == 404
        started = client.post("/inboxes/connect/google", data={"csrf": csrf})
        assert started.status_code == 200, started.text
        found = re.search(r'id="continue" href="([^"]+)"', started.text)
        assert found, started.text
        url = urlsplit(unescape(found.group(1)))
        assert (url.scheme, url.netloc, url.path) == ("http", authority, "/authorize")
        query = parse_qs(url.query)
        assert query["client_id"] == ["pages-client"]
        assert query["redirect_uri"] == [f"{server.base_url}/oauth/callback"]
        assert query["code_challenge_method"] == ["S256"]
        assert query["state"][0] and query["response_type"] == ["code"]
    finally:
        for client in browsers.open:
            client.close()
