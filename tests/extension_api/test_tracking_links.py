"""Click links over real HTTP belong to a stored tracked send of their portal: a deleted
or unknown send's links, a token of another portal's key, a token with its URL swapped
and a non-http(s) target answer 404; tokens of the first format still work for stored
sends; links expire as `serve --tracking-link-days` says; the pixel answers the GIF for
anything and records only stored sends."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from itsdangerous import Signer, URLSafeSerializer

from core.tracking import TokenSigner
from tests.support.server import ClockedServer, PortalAccount, Server

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
READER = "203.0.113.7"
URL = "https://shop.example/item/0?ref=mail&x=1"


def _send(server: Server, account: PortalAccount, html: str | None = None) -> dict[str, Any]:
    html = html or '<html><body><a href="https://shop.example/item/0?ref=mail&amp;x=1">0</a>' \
                   '<a href="https://shop.example/item/1">1</a></body></html>'
    with server.api(account.user_token) as api:
        response = api.post("/api/v1/tracked-sends", json={
            "to": ["amy@buyer.example"], "subject": "Our offer", "html": html})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _links(send: dict[str, Any]) -> list[str]:
    return re.findall(r'href="([^"]+/t/c/[^"]+)"', send["html"])


def _get(url: str) -> httpx.Response:
    return httpx.get(url, headers={"User-Agent": CHROME, "X-Forwarded-For": READER},
                     follow_redirects=False)


def _secret(server: Server) -> str:
    return (server.data_dir / "secret_key").read_text().strip()


def _click_url(server: Server, token: str) -> str:
    return f"{server.base_url}/t/c/{token}"


def _legacy_click(server: Server, send_token: str, position: int, url: str) -> str:
    """A click token as the first format made them: one server-wide key, no portal."""
    return URLSafeSerializer(_secret(server), salt="inboxlog.click").dumps(
        [send_token, position, url])


def _hits(server: Server, account: PortalAccount, send: dict[str, Any],
          until: int) -> list[dict[str, Any]]:
    """The send's recorded hits once there are ``until`` of them (or 10 s passed)."""
    deadline = time.monotonic() + 10
    with server.api(account.user_token) as api:
        while True:
            items = api.get(f"/api/v1/tracked-sends/{send['id']}/hits").json()["items"]
            if len(items) >= until or time.monotonic() > deadline:
                return list(items)
            time.sleep(0.1)


def _not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, (response.status_code, response.headers)
    assert "location" not in response.headers


def test_a_deleted_sends_links_404_until_it_is_restored(
    server: Server, account: PortalAccount
) -> None:
    """Deleting the logged email deletes the send for its links (new and first-format
    tokens alike) and its pixel, which still answers the GIF; restoring brings them back."""
    send = _send(server, account)
    link = _links(send)[0]
    legacy = _click_url(server, _legacy_click(server, send["token"], 0, URL))
    with server.api(account.user_token) as api:
        email_id = api.post(f"/api/v1/tracked-sends/{send['id']}/sent").json()["id"]
        assert _get(link).headers["location"] == URL  # cached now
        assert len(_hits(server, account, send, until=1)) == 1
        assert api.delete(f"/api/v1/emails/{email_id}").status_code == 200
        _not_found(_get(link))
        _not_found(_get(legacy))
        gif = _get(send["pixel_url"])
        assert gif.status_code == 200 and gif.content.startswith(b"GIF89a")
        # Another send's open, recorded: the deleted send's was written (or not) by then.
        other = _send(server, account)
        _get(other["pixel_url"])
        assert len(_hits(server, account, other, until=1)) == 1
        assert api.post(f"/api/v1/emails/{email_id}/restore").status_code == 200
    assert _get(link).headers["location"] == URL
    assert _get(legacy).headers["location"] == URL
    kinds = [hit["kind"] for hit in _hits(server, account, send, until=3)]
    assert kinds == ["click", "click", "click"]  # no open while it was deleted


def test_unknown_sends_and_other_portals_keys_404(server: Server, account: PortalAccount) -> None:
    """A genuinely signed token of a send that is not stored, a token signed with another
    portal's key, and a token renamed to another portal are 404s; the pixel of an unknown
    send is still the GIF."""
    send = _send(server, account)
    other = server.new_portal("rep@other.example")
    signer = TokenSigner(_secret(server))
    unknown = signer.click_token("u" * 24, 0, URL, portal_id=account.portal_id)
    _not_found(_get(_click_url(server, unknown)))
    _not_found(_get(_click_url(server, _legacy_click(server, "u" * 24, 0, URL))))
    foreign = signer.click_token(send["token"], 0, URL, portal_id=other.portal_id)
    _not_found(_get(_click_url(server, foreign)))
    token = _links(send)[0].rsplit("/", 1)[1]
    assert token.startswith(f"{account.portal_id}.")
    renamed = f"{other.portal_id}.{token.partition('.')[2]}"
    _not_found(_get(_click_url(server, renamed)))
    assert _get(_links(send)[0]).headers["location"] == URL
    pixel = signer.open_token("u" * 24, portal_id=account.portal_id)
    gif = _get(f"{server.base_url}/t/o/{pixel}")
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    assert _get(f"{server.base_url}/t/o/garbage").status_code == 200


def test_a_token_with_its_url_swapped_404s(server: Server, account: PortalAccount) -> None:
    """Signed for the send and position but with another URL, or with the URL of another
    position, a token does not redirect: only the URL the send's HTML had there does."""
    send = _send(server, account)
    signer = TokenSigner(_secret(server))
    for position, url in ((0, "https://evil.example/phish"), (1, URL),
                          (7, "https://evil.example/")):
        swapped = signer.click_token(send["token"], position, url, portal_id=account.portal_id)
        _not_found(_get(_click_url(server, swapped)))
        _not_found(_get(_click_url(server, _legacy_click(server, send["token"], position, url))))
    assert _get(_links(send)[1]).headers["location"] == "https://shop.example/item/1"


def test_javascript_and_data_targets_never_redirect(
    server: Server, account: PortalAccount
) -> None:
    """Such links are left as they are in the HTML, and a signed token naming one is a 404."""
    html = ('<a href="javascript:alert(1)">j</a><a href="data:text/html,<b>x</b>">d</a>'
            '<a href="https://ok.example/">ok</a>')
    send = _send(server, account, html)
    assert len(_links(send)) == 1 and 'href="javascript:alert(1)"' in send["html"]
    signer = TokenSigner(_secret(server))
    for url in ("javascript:alert(1)", "data:text/html,<b>x</b>", "JAVASCRIPT:alert(1)",
                "//evil.example/"):
        for position in (0, 1):
            for token in (signer.click_token(send["token"], position, url,
                                             portal_id=account.portal_id),
                          _legacy_click(server, send["token"], position, url)):
                _not_found(_get(_click_url(server, token)))


def test_first_format_tokens_of_stored_sends_still_redirect(
    server: Server, account: PortalAccount
) -> None:
    """Links and pixels already in customers' inboxes, signed with the one server-wide
    key, keep working and are recorded."""
    send = _send(server, account)
    legacy = _click_url(server, _legacy_click(server, send["token"], 1,
                                              "https://shop.example/item/1"))
    response = _get(legacy)
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example/item/1"
    pixel = Signer(_secret(server), salt="inboxlog.open").sign(send["token"]).decode()
    assert _get(f"{server.base_url}/t/o/{pixel}").status_code == 200
    hits = _hits(server, account, send, until=2)
    assert sorted(hit["kind"] for hit in hits) == ["click", "open"]
    assert next(hit for hit in hits if hit["kind"] == "click")["link"] == {
        "position": 1, "url": "https://shop.example/item/1"}


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockedServer]:
    server = ClockedServer(tmp_path_factory.mktemp("expiring"),
                           extra_args=("--tracking-link-days", "30"))
    server.move_clock(0)
    server.start()
    yield server
    server.stop()


def test_links_expire_after_tracking_link_days(expiring: ClockedServer) -> None:
    """With --tracking-link-days 30 a link redirects on day 29 and is a 404 on day 30; the
    pixel still answers the GIF but records nothing."""
    account = expiring.new_portal()
    send = _send(expiring, account)
    link = _links(send)[0]
    expiring.move_clock(29 * 86400)
    assert _get(link).headers["location"] == URL
    expiring.move_clock(30 * 86400 + 60)
    response = _get(link)
    _not_found(response)
    assert "expired" in response.text
    assert _get(send["pixel_url"]).status_code == 200
    expiring.move_clock(29 * 86400)
    assert _get(link).status_code == 302  # marks the end of the recorder's batches
    hits = _hits(expiring, account, send, until=2)
    assert [hit["kind"] for hit in hits] == ["click", "click"]
    assert urlsplit(link).path.startswith("/t/c/")


def test_tracking_link_days_must_be_a_positive_number(tmp_path_factory: pytest.TempPathFactory
                                                      ) -> None:
    server = Server(tmp_path_factory.mktemp("bad-days"), extra_args=("--tracking-link-days", "0"))
    with pytest.raises(RuntimeError, match="server exited early"):
        server.start()
    assert re.search(r"Invalid value for '--tracking-link-days'.*0 is not in the range",
                     server.log())
