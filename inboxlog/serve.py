"""`inboxlog serve`: SMTP and HTTP on one event loop, sharing one Runtime."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from sqlalchemy import func, select

from core import accounts, retention, web_accounts
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.storage.models import Portal
from extension_api.app import DEFAULT_CORS_ORIGINS, create_app
from extension_api.throttle import DEFAULT_RATE_LIMIT
from inbox_sync.service import InboxService, ServiceOptions
from inboxlog.http_timeouts import HeadTimeoutH11Protocol
from smtp_ingest.server import start_smtp_server

log = logging.getLogger("inboxlog")

DEMO_FILE = "demo-account.json"


@dataclass(frozen=True)
class ServeOptions:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    http_host: str = "127.0.0.1"
    http_port: int = 8025
    tls_cert: Path | None = None
    tls_key: Path | None = None
    demo: bool = True
    forwarded_allow_ips: str = "127.0.0.1"
    cors_origins: str = DEFAULT_CORS_ORIGINS
    api_rate_limit: str = DEFAULT_RATE_LIMIT  # per caller, `limits` notation; "": none
    smtp: bool = True
    http: bool = True
    purge_interval: int = 3600
    inbox_sync: ServiceOptions = field(default_factory=ServiceOptions)
    tracking_link_days: int | None = None  # tracking links 404 this long after their send


def smtp_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def ensure_demo_account(runtime: Runtime) -> dict[str, object]:
    """On an empty database create a demo portal and user; return their credentials.

    The tokens are shown once at creation and kept in ``<data_dir>/demo-account.json``
    (mode 0600) so later starts can print them again.
    """
    path = runtime.settings.data_dir / DEMO_FILE
    async with runtime.db.transaction() as session:
        count = await session.scalar(select(func.count()).select_from(Portal))
        if count:
            return json.loads(path.read_text()) if path.exists() else {}
        created = await accounts.create_portal(session, "Demo")
        user = await accounts.add_user(
            session, created.portal.id, "you@example.com", name="Demo User"
        )
        demo = {
            "portal_id": created.portal.id,
            "bcc_address": f"{created.portal.bcc_token}@{runtime.settings.bcc_domain}",
            "admin_token": created.admin_token,
            "user_email": user.user.email,
            "user_token": user.api_token,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(demo, handle, indent=2)
    return demo


def _print_banner(settings: Settings, options: ServeOptions, demo: dict[str, object]) -> None:
    lines = ["inboxlog is running"]
    if options.smtp:
        lines.append(f"  SMTP  {options.smtp_host}:{options.smtp_port}")
    if options.http:
        scheme = "https" if options.tls_cert else "http"
        lines.append(f"  HTTP  {scheme}://{options.http_host}:{options.http_port}")
    if demo:
        lines += [
            "  demo account:",
            f"    logging address  {demo['bcc_address']}",
            f"    user             {demo['user_email']}",
            f"    user token       {demo['user_token']}",
            f"    admin token      {demo['admin_token']}",
        ]
        if "sign_in_link" in demo:
            lines.append(f"    sign in          {demo['sign_in_link']}  (once, 30 min)")
    print("\n".join(lines), flush=True)


async def serve(settings: Settings, options: ServeOptions) -> None:
    runtime = Runtime(settings)
    try:
        await migrate(runtime.db)
        demo = await ensure_demo_account(runtime) if options.demo else {}
        if demo.get("user_email"):  # the pages: a fresh one-time sign-in link each start
            async with runtime.db.transaction() as session:
                link = await web_accounts.operator_sign_in_link(
                    session, int(str(demo["portal_id"])), str(demo["user_email"]))
            demo["sign_in_link"] = link.url(settings.base_url)
        smtp_server = None
        if options.smtp:
            tls = (smtp_tls_context(options.tls_cert, options.tls_key)
                   if options.tls_cert and options.tls_key else None)
            smtp_server = await start_smtp_server(
                runtime, options.smtp_host, options.smtp_port, tls_context=tls
            )
        app = create_app(runtime, rate_limit=options.api_rate_limit,
                         cors_origins=options.cors_origins,
                         tracking_link_days=options.tracking_link_days)
        inbox_service = app.state.inboxes = InboxService(runtime, options.inbox_sync)
        config = uvicorn.Config(
            app, host=options.http_host, port=options.http_port,
            ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
            ssl_keyfile=str(options.tls_key) if options.tls_key else None,
            proxy_headers=True, forwarded_allow_ips=options.forwarded_allow_ips,
            lifespan="on", log_level="info", access_log=False, server_header=False,
            # Idle keep-alive connections close after 5 s, and a request head must be
            # complete within 10 s (HeadTimeoutH11Protocol): none is held forever.
            http=HeadTimeoutH11Protocol, timeout_keep_alive=5,
        )
        server = _Server(config)
        _print_banner(settings, options, demo)
        purger = (asyncio.create_task(_purge_periodically(runtime, options.purge_interval))
                  if options.purge_interval else None)
        # In the background: connecting to every inbox must not delay startup.
        inbox_starter = asyncio.create_task(inbox_service.start())
        try:
            if options.http:
                await server.serve()
            else:
                await _wait_for_signal()
        finally:
            if purger is not None:
                purger.cancel()
            inbox_starter.cancel()
            await inbox_service.stop()
            if smtp_server is not None:
                smtp_server.close()
                await smtp_server.wait_closed()
    finally:
        await runtime.close()


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT/SIGTERM without re-raising the signal.

    uvicorn re-raises a captured Ctrl+C when it returns, which makes asyncio cancel
    ``serve``'s own clean-up (closing SMTP, flushing tracking hits, closing the pool)
    half-way. Here the signal only asks the server to stop, and ``serve`` finishes.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def _purge_periodically(runtime: Runtime, interval: int) -> None:
    """Apply the retention rules every ``interval`` seconds; a failed run is retried next
    time, never fatal to the server."""
    while True:
        await asyncio.sleep(interval)
        try:
            counts = await retention.purge(runtime.db, runtime.blobs)
            log.info("retention purge: %s", json.dumps(counts))
        except Exception:
            log.exception("retention purge failed; retrying in %d s", interval)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
