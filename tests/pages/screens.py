"""Screenshots of each page for docs/screens/: ``python -m tests.pages.screens [DIR]``.

Starts an `inboxlog serve` of its own on a temporary data dir, logs a small
conversation over SMTP, refuses a stranger's message, and photographs the pages in
the tests' Chromium (loopback only), at desktop and at phone width.
"""

from __future__ import annotations

import contextlib
import smtplib
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from selenium.webdriver.common.by import By

from tests.pages.conftest import chromium, web_account
from tests.pages.test_browser import a_message, follow, send, sign_in
from tests.support import loopback_only
from tests.support.server import Server


def _a_ticket(server: Server, admin_token: str, member_id: int) -> int:
    """A team inbox with ``member_id`` in it, and the ticket a customer's email opened
    (over SMTP, to its forwarding address), tagged and in a pipeline."""
    with server.api(admin_token) as api:
        inbox = api.post("/api/v1/team-inboxes", json={
            "name": "Support", "address": "support@ourco.example",
            "members": [{"user_id": member_id}]}).json()
        customer = "Carla Customer <carla@customer.example>"
        send(server, a_message(customer, "support@ourco.example", "Printer on fire",
                               "Hello,\n\nour printer is on fire again.\n\nCarla"),
             inbox["forwarding_address"])
        [ticket] = api.get("/api/v1/tickets").json()["items"]
        api.patch(f"/api/v1/tickets/{ticket['id']}", json={
            "priority": "high", "pipeline": "Hardware", "stage": "Triage",
            "tags": ["printer"]})
    return int(ticket["id"])


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        server = Server(Path(data)).start()
        browser = chromium()
        try:
            rep = web_account(server, "rita@ourco.example")
            contact = "dana@customer.example"
            send(server, a_message("Rita Rep <rita@ourco.example>", f"Dana <{contact}>",
                                   "Proposal for Q3", "Hi Dana, the proposal is attached.",
                                   html="<p>Hi Dana,</p><p>the <b>proposal</b> is attached."
                                        "</p><p>Rita</p>"), rep.portal.bcc_address)
            send(server, a_message("rita@ourco.example", contact, "Follow-up: pricing",
                                   "Any questions on the pricing?"), rep.portal.bcc_address)
            # Refused, as intended: it shows in "Why not logged".
            with contextlib.suppress(smtplib.SMTPDataError):
                send(server, a_message("mallory@elsewhere.example", contact, "Hi"),
                     rep.portal.bcc_address)
            with server.api(rep.portal.user_token) as api:
                tracked = api.post("/api/v1/tracked-sends", json={
                    "to": [contact], "subject": "Proposal for Q3",
                    "html": "<p>Hi</p>"}).json()
                send_id, pixel = tracked["id"], tracked["pixel_url"]
            chrome = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
                      "like Gecko) Chrome/131.0.0.0 Safari/537.36")
            httpx.get(pixel, headers={"User-Agent": chrome})  # the sender's own
            httpx.get(pixel, headers={"User-Agent": chrome, "X-Forwarded-For": "203.0.113.7"})
            httpx.head(pixel, headers={"User-Agent": chrome, "X-Forwarded-For": "203.0.113.7"})
            time.sleep(1)  # the recorder writes hits in batches
            ticket_id = _a_ticket(server, rep.portal.admin_token, rep.portal.user_id)
            shots = {"sign-in": "/sign-in"}
            for name, path in shots.items():
                browser.get(server.base_url + path)
                browser.save_screenshot(str(folder / f"{name}.png"))
            sign_in(browser, server, rep)
            browser.get(f"{server.base_url}/contacts?q=dana")
            follow(browser, browser.find_element(By.CSS_SELECTOR, "#contacts a"))
            contact_page = browser.current_url
            follow(browser, browser.find_element(By.LINK_TEXT, "Proposal for Q3"))
            thread_page = browser.current_url.split("#")[0]
            for name, url in (("setup", f"{server.base_url}/setup"),
                              ("contacts", f"{server.base_url}/contacts"),
                              ("contact", contact_page), ("thread", thread_page),
                              ("search", f"{server.base_url}/search?q=proposal"),
                              ("why-not-logged", f"{server.base_url}/not-logged"),
                              ("team", f"{server.base_url}/team"),
                              ("inboxes", f"{server.base_url}/inboxes"),
                              ("tracking", f"{server.base_url}/tracking/{send_id}"),
                              ("tokens", f"{server.base_url}/tokens"),
                              ("tickets", f"{server.base_url}/tickets"),
                              ("ticket", f"{server.base_url}/tickets/{ticket_id}"),
                              ("reports", f"{server.base_url}/reports"),
                              ("authorize", f"{server.base_url}/oauth/authorize?" + urlencode({
                                  "response_type": "code", "client_id": "inboxlog for Gmail",
                                  "redirect_uri": "https://abcdefghijklmnopabcdefghijklmnop"
                                                  ".chromiumapp.org/done",
                                  "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                  "code_challenge_method": "S256"}))):
                for width, suffix in ((1280, ""), (390, "-phone")):
                    browser.set_window_size(width, 900)
                    browser.get(url)
                    time.sleep(0.3)
                    height = browser.execute_script(
                        "return document.documentElement.scrollHeight")
                    browser.set_window_size(width, min(max(int(height), 600), 2400))
                    browser.save_screenshot(str(folder / f"{name}{suffix}.png"))
                browser.set_window_size(1280, 900)
        finally:
            browser.quit()
            server.stop()


if __name__ == "__main__":
    loopback_only.install()
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screens"))
