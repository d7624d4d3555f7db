"""`make run`'s five-minute tour: `inboxlog serve` on a fresh data dir prints a one-time
sign-in link for the demo user, and the link signs them in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.pages.conftest import csrf_of
from tests.support.server import free_port, stop_process


def test_serve_prints_a_sign_in_link_for_the_demo_account(tmp_path: Path) -> None:
    """The banner's link opens a page whose button signs the demo user in; with no
    --base-url, links point at the port the server listens on."""
    http_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXLOG_")}
    env["INBOXLOG_DATA_DIR"] = str(tmp_path)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.loopback_only", "serve",
             "--smtp-port", str(free_port()), "--http-port", str(http_port),
             "--no-inbox-sync"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, found = time.monotonic() + 30, None
        while found is None and time.monotonic() < deadline:
            found = re.search(r"sign in +(http://\S+)", log.read_text(errors="replace"))
            time.sleep(0.1)
        assert found, log.read_text(errors="replace")
        assert found.group(1).startswith(f"http://127.0.0.1:{http_port}/link?token=")
        with httpx.Client(timeout=30) as browser:
            while time.monotonic() < deadline:  # the banner comes just before the port
                try:
                    browser.get(f"http://127.0.0.1:{http_port}/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            page = browser.get(found.group(1))
            assert page.status_code == 200 and "you@example.com" in page.text
            token = found.group(1).split("token=")[1]
            signed_in = browser.post(f"http://127.0.0.1:{http_port}/link",
                                     data={"csrf": csrf_of(page.text), "token": token})
            assert signed_in.status_code == 303
            setup = browser.get(f"http://127.0.0.1:{http_port}/setup")
            assert "you@example.com (admin)" in setup.text
    finally:
        stop_process(process)
