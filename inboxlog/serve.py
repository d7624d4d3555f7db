"""`inboxlog serve`: SMTP and HTTP on one event loop, sharing one Runtime.

With ``--workers N`` (``inboxlog.workers``) N processes each run ``serve`` on sockets
their supervisor bound; worker 0 alone runs the periodic purge and the inbox sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from sqlalchemy import func, select, text

from core import accounts, leases, retention, web_accounts
from core.runtime import Runtime, Settings
from core.storage import connections
from core.storage.db import migrate
from core.storage.models import Portal
from core.tickets.acknowledgements import OutboxSender
from core.tickets.refigure import Refigurer
from extension_api.app import DEFAULT_CORS_ORIGINS, create_app
from extension_api.throttle import DEFAULT_RATE_LIMIT
from inbox_sync.service import InboxService, ServiceOptions
from inbox_sync.webhooks import WebhookOptions
from inboxlog.http_timeouts import HeadTimeoutH11Protocol
from inboxlog.webhook_options import start_webhooks
from smtp_ingest.server import start_smtp_server

log = logging.getLogger("inboxlog")

DEMO_FILE = "demo-account.json"
# The advisory lock key of ``one_node_at_a_time`` ("inboxlog" in ASCII).
PREPARE_LOCK = 0x696E626F786C6F67


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
    webhooks: WebhookOptions = field(default_factory=WebhookOptions)
    workers: int = 1  # processes sharing the ports (inboxlog.workers); 1: this one alone
    # The SMTP port's proxies (addresses or networks): every connection must open with a
    # PROXY protocol header from one of them. (): no proxy, none is read.
    smtp_proxy_from: tuple[str, ...] = ()
    # PostgreSQL connections this node may hold, split over its workers
    # (core.storage.connections); SQLite ignores it.
    db_connections: int = connections.DEFAULT_BUDGET


@dataclass(frozen=True)
class Worker:
    """Which of ``serve --workers N``'s processes this is, and what its supervisor bound
    for it (None: ``serve`` binds its ports itself, the single-process case)."""

    index: int = 0
    count: int = 1
    smtp_socket: socket.socket | None = None
    http_socket: socket.socket | None = None
    supervisor_fd: int | None = None  # readable at EOF: the supervisor is gone, stop

    @property
    def runs_singletons(self) -> bool:
        """Whether this process runs the periodic purge and the connected-inbox sync.
        Leases would let every worker take a share (``core.leases``), but the node's
        send spool is one directory, and a restarted worker sets aside every
        unfinished send in it as its own: one worker per node, the one that owns it."""
        return self.index == 0


T = TypeVar("T")


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``serve`` runs on: uvloop's (libuv, in C: less CPU per logged
    message than asyncio's, for aiosmtpd and uvicorn alike) when it loads and
    ``INBOXLOG_EVENT_LOOP`` does not say ``asyncio``; else None, asyncio's own."""
    if os.environ.get("INBOXLOG_EVENT_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # no wheel for this platform: asyncio's loop serves the same
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop of ``event_loop_factory`` (``serve``, and the
    supervisor of ``serve --workers``)."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


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


async def prepare(settings: Settings, options: ServeOptions) -> dict[str, object]:
    """What runs once per start, before any worker serves: the migrations, and the demo
    account with a fresh sign-in link (empty without ``options.demo``)."""
    runtime = Runtime(settings)
    try:
        return await _prepare(runtime, options)
    finally:
        await runtime.close()


async def _prepare(runtime: Runtime, options: ServeOptions) -> dict[str, object]:
    async with one_node_at_a_time(runtime):
        await migrate(runtime.db)
        demo = await ensure_demo_account(runtime) if options.demo else {}
    if demo.get("user_email"):  # the pages: a fresh one-time sign-in link each start
        async with runtime.db.transaction() as session:
            link = await web_accounts.operator_sign_in_link(
                session, int(str(demo["portal_id"])), str(demo["user_email"]))
        demo["sign_in_link"] = link.url(runtime.settings.base_url)
    return demo


@contextlib.asynccontextmanager
async def one_node_at_a_time(runtime: Runtime) -> AsyncIterator[None]:
    """On PostgreSQL, hold a session advisory lock: nodes started together on one
    database migrate and make the demo account one after the other (the next finds
    nothing left to do) instead of racing to create the same tables."""
    if runtime.db.is_sqlite:
        yield
        return
    async with runtime.db.write_engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PREPARE_LOCK})
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PREPARE_LOCK})


def print_banner(settings: Settings, options: ServeOptions, demo: dict[str, object]) -> None:
    lines = ["inboxlog is running"]
    if options.smtp:
        proxied = "  (PROXY protocol)" if options.smtp_proxy_from else ""
        lines.append(f"  SMTP  {options.smtp_host}:{options.smtp_port}{proxied}")
    if options.http:
        scheme = "https" if options.tls_cert else "http"
        lines.append(f"  HTTP  {scheme}://{options.http_host}:{options.http_port}")
    if options.workers > 1:
        lines.append(f"  workers  {options.workers} processes (purge and inbox sync in worker 0)")
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


async def serve(settings: Settings, options: ServeOptions, worker: Worker | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or, in a worker, its supervisor's end). Without
    ``worker`` this process is the whole server: it prepares the database first (see
    ``prepare``) and prints the banner; a worker's supervisor did both."""
    if not settings.database_url.startswith("sqlite"):  # SQLite: no server to share
        connections.use(connections.share_of(
            options.db_connections, worker.count if worker else 1,
            worker.index if worker else 0,
            f"inboxlog serve worker {worker.index}" if worker else "inboxlog serve"))
    runtime = Runtime(settings)
    try:
        demo = await _prepare(runtime, options) if worker is None else None
        worker = worker or Worker()
        smtp_server = None
        if options.smtp:
            tls = (smtp_tls_context(options.tls_cert, options.tls_key)
                   if options.tls_cert and options.tls_key else None)
            smtp_server = await start_smtp_server(
                runtime, options.smtp_host, options.smtp_port, tls_context=tls,
                sock=worker.smtp_socket, proxy_from=options.smtp_proxy_from,
            )
        app = create_app(runtime, rate_limit=options.api_rate_limit,
                         cors_origins=options.cors_origins,
                         tracking_link_days=options.tracking_link_days)
        # Only worker 0 keeps inboxes synced, taking their leases (Worker.runs_singletons);
        # the others connect, send and sync on request, then let the connection go.
        sync_options = (options.inbox_sync if worker.runs_singletons
                        else replace(options.inbox_sync, background=False))
        inbox_service = app.state.inboxes = InboxService(runtime, sync_options)
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
        # Every process runs one (claims never overlap): deliveries go out of all.
        webhook_sender = start_webhooks(runtime, app, options.webhooks)
        # Acknowledgements a relay failure or a dead process left unsent (every process
        # runs one; a sweep is one node's turn).
        ack_sender = OutboxSender(runtime).start()
        # Ticket figures an hours change left stale (every process runs one; one at a
        # time walks, by its lease).
        refigurer = Refigurer(runtime.db).start()
        # PostgreSQL: event streams here wake at events committed by any node.
        events_listener = app.state.events.listen(runtime.db)
        if demo is not None:
            print_banner(settings, options, demo)
        purger = (asyncio.create_task(_purge_periodically(runtime, options.purge_interval))
                  if options.purge_interval and worker.runs_singletons else None)
        # In the background: connecting to every inbox must not delay startup.
        inbox_starter = (asyncio.create_task(inbox_service.start())
                         if worker.runs_singletons else None)
        stop = asyncio.Event()
        if worker.supervisor_fd is not None:
            _stop_when_readable(worker.supervisor_fd, server, stop)
        try:
            if options.http:
                await server.serve(sockets=[worker.http_socket] if worker.http_socket else None)
            else:
                await _wait_for_signal(stop)
        finally:
            if worker.supervisor_fd is not None:
                asyncio.get_running_loop().remove_reader(worker.supervisor_fd)
            if purger is not None:
                purger.cancel()
            if inbox_starter is not None:
                inbox_starter.cancel()
            await inbox_service.stop()
            await webhook_sender.stop()
            await ack_sender.stop()
            await refigurer.stop()
            if events_listener is not None:
                events_listener.cancel()
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
    """Apply the retention rules every ``interval`` seconds, on one node at a time: the
    first to ask once the last purge (on any node sharing the database) is that old
    (``core.leases``); a failed run is retried next time, never fatal to the server."""
    while True:
        await asyncio.sleep(leases.turn_checks(interval))
        try:
            if not await leases.my_turn(runtime.db, leases.PURGE, interval):
                continue
            counts = await retention.purge(runtime.db, runtime.blobs)
            log.info("retention purge: %s", json.dumps(counts))
        except Exception:
            log.exception("retention purge failed; retrying in %d s", interval)


def _stop_when_readable(fd: int, server: uvicorn.Server, stop: asyncio.Event) -> None:
    """Stop as SIGTERM would once ``fd`` (the supervisor's pipe) reads end of file: the
    supervisor died without telling (SIGKILL), and no worker may outlive it."""
    loop = asyncio.get_running_loop()

    def gone() -> None:
        loop.remove_reader(fd)
        log.warning("the supervisor is gone: stopping")
        server.handle_exit(signal.SIGTERM, None)
        stop.set()

    loop.add_reader(fd, gone)


async def _wait_for_signal(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
