"""The pages' fixtures: one `inboxlog serve` with an SMTP relay (the recorder), accounts
that can sign in, and one real Chromium (Debian's, through chromium-driver) for the
session, which reaches 127.0.0.1 only."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from core import web_accounts
from core.storage.db import Database, sqlite_url
from core.storage.models import User
from core.types import Role
from tests.support.server import PortalAccount, Server, run_coroutine
from tests.support.smtp_recorder import SmtpRecorder

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(scope="session")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder.relay(tmp_path_factory.mktemp("relay"))
    yield recorder
    recorder.stop()


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory,
               relay: SmtpRecorder) -> Iterator[Server]:
    """`inboxlog serve` whose mail (sign-in links, invitations) goes to the recorder."""
    running = Server(tmp_path_factory.mktemp("web"), extra_args=relay.serve_args()).start()
    yield running
    running.stop()


@dataclass(frozen=True)
class WebAccount:
    portal: PortalAccount
    email: str
    password: str


def enable_sign_in(server: Server, user_id: int, role: Role,
                   password: str = PASSWORD) -> None:
    """Let user ``user_id`` of ``server`` sign in to the pages with ``password``, as
    ``role`` (through core, as the invitation link's page does)."""

    async def enable() -> None:
        db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                user = await session.get(User, user_id)
                assert user is not None
                login = await web_accounts.enable(session, user, role)
                await web_accounts.set_password(session, login, password)
        finally:
            await db.dispose()

    run_coroutine(enable)


def web_account(server: Server, email_address: str, *, role: Role = Role.ADMIN,
                password: str = PASSWORD) -> WebAccount:
    """A fresh portal whose one user signs in with ``password``."""
    portal = server.new_portal(email_address)
    enable_sign_in(server, portal.user_id, role, password)
    return WebAccount(portal, email_address, password)


_counter = iter(range(1, 10**6))


def unique(prefix: str) -> str:
    """An address no other test uses (the server and its budgets are shared)."""
    return f"{prefix}{next(_counter)}.{time.monotonic_ns()}@ourco.example"


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form token"
    return found.group(1)


def sign_in_with(client: httpx.Client, account: WebAccount) -> httpx.Client:
    """Sign ``client`` in as ``account`` through the form; AssertionError if refused."""
    page = client.get("/sign-in")
    answer = client.post("/sign-in", data={"csrf": csrf_of(page.text), "email": account.email,
                                          "password": account.password, "next": "/setup"})
    assert answer.status_code == 303, answer.text
    return client


class Browsers:
    """HTTP clients, each a browser of its own (cookies), closed after the test."""

    def __init__(self, server: Server) -> None:
        self.server, self.open = server, list[httpx.Client]()

    def new(self, account: WebAccount | None = None) -> httpx.Client:
        client = httpx.Client(base_url=self.server.base_url, timeout=30)
        self.open.append(client)
        return sign_in_with(client, account) if account is not None else client

    def __enter__(self) -> Browsers:
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self.open:
            client.close()


@pytest.fixture
def browsers(web_server: Server) -> Iterator[Browsers]:
    with Browsers(web_server) as made:
        yield made


def mails_to(relay: SmtpRecorder, address: str) -> list[EmailMessage]:
    found = []
    for envelope, raw in relay.messages():
        if address in envelope["rcpt_tos"]:
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
    return found


def link_in(relay: SmtpRecorder, address: str, timeout: float = 10) -> str:
    """The link of the newest mail to ``address`` (waiting for it to arrive)."""
    deadline = time.monotonic() + timeout
    while True:
        mails = mails_to(relay, address)
        if mails:
            body = mails[-1].get_body(("plain",))
            assert body is not None
            found = re.search(r"http://\S+/link\?token=\S+", body.get_content())
            assert found, body.get_content()
            return found.group(0)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no mail to {address}")
        time.sleep(0.05)


def chromium(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    """Debian's Chromium, headless, that talks to 127.0.0.1 only: no proxy, no
    background networking, every other host name resolving to nothing."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--no-proxy-server", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--disable-default-apps", "--disable-extensions",
                     "--disable-features=Translate,OptimizationHints,MediaRouter",
                     "--metrics-recording-only", "--no-pings",
                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """One Chromium for the whole session (starting one costs seconds)."""
    driver = chromium()
    yield driver
    driver.quit()
