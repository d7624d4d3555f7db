"""The `inboxlog` command. Every option also reads ``INBOXLOG_<OPTION>`` from the environment."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from core import accounts, pipeline, retention, web_accounts
from core import secret_key as secret_key_file
from core.errors import CoreError
from core.outbound_mail import SmtpRelay
from core.runtime import Runtime, Settings, parse_nameserver
from core.storage import connections
from core.storage.blobs import parse_s3_url
from core.storage.db import migrate as run_migrations
from core.storage.statements import lookup_timeout
from core.types import Channel
from extension_api.app import DEFAULT_CORS_ORIGINS
from extension_api.throttle import DEFAULT_RATE_LIMIT
from inbox_sync.outbound import Destinations
from inbox_sync.service import ServiceOptions
from inboxlog.oauth_options import oauth_config, oauth_options
from inboxlog.serve import ServeOptions, one_node_at_a_time, run, serve
from inboxlog.webhook_options import webhook_config, webhook_options
from inboxlog.workers import WorkersUnavailable, check_workers, run_workers

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _env(name: str) -> str:
    return "INBOXLOG_" + name.upper().replace("-", "_")


def option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option whose value may also come from INBOXLOG_<NAME>."""
    name = decls[0].lstrip("-").split("/")[0]
    return click.option(*decls, envvar=_env(name), show_envvar=True, **kwargs)


def storage_options(func: F) -> F:
    func = option("--data-dir", type=click.Path(path_type=Path), default=Path("var"),
                  show_default=True, help="Where the SQLite database and blobs live.")(func)
    func = option("--db", default="", help="SQLAlchemy URL; default SQLite under --data-dir.")(func)
    return func


def _settings(db: str, data_dir: Path, **extra: Any) -> Settings:
    # Every command that touches blobs (purge, ingest) uses serve's store.
    for name in ("blob_store", "s3_endpoint_url"):
        extra.setdefault(name, os.environ.get(_env(name), "").strip())
    return Settings(data_dir=data_dir, db_url=db, **extra)


def _run_with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        runtime = Runtime(settings)
        try:
            # serve's lock: two commands, or a command and a starting node, never
            # migrate one PostgreSQL database at the same time.
            async with one_node_at_a_time(runtime):
                await run_migrations(runtime.db)
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def _print_result(settings: Settings, work: Callable[[Runtime], Awaitable[Any]]) -> None:
    """Run a command's work and print its JSON result; a CoreError exits 1 with a JSON
    error on stderr."""
    try:
        click.echo(json.dumps(_run_with_runtime(settings, work)))
    except CoreError as exc:
        _fail(exc.message, exc.code)


def _fail(message: str, code: str = "error") -> None:
    click.echo(json.dumps({"error": {"code": code, "message": message}}), err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """inboxlog: put your customer email on CRM timelines."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # aiosmtpd logs every command at INFO; keep its warnings and errors only.
    for noisy in ("alembic", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _listening_url(host: str, port: int, *, tls: bool) -> str:
    """The URL a browser on this machine reaches the HTTP server at."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else (
        f"[{host}]" if ":" in host else host)
    return f"{'https' if tls else 'http'}://{shown}:{port}"


@main.command("serve")
@storage_options
@option("--smtp-host", default="127.0.0.1", show_default=True)
@option("--smtp-port", type=int, default=2525, show_default=True)
@option("--http-host", default="127.0.0.1", show_default=True)
@option("--http-port", type=int, default=8025, show_default=True)
@option("--bcc-domain", default="bcc.localhost", show_default=True,
        help="Domain of the logging addresses.")
@option("--base-url", default="",
        help="Public URL of the HTTP API (links, pixels, sign-in); default: the address "
             "it listens on, http://HTTP-HOST:HTTP-PORT (https with --tls-cert).")
@option("--secret-key", default="",
        help="Signing and encryption key; empty: generated once into <data-dir>/secret_key.")
@option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Certificate (PEM) for SMTP STARTTLS and HTTPS.")
@option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@option("--no-demo", is_flag=True, help="Do not create a demo account on first start.")
@option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
        help="Proxies trusted to set X-Forwarded-For.")
@option("--cors-origins", default=None,
        help="Regular expression of the browser origins allowed to call the API "
             "(default: the extension's chrome-extension://, moz-extension:// and "
             "safari-web-extension:// pages, Gmail and Outlook on the web).")
@option("--only", type=click.Choice(["smtp", "http"]), default=None,
        help="Serve only one of the two protocols.")
@option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
        help="Processes sharing the SMTP and HTTP ports (PostgreSQL only), under a "
             "supervisor that restarts one that dies; worker 0 alone runs the periodic "
             "purge and the inbox sync.")
@option("--db-connections", type=click.IntRange(min=1),
        default=connections.DEFAULT_BUDGET, show_default=True,
        help="PostgreSQL connections this node may hold at once, split over its "
             "workers (each worker's engine pool and overflow, its rate-limit pool, its "
             "2 LISTEN connections); refused at start when the server cannot take "
             "them. Several nodes: their sum must fit max_connections. Ignored on "
             "SQLite.")
@option("--smtp-proxy-protocol", is_flag=True,
        help="Every SMTP connection opens with a PROXY protocol header (HAProxy's "
             "send-proxy or send-proxy-v2) naming the client, whose address the sender "
             "checks, limits and logs then use; a connection without one, or from "
             "outside --smtp-proxy-from, is closed.")
@option("--smtp-proxy-from", default="127.0.0.1,::1", show_default=True,
        help="Proxies (addresses or CIDR networks, comma-separated) whose PROXY "
             "protocol header is believed, with --smtp-proxy-protocol.")
@option("--api-rate-limit", default=DEFAULT_RATE_LIMIT, show_default=True,
        help="Request budgets of one API caller (a user, or an admin token), e.g. "
             "\"200 per 10 seconds; 6000 per 10 minutes\"; past them 429 with Retry-After. "
             "An empty value turns the limit off.")
@option("--purge-interval", type=click.IntRange(min=0), default=3600, show_default=True,
        help="Seconds between retention purges; 0 turns the periodic purge off.")
@option("--inbox-sync/--no-inbox-sync", default=True, show_default=True,
        help="Keep connected inboxes synced in the background.")
@option("--inbox-poll-interval", type=click.FloatRange(min=1), default=60.0, show_default=True,
        help="Seconds between polls of an IMAP server without IDLE.")
@option("--inbox-disconnect-after", type=click.FloatRange(min=0), default=86400.0,
        show_default=True, help="Seconds an unreachable IMAP server is retried before the "
        "inbox is marked disconnected.")
@option("--allow-mail-hosts", default="",
        help="More destinations connected inboxes may reach, as HOST:PORT,... (HOST an "
             "address, a network or a name; PORT a number or *), e.g. 127.0.0.1:1143. "
             "By default only public addresses on the ports 25, 143, 465, 587, 993, 2525.")
@option("--inbox-timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
        help="Seconds an IMAP or SMTP server has to answer; the longer budgets of a "
             "connection are multiples of it.")
@option("--tracking-link-days", type=click.IntRange(min=1), default=None,
        help="Days after a tracked send its links answer 404 (and its opens are no "
             "longer recorded); default: links never expire.")
@option("--trusted-networks", default="127.0.0.1,::1", show_default=True,
        help="SMTP clients (addresses or CIDR networks, comma-separated) whose mail skips "
             "sender authentication (local submission), or is read by the "
             "Authentication-Results of --trusted-authserv-id; like Postfix's mynetworks.")
@option("--trusted-authserv-id", default="",
        help="authserv-ids (comma-separated) of the MTA in front of inboxlog: from a "
             "trusted network, its topmost Authentication-Results decides.")
@option("--trusted-arc-sealers", default="",
        help="Domains (comma-separated) whose ARC seal may vouch for a forward that fails "
             "DMARC, e.g. google.com,microsoft.com.")
@option("--dns-server", default="",
        help="Resolvers for sender authentication, HOST[:PORT],... (addresses; IPv6 as "
             "[ADDR]:PORT); default: the machine's.")
@option("--dns-timeout", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
        help="Seconds one DNS query may take (a lookup gets twice that).")
@option("--dns-stub-zone", default="",
        help="ZONE=HOST[:PORT],...: names under ZONE are asked there (split horizon).")
@option("--smtp-relay", default="",
        help="Outbound SMTP relay for the mail inboxlog sends itself (address "
             "confirmations): smtp://[USER:PASS@]HOST[:PORT] (STARTTLS when offered, port "
             "25) or smtps://... (TLS, port 465). Without it, no mail is sent.")
@option("--mail-from", default="",
        help="Sender of that mail; default inboxlog@<bcc-domain>.")
@option("--blob-store", default="",
        help="Where attachments and raw copies live: s3://BUCKET/PREFIX (an "
             "S3-compatible bucket; credentials and region from AWS_ACCESS_KEY_ID, "
             "AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION); default <data-dir>/blobs.")
@option("--s3-endpoint-url", default="",
        help="The S3-compatible server's URL; default AWS_ENDPOINT_URL, else AWS.")
@oauth_options
@webhook_options
def serve_command(db: str, data_dir: Path, smtp_host: str, smtp_port: int, http_host: str,
                  http_port: int, bcc_domain: str, base_url: str, secret_key: str,
                  tls_cert: Path | None, tls_key: Path | None, no_demo: bool,
                  forwarded_allow_ips: str, cors_origins: str | None, only: str | None,
                  workers: int, db_connections: int, smtp_proxy_protocol: bool,
                  smtp_proxy_from: str,
                  api_rate_limit: str,
                  purge_interval: int, allow_mail_hosts: str, inbox_timeout: float,
                  inbox_sync: bool, inbox_poll_interval: float,
                  inbox_disconnect_after: float,
                  tracking_link_days: int | None,
                  trusted_networks: str, trusted_authserv_id: str, trusted_arc_sealers: str,
                  dns_server: str, dns_timeout: float, dns_stub_zone: str,
                  smtp_relay: str, mail_from: str, blob_store: str, s3_endpoint_url: str,
                  **oauth: str) -> None:
    """Serve SMTP (logging addresses) and HTTP (extension API) on one event loop."""
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        check_workers(Settings(data_dir=data_dir, db_url=db), workers)
    except WorkersUnavailable as exc:
        raise click.BadParameter(str(exc), param_hint="--workers") from None
    _check_db_connections(Settings(data_dir=data_dir, db_url=db), db_connections, workers)
    try:  # a setting only the environment gives: refused now, not at first use
        lookup_timeout()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if smtp_relay:
        try:
            SmtpRelay.parse(smtp_relay)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--smtp-relay") from None
    if blob_store.strip():
        try:
            parse_s3_url(blob_store.strip())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--blob-store") from None
    secret_key = secret_key_file.load_or_create(data_dir, secret_key)
    base_url = base_url.strip() or _listening_url(http_host, http_port, tls=bool(tls_cert))
    settings = _settings(db, data_dir, bcc_domain=bcc_domain, base_url=base_url,
                         secret_key=secret_key, smtp_relay=smtp_relay.strip(),
                         mail_from=mail_from.strip(), blob_store=blob_store.strip(),
                         s3_endpoint_url=s3_endpoint_url.strip(),
                         **_sender_auth_settings(trusted_networks, trusted_authserv_id,
                                                 trusted_arc_sealers, dns_server, dns_timeout,
                                                 dns_stub_zone))
    options = ServeOptions(
        smtp_host=smtp_host, smtp_port=smtp_port, http_host=http_host, http_port=http_port,
        tls_cert=tls_cert, tls_key=tls_key, demo=not no_demo,
        forwarded_allow_ips=forwarded_allow_ips, smtp=only != "http", http=only != "smtp",
        cors_origins=cors_origins or DEFAULT_CORS_ORIGINS,
        workers=workers, db_connections=db_connections,
        smtp_proxy_from=(_networks(smtp_proxy_from, "--smtp-proxy-from")
                         if smtp_proxy_protocol else ()),
        api_rate_limit=api_rate_limit,
        purge_interval=purge_interval,
        tracking_link_days=tracking_link_days,
        webhooks=webhook_config(oauth),
        inbox_sync=ServiceOptions(
            background=inbox_sync, poll_interval=inbox_poll_interval,
            disconnect_after=timedelta(seconds=inbox_disconnect_after),
            timeout=inbox_timeout, destinations=_destinations(allow_mail_hosts),
            oauth=oauth_config(dict(oauth), base_url)),
    )
    if smtp_proxy_protocol and not options.smtp_proxy_from:
        raise click.BadParameter("name the proxies", param_hint="--smtp-proxy-from")
    if workers > 1:
        sys.exit(run_workers(settings, options))
    run(serve(settings, options))


def _check_db_connections(settings: Settings, budget: int, workers: int) -> None:
    """On PostgreSQL, refuse a budget a worker cannot work with, or more than the server
    takes beside its other clients (BadParameter, exit 2); warn when the inboxlog
    processes already connected and this node together may not fit."""
    if settings.database_url.startswith("sqlite"):
        return  # no server to share: SQLite's engines are files in this process
    hint = "--db-connections"
    try:
        most = connections.node_most(budget, workers)
    except connections.BudgetTooSmall as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None
    try:
        room = asyncio.run(connections.room(settings.database_url))
    except Exception as exc:  # serve's start reports an unreachable database itself
        logging.getLogger("inboxlog").warning(
            "could not read PostgreSQL's max_connections (%s: %s); %s unchecked",
            type(exc).__name__, exc, hint)
        return
    if not room.fits(most):
        raise click.BadParameter(
            f"this node ({workers} worker(s)) may hold up to {most} connections at once, "
            f"but {room.numbers()}: at most {room.for_inboxlog} are left (lower it, or "
            "raise max_connections)",
            param_hint=hint)
    if room.crowded(most):
        logging.getLogger("inboxlog").warning(
            "this node may hold %d PostgreSQL connections (%s %d) and other inboxlog "
            "processes (other nodes, commands) hold %d now; %s: under load together "
            "they may exceed it (\"too many clients\"): the nodes' %s together must "
            "stay within %d", most, hint, budget, room.inboxlog, room.numbers(), hint,
            room.for_inboxlog)


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _sender_auth_settings(trusted_networks: str, trusted_authserv_id: str,
                          trusted_arc_sealers: str, dns_server: str, dns_timeout: float,
                          dns_stub_zone: str) -> dict[str, Any]:
    """The sender-authentication fields of Settings, each checked (BadParameter)."""
    networks = _networks(trusted_networks, "--trusted-networks")
    servers, zones = _list(dns_server), _list(dns_stub_zone)
    for server in servers:
        _nameserver(server, "--dns-server")
    for zone in zones:
        name, equals, server = zone.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"not ZONE=HOST[:PORT]: {zone}",
                                     param_hint="--dns-stub-zone")
        _nameserver(server, "--dns-stub-zone")
    return {"trusted_networks": networks,
            "trusted_authserv_ids": tuple(i.lower() for i in _list(trusted_authserv_id)),
            "trusted_arc_sealers": tuple(d.lower() for d in _list(trusted_arc_sealers)),
            "dns_servers": servers, "dns_timeout": dns_timeout,
            "dns_stub_zones": tuple(z.strip() for z in zones)}


def _networks(text: str, hint: str) -> tuple[str, ...]:
    """A comma-separated list of addresses and CIDR networks, each checked."""
    networks = _list(text)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise click.BadParameter(f"not an address or network: {network}",
                                     param_hint=hint) from None
    return networks


def _nameserver(text: str, hint: str) -> None:
    try:
        parse_nameserver(text)
    except ValueError:
        raise click.BadParameter(f"not an address[:port]: {text}", param_hint=hint) from None


def _destinations(allow_mail_hosts: str) -> Destinations:
    try:
        return Destinations.parse(allow_mail_hosts)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-mail-hosts") from None


@main.command("migrate")
@storage_options
def migrate_command(db: str, data_dir: Path) -> None:
    """Create or upgrade the database schema."""

    async def done(runtime: Runtime) -> None:
        click.echo(json.dumps({"migrated": True}))

    _run_with_runtime(_settings(db, data_dir), done)


@main.group("admin")
def admin() -> None:
    """Create portals and users."""


@admin.command("create-portal")
@storage_options
@option("--name", required=True)
@option("--bcc-domain", default="bcc.localhost", show_default=True)
@option("--base-url", default="http://127.0.0.1:8025", show_default=True,
        help="Public URL of the server, for the sign-in link.")
def create_portal_command(db: str, data_dir: Path, name: str, bcc_domain: str,
                          base_url: str) -> None:
    """Create a portal; prints its logging address, admin token and a one-time sign-in
    link for its first admin (valid 7 days)."""

    async def work(runtime: Runtime) -> dict[str, object]:
        async with runtime.db.transaction() as session:
            created = await accounts.create_portal(session, name)
            setup = await web_accounts.first_admin_link(session, created.portal.id)
            return {
                "portal_id": created.portal.id,
                "bcc_address": f"{created.portal.bcc_token}@{bcc_domain}",
                "admin_token": created.admin_token,
                "sign_in_link": setup.url(base_url),
            }

    _print_result(_settings(db, data_dir), work)


@admin.command("add-user")
@storage_options
@option("--portal", "portal_id", type=int, required=True)
@option("--email", required=True)
@option("--alias", "aliases", multiple=True, help="Another address the user sends from.")
@option("--name", default="")
def add_user_command(db: str, data_dir: Path, portal_id: int, email: str,
                     aliases: tuple[str, ...], name: str) -> None:
    """Add a user to a portal; prints their id and API token."""

    async def work(runtime: Runtime) -> dict[str, object]:
        async with runtime.db.transaction() as session:
            created = await accounts.add_user(session, portal_id, email, name=name,
                                              aliases=aliases)
            return {"user_id": created.user.id, "api_token": created.api_token}

    _print_result(_settings(db, data_dir), work)


@main.command("purge")
@storage_options
@option("--now", "now", default=None, help="Apply the rules as at this ISO 8601 time.")
def purge_command(db: str, data_dir: Path, now: str | None) -> None:
    """Apply the retention rules; prints what each rule removed."""
    when = None
    if now:
        try:
            when = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"not an ISO 8601 time: {now!r}", param_hint="--now") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)

    async def work(runtime: Runtime) -> dict[str, int]:
        return await retention.purge(runtime.db, runtime.blobs, when)

    _print_result(_settings(db, data_dir), work)


@main.command("ingest")
@storage_options
@click.argument("file", type=click.File("rb"))
@option("--portal", "portal_id", type=int, required=True)
@option("--bcc-domain", default="bcc.localhost", show_default=True)
def ingest_command(db: str, data_dir: Path, file: Any, portal_id: int, bcc_domain: str) -> None:
    """Log one raw message (a .eml file, or - for standard input)."""
    raw = file.read()

    async def work(runtime: Runtime) -> dict[str, object]:
        # Refusals raise (SenderNotAllowed, MessageTooLarge), recorded in the ingest log.
        result = (await pipeline.log_message(
            runtime, raw, pipeline.Arrival.for_portal(Channel.CLI, portal_id))).only()
        return {"outcome": result.outcome.value, "email_id": result.email_id,
                "thread_id": result.thread_id, "reason": result.reason}

    _print_result(_settings(db, data_dir, bcc_domain=bcc_domain), work)


if __name__ == "__main__":
    main()
