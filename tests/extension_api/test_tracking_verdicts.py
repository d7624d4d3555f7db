"""Open and click verdicts over real HTTP, with hits dated by a test clock: Outlook
desktop, images blocked, Safe Links and MPP bursts, the labelled set, the hits endpoint."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.server import ClockedServer, PortalAccount
from tests.tracking_requests.labelled import load

OUTLOOK = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/132.0.0.0 Safari/537.36")
READER = "203.0.113.7"


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockedServer]:
    data_dir = tmp_path_factory.mktemp("clocked")
    server = ClockedServer(data_dir)
    server.move_clock(0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rep(clocked: ClockedServer) -> PortalAccount:
    return clocked.new_portal()


class Sent:
    """A tracked send with three links, marked sent: ``hit`` dates each hit relative to
    the moment it was handed to the mail server."""

    def __init__(self, server: ClockedServer, account: PortalAccount) -> None:
        self.server, self.account = server, account
        body = "".join(f'<p><a href="https://shop.example/{i}">item {i}</a></p>' for i in range(3))
        with server.api(account.user_token) as api:
            created = api.post("/api/v1/tracked-sends", json={
                "to": ["amy@buyer.example"], "subject": "Offer", "log": False,
                "html": f"<html><body>{body}</body></html>"}).json()
            marked = api.post(f"/api/v1/tracked-sends/{created['id']}/sent").json()
            assert "sent_at" in marked, marked
        self.id, self.pixel = created["id"], created["pixel_url"]
        self.links = re.findall(r'href="([^"]+/t/c/[^"]+)"', created["html"])
        self.sent_at = datetime.fromisoformat(marked["sent_at"].replace("Z", "+00:00"))

    def hit(self, after: float, *, kind: str = "open", link: int = 0, ip: str = READER,
            agent: str = CHROME, method: str = "GET",
            headers: dict[str, str] | None = None) -> httpx.Response:
        # Date the hit ``after`` seconds after the send, whatever the time is now.
        now = datetime.now(self.sent_at.tzinfo)
        self.server.move_clock(after - (now - self.sent_at).total_seconds())
        url = self.pixel if kind == "open" else self.links[link]
        return httpx.request(method, url, follow_redirects=False, headers={
            "User-Agent": agent, "X-Forwarded-For": ip, **(headers or {})})

    def hits(self, expected: int) -> list[dict[str, Any]]:
        """The send's hits once the recorder has written ``expected`` of them."""
        deadline = time.monotonic() + 10
        with self.server.api(self.account.user_token) as api:
            while True:
                response = api.get(f"/api/v1/tracked-sends/{self.id}/hits")
                assert response.status_code == 200, response.text
                items = response.json()["items"]
                if len(items) >= expected:
                    result: list[dict[str, Any]] = items
                    return result
                assert time.monotonic() < deadline, f"{len(items)} of {expected} hits recorded"
                time.sleep(0.1)

    def tracking(self) -> dict[str, Any]:
        with self.server.api(self.account.user_token) as api:
            result: dict[str, Any] = api.get(f"/api/v1/tracked-sends/{self.id}").json()["tracking"]
            return result


def test_outlook_desktop_open_is_a_person(clocked: ClockedServer, rep: PortalAccount) -> None:
    """Outlook for Windows' ms-office pixel fetch, 2 h after the send, is a person's open."""
    send = Sent(clocked, rep)
    assert send.hit(7200, agent=OUTLOOK).status_code == 200
    [hit] = send.hits(1)
    assert hit["verdict"] == "person" and hit["counted"] is True
    assert hit["reason"] == "Outlook desktop (Windows), 2 h after the send"
    assert hit["client"] == "Outlook desktop (Windows)" and hit["kind"] == "open"
    assert hit["network"] == "203.0.113.0/24" and hit["link"] is None
    assert send.tracking() == {"opens": 1, "clicks": 0, "machine_opens": 0, "machine_clicks": 0}


def test_images_blocked_single_click_minutes_after_the_send(
    clocked: ClockedServer, rep: PortalAccount
) -> None:
    """One click, 7 minutes after the send, no open (images blocked): a person; the same
    click 3 seconds after the send is a scanner at delivery."""
    person = Sent(clocked, rep)
    assert person.hit(420, kind="click", link=1).headers["location"] == "https://shop.example/1"
    [hit] = person.hits(1)
    assert (hit["verdict"], hit["reason"]) == ("person", "Chrome on Windows, 7 min after the send")
    assert hit["link"] == {"position": 1, "url": "https://shop.example/1"}
    assert person.tracking() == {"opens": 1, "clicks": 1, "machine_opens": 0,
                                 "machine_clicks": 0}
    scanner = Sent(clocked, rep)
    scanner.hit(3, kind="click", link=1)
    [hit] = scanner.hits(1)
    assert hit["verdict"] == "machine" and "at delivery" in hit["reason"]


def test_safe_links_burst_with_a_browser_agent(clocked: ClockedServer, rep: PortalAccount) -> None:
    """Every link clicked within a second by Chrome from Microsoft's EOP range: machines."""
    send = Sent(clocked, rep)
    for link, ip in enumerate(("40.107.22.5", "40.107.22.5", "52.100.9.12")):
        assert send.hit(4 + link / 10, kind="click", link=link, ip=ip).status_code == 302
    hits = send.hits(3)
    assert [h["verdict"] for h in hits] == ["machine"] * 3
    assert all("Microsoft Exchange Online Protection" in h["reason"] for h in hits)
    assert send.tracking() == {"opens": 0, "clicks": 0, "machine_opens": 0, "machine_clicks": 3}


def test_mpp_burst(clocked: ClockedServer, rep: PortalAccount) -> None:
    """Apple's proxies fetching the pixel three times at delivery are machine opens."""
    send = Sent(clocked, rep)
    for i, ip in enumerate(("17.58.101.12", "17.58.101.40", "17.58.102.7")):
        send.hit(2 + i / 3, ip=ip, agent="Mozilla/5.0")
    hits = send.hits(3)
    assert {(h["verdict"], h["reason"]) for h in hits} == {
        ("machine", "Apple Mail Privacy Protection prefetch")}
    assert send.tracking() == {"opens": 0, "clicks": 0, "machine_opens": 3, "machine_clicks": 0}
    with clocked.api(rep.user_token) as api:
        events = [e for e in api.get("/api/v1/events", params={"limit": 500}).json()["items"]
                  if e["detail"].get("tracked_send_id") == send.id]
    assert [e["machine"] for e in events] == [True] * 3  # the feed says what the counts say


def test_the_labelled_set_over_http(clocked: ClockedServer) -> None:
    """Every case of the published set, replayed through the port: each verdict right."""
    # A portal per 15 cases: the API allows one caller 100 requests in 10 s.
    accounts = [clocked.new_portal(f"rep{i}@set.example") for i in range(len(load()) // 15 + 1)]
    cases = [(case, Sent(clocked, accounts[i // 15])) for i, case in enumerate(load())]
    for case, send in cases:
        for raw in sorted(case.hits, key=lambda h: h["at"]):
            send.hit(raw["at"], kind=raw["kind"], link=raw.get("link") or 0, ip=raw["ip"],
                     agent=raw["agent"], method=raw.get("method", "GET"),
                     headers=raw.get("headers"))
    wrong = []
    for case, send in cases:
        for hit in send.hits(len(case.hits)):
            if (hit["verdict"] == "machine") != (case.label == "machine"):
                wrong.append((case.id, hit["reason"]))
    assert wrong == []


def test_hits_stay_in_their_portal_and_never_show_a_full_address(
    clocked: ClockedServer, rep: PortalAccount
) -> None:
    """Another portal gets a 404; the hits carry the /24 (or /48), never the address."""
    send = Sent(clocked, rep)
    send.hit(600, ip="2001:db8:77:1::5")
    send.hit(601, ip="198.51.100.23")
    with clocked.api(rep.user_token) as api:
        deadline = time.monotonic() + 10
        while len(items := api.get(f"/api/v1/tracked-sends/{send.id}/hits").json()[
                "items"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        raw = api.get(f"/api/v1/tracked-sends/{send.id}/hits").text
        page = api.get(f"/api/v1/tracked-sends/{send.id}/hits",
                       params={"after": items[0]["id"], "limit": 1}).json()
        assert api.get(f"/api/v1/tracked-sends/{send.id}/hits",
                       params={"limit": 0}).status_code == 400
    assert [h["network"] for h in items] == ["2001:db8:77::/48", "198.51.100.0/24"]
    assert "2001:db8:77:1::5" not in raw and "198.51.100.23" not in raw
    assert [h["id"] for h in page["items"]] == [items[1]["id"]]
    other = clocked.new_portal("eve@elsewhere.example")
    with clocked.api(other.user_token) as api:
        assert api.get(f"/api/v1/tracked-sends/{send.id}/hits").status_code == 404
