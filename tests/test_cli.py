"""The `inboxlog` command, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from core.storage.db import MIGRATIONS_DIR
from core.storage.listen import asyncpg_dsn
from inboxlog.serve import PREPARE_LOCK
from tests.support import postgres
from tests.support.server import BCC_DOMAIN, Server


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The JSON document printed on stdout (the last line)."""
        assert self.code == 0, self.stderr
        return json.loads(self.stdout.strip().splitlines()[-1])

    def error(self) -> dict[str, str]:
        """The JSON error printed on stderr by a failed command."""
        assert self.code != 0
        assert "Traceback" not in self.stderr
        body = json.loads(self.stderr.strip().splitlines()[-1])
        assert set(body) == {"error"}
        error: dict[str, str] = body["error"]
        assert set(error) == {"code", "message"}
        return error


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> Result:
    """`inboxlog <args>` with only the INBOXLOG_* variables given in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INBOXLOG_")}
    result = subprocess.run(
        [sys.executable, "-m", "inboxlog.cli", *args], env={**clean, **(env or {})},
        input=stdin, capture_output=True, check=False, timeout=120,
    )
    return Result(result.returncode, result.stdout.decode(), result.stderr.decode())


def make_message(sender: str, to: str = "Dana <dana@acme.example>") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "From the command line"
    msg["Date"] = "Mon, 03 Jun 2024 09:00:00 +0000"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@ourco.example>"
    msg.set_content("Hello from a file.\n")
    return msg.as_bytes(policy=policy.SMTP)


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    """A fresh data dir (its default SQLite database) chosen through the environment."""
    return {"INBOXLOG_DATA_DIR": str(tmp_path / "data")}


def test_migrate_is_idempotent(tmp_path: Path, data_env: dict[str, str]) -> None:
    """`migrate` twice succeeds both times and keeps what the database held."""
    assert run("migrate", env=data_env).json() == {"migrated": True}
    assert (tmp_path / "data" / "inboxlog.db").is_file()
    portal = run("admin", "create-portal", "--name", "Kept", env=data_env).json()
    assert run("migrate", env=data_env).json() == {"migrated": True}
    user = run("admin", "add-user", "--portal", str(portal["portal_id"]),
               "--email", "rep@ourco.example", env=data_env)
    assert set(user.json()) == {"user_id", "api_token"}


def test_create_portal_prints_address_and_token(data_env: dict[str, str]) -> None:
    """create-portal prints exactly portal_id, bcc_address, admin_token and the first
    admin's one-time sign-in link (tests/pages follow it)."""
    printed = run("admin", "create-portal", "--name", "Acme Sales", env=data_env).json()
    assert set(printed) == {"portal_id", "bcc_address", "admin_token", "sign_in_link"}
    assert printed["sign_in_link"].startswith("http://127.0.0.1:8025/link?token=ilw_")
    assert isinstance(printed["portal_id"], int)
    assert printed["bcc_address"].endswith("@bcc.localhost")
    local = printed["bcc_address"].rpartition("@")[0]
    assert local.isalnum() and len(local) >= 16
    assert isinstance(printed["admin_token"], str) and len(printed["admin_token"]) >= 32
    again = run("admin", "create-portal", "--name", "Acme Sales", env=data_env).json()
    assert again["portal_id"] != printed["portal_id"]
    assert again["bcc_address"] != printed["bcc_address"]
    assert again["admin_token"] != printed["admin_token"]


def test_bcc_domain_from_env_and_option(data_env: dict[str, str]) -> None:
    """INBOXLOG_BCC_DOMAIN and --bcc-domain set the domain of the printed logging address."""
    env = {**data_env, "INBOXLOG_BCC_DOMAIN": "log.acme.example"}
    by_env = run("admin", "create-portal", "--name", "P", env=env).json()
    assert by_env["bcc_address"].endswith("@log.acme.example")
    by_option = run("admin", "create-portal", "--name", "P", "--bcc-domain", "in.acme.example",
                    env=env).json()
    assert by_option["bcc_address"].endswith("@in.acme.example")


def test_create_portal_needs_a_name(data_env: dict[str, str]) -> None:
    """create-portal without --name, or with a blank one, fails with a non-zero exit."""
    assert run("admin", "create-portal", env=data_env).code != 0
    blank = run("admin", "create-portal", "--name", "  ", env=data_env)
    assert blank.error()["code"] == "invalid_input"


def test_admin_token_works_on_the_server(server: Server) -> None:
    """The admin token create-portal prints authenticates on the API for that portal."""
    portal = server.cli("admin", "create-portal", "--name", "Via CLI")
    assert portal["bcc_address"].endswith(f"@{BCC_DOMAIN}")
    with server.api(portal["admin_token"]) as api:
        me = api.get("/api/v1/me").json()
    assert me["role"] == "admin"
    assert me["portal"]["id"] == portal["portal_id"]
    assert me["portal"]["name"] == "Via CLI"
    assert me["portal"]["bcc_address"] == portal["bcc_address"]


def test_add_user_with_aliases(server: Server) -> None:
    """add-user prints user_id and api_token; the token works and lists every address."""
    portal = server.cli("admin", "create-portal", "--name", "Aliases")
    user = server.cli("admin", "add-user", "--portal", str(portal["portal_id"]),
                      "--email", "Rita@OurCo.example", "--name", "Rita Rep",
                      "--alias", "rita.rep@ourco.example", "--alias", "sales@ourco.example")
    assert set(user) == {"user_id", "api_token"}
    with server.api(user["api_token"]) as api:
        me = api.get("/api/v1/me").json()
    assert me["role"] == "user"
    assert me["portal"]["id"] == portal["portal_id"]
    assert me["user"] == {
        "id": user["user_id"], "email": "rita@ourco.example", "name": "Rita Rep",
        "addresses": ["rita@ourco.example", "rita.rep@ourco.example", "sales@ourco.example"]}


def test_add_user_refuses_a_taken_address(data_env: dict[str, str]) -> None:
    """An address already used by a user of the portal fails with a JSON error on stderr."""
    portal = run("admin", "create-portal", "--name", "P", env=data_env).json()
    pid = str(portal["portal_id"])
    run("admin", "add-user", "--portal", pid, "--email", "rep@ourco.example",
        "--alias", "sales@ourco.example", env=data_env).json()
    for address in ("rep@ourco.example", "REP@ourco.example", "sales@ourco.example"):
        clash = run("admin", "add-user", "--portal", pid, "--email", address, env=data_env)
        assert clash.stdout == ""
        error = clash.error()
        assert error["code"] == "invalid_input"
        assert address.lower() in error["message"]
    via_alias = run("admin", "add-user", "--portal", pid, "--email", "new@ourco.example",
                    "--alias", "rep@ourco.example", env=data_env)
    assert via_alias.error()["code"] == "invalid_input"
    # The refused user was not half-created: its primary address is still free.
    assert set(run("admin", "add-user", "--portal", pid, "--email", "new@ourco.example",
                   env=data_env).json()) == {"user_id", "api_token"}


@pytest.mark.parametrize("address", ["not-an-email", "rep@", "@ourco.example", "a b@ourco.example"])
def test_add_user_refuses_an_invalid_address(data_env: dict[str, str], address: str) -> None:
    """An invalid email address fails with invalid_input naming the address."""
    portal = run("admin", "create-portal", "--name", "P", env=data_env).json()
    failed = run("admin", "add-user", "--portal", str(portal["portal_id"]),
                 "--email", address, env=data_env)
    assert failed.stdout == ""
    error = failed.error()
    assert error["code"] == "invalid_input"
    assert address in error["message"]


def test_add_user_to_unknown_portal(data_env: dict[str, str]) -> None:
    """add-user to a portal that does not exist fails with a JSON error."""
    run("migrate", env=data_env).json()
    failed = run("admin", "add-user", "--portal", "424242", "--email", "a@ourco.example",
                 env=data_env)
    assert "424242" in failed.error()["message"]


def test_ingest_file_and_stdin(server: Server, tmp_path: Path) -> None:
    """`ingest FILE` and `ingest -` log a message from the portal's user."""
    account = server.new_portal()
    eml = tmp_path / "message.eml"
    eml.write_bytes(make_message(account.user_email))
    from_file = server.cli("ingest", str(eml), "--portal", str(account.portal_id))
    assert from_file["outcome"] == "logged"
    assert isinstance(from_file["email_id"], int)
    from_stdin = server.cli("ingest", "-", "--portal", str(account.portal_id),
                            stdin=make_message(account.user_email, to="sam@acme.example"))
    assert from_stdin["outcome"] == "logged"
    assert from_stdin["email_id"] != from_file["email_id"]
    with server.api(account.user_token) as api:
        email = api.get(f"/api/v1/emails/{from_file['email_id']}").json()
        other = api.get(f"/api/v1/emails/{from_stdin['email_id']}").json()
    assert email["subject"] == "From the command line"
    assert email["to"] == [{"email": "dana@acme.example", "name": "Dana"}]
    assert email["text"] == "Hello from a file.\n"
    assert other["to"] == [{"email": "sam@acme.example", "name": ""}]


def test_ingest_twice_is_a_duplicate(server: Server, tmp_path: Path) -> None:
    """Ingesting the same file again answers duplicate with the same email_id."""
    account = server.new_portal()
    eml = tmp_path / "message.eml"
    eml.write_bytes(make_message(account.user_email))
    first = server.cli("ingest", str(eml), "--portal", str(account.portal_id))
    second = server.cli("ingest", str(eml), "--portal", str(account.portal_id))
    assert first["outcome"] == "logged"
    assert second["outcome"] == "duplicate"
    assert second["email_id"] == first["email_id"]


def test_ingest_refusals(data_env: dict[str, str], tmp_path: Path) -> None:
    """ingest fails with a JSON error for an unknown portal or a sender who is no user."""
    portal = run("admin", "create-portal", "--name", "P", env=data_env).json()
    pid = str(portal["portal_id"])
    run("admin", "add-user", "--portal", pid, "--email", "rep@ourco.example", env=data_env).json()
    eml = tmp_path / "message.eml"
    eml.write_bytes(make_message("stranger@elsewhere.example"))
    assert run("ingest", str(eml), "--portal", pid, env=data_env).error()["code"] == (
        "sender_not_allowed")
    eml.write_bytes(make_message("rep@ourco.example"))
    assert "999" in run("ingest", str(eml), "--portal", "999", env=data_env).error()["message"]
    missing = run("ingest", str(tmp_path / "nope.eml"), "--portal", pid, env=data_env)
    assert missing.code != 0
    assert "Traceback" not in missing.stderr


def test_ingest_refusals_leave_an_ingest_log_entry(server: Server, tmp_path: Path) -> None:
    """A message the CLI refuses is in the portal's ingest log, like one refused by SMTP."""
    account = server.new_portal()
    eml = tmp_path / "stranger.eml"
    eml.write_bytes(make_message("stranger@elsewhere.example"))
    with pytest.raises(RuntimeError, match="sender_not_allowed"):
        server.cli("ingest", str(eml), "--portal", str(account.portal_id))
    with server.api(account.admin_token) as api:
        items = api.get("/api/v1/ingest-log").json()["items"]
    assert [(i["reason_code"], i["source"], i["sender"]) for i in items] == [
        ("not_a_user", "cli", "stranger@elsewhere.example")]


def test_db_option_and_env_select_the_database(tmp_path: Path, data_env: dict[str, str]) -> None:
    """--db and INBOXLOG_DB choose the database; --db wins over the environment."""
    one = tmp_path / "one.db"
    two = tmp_path / "two.db"
    url_one, url_two = f"sqlite+aiosqlite:///{one}", f"sqlite+aiosqlite:///{two}"

    portal = run("admin", "create-portal", "--name", "One", "--db", url_one, env=data_env).json()
    assert one.is_file()
    assert not (tmp_path / "data" / "inboxlog.db").exists()
    pid = str(portal["portal_id"])
    # The same portal is found through the environment variable...
    user = run("admin", "add-user", "--portal", pid, "--email", "a@ourco.example",
               env={**data_env, "INBOXLOG_DB": url_one})
    assert set(user.json()) == {"user_id", "api_token"}
    # ...and not in another database, even when the environment names the first one.
    elsewhere = run("admin", "add-user", "--portal", pid, "--email", "b@ourco.example",
                    "--db", url_two, env={**data_env, "INBOXLOG_DB": url_one})
    assert elsewhere.error()["code"] == "invalid_input"
    assert two.is_file()
    assert not (tmp_path / "data" / "inboxlog.db").exists()
    # The address refused in two.db is free in one.db: nothing was written there.
    assert set(run("admin", "add-user", "--portal", pid, "--email", "b@ourco.example",
                   "--db", url_one, env=data_env).json()) == {"user_id", "api_token"}


def test_serve_help_lists_every_option() -> None:
    """`inboxlog serve --help` documents every option of the SPEC's serve line and its env var."""
    result = run("serve", "--help")
    assert result.code == 0, result.stderr
    for option in ("--db", "--data-dir", "--smtp-host", "--smtp-port", "--http-host",
                   "--http-port", "--bcc-domain", "--base-url", "--tls-cert", "--tls-key",
                   "--no-demo", "--forwarded-allow-ips"):
        assert option in result.stdout, option
        assert "INBOXLOG_" + option[2:].upper().replace("-", "_") in result.stdout, option


def test_serve_refuses_a_cert_without_a_key(tmp_path: Path) -> None:
    """serve with --tls-cert but no --tls-key is a usage error, not a half-started server."""
    cert = tmp_path / "cert.pem"
    cert.write_text("not really a certificate\n")
    result = run("serve", "--tls-cert", str(cert), "--data-dir", str(tmp_path))
    assert result.code == 2
    assert "--tls-key" in result.stderr


def test_serve_help_lists_the_workers_and_proxy_options() -> None:
    """`serve --help` documents --workers and the SMTP PROXY protocol options, each with
    its env var."""
    result = run("serve", "--help")
    assert result.code == 0, result.stderr
    for option in ("--workers", "--smtp-proxy-protocol", "--smtp-proxy-from"):
        assert option in result.stdout, option
        assert "INBOXLOG_" + option[2:].upper().replace("-", "_") in result.stdout, option


def test_serve_refuses_workers_on_sqlite(data_env: dict[str, str]) -> None:
    """More than one worker on SQLite is a usage error that says why, before anything
    is created or bound (also from INBOXLOG_WORKERS)."""
    for args, env in ((("--workers", "2"), data_env), ((), {**data_env, "INBOXLOG_WORKERS": "3"})):
        result = run("serve", *args, env=env)
        assert result.code == 2, result.stderr
        assert "--workers" in result.stderr and "needs PostgreSQL" in result.stderr
    assert not Path(data_env["INBOXLOG_DATA_DIR"]).exists()


def test_serve_refuses_bad_settings_from_the_environment(data_env: dict[str, str]) -> None:
    """A setting only the environment gives (INBOXLOG_LOOKUP_TIMEOUT) is a usage error
    that names it, before anything is created or bound."""
    for value in ("abc", "0", "-1", "inf"):
        result = run("serve", env={**data_env, "INBOXLOG_LOOKUP_TIMEOUT": value})
        assert result.code == 2, result.stderr
        assert "INBOXLOG_LOOKUP_TIMEOUT must be seconds above 0" in result.stderr
        assert "Traceback" not in result.stderr
    assert not Path(data_env["INBOXLOG_DATA_DIR"]).exists()


def test_serve_refuses_a_bad_proxy_address(data_env: dict[str, str]) -> None:
    """--smtp-proxy-from takes addresses and networks only."""
    result = run("serve", "--smtp-proxy-protocol", "--smtp-proxy-from", "haproxy.local",
                 env=data_env)
    assert result.code == 2
    assert "--smtp-proxy-from" in result.stderr and "haproxy.local" in result.stderr


def test_migrate_waits_for_the_nodes_migration_lock_on_postgresql(tmp_path: Path) -> None:
    """`migrate` on PostgreSQL takes serve's advisory lock (PREPARE_LOCK) before
    migrating: while another session (a node starting) holds it, `migrate` waits on it
    and has created nothing; once it is released, `migrate` runs to the head."""
    url = asyncio.run(postgres.create_database())
    env = {"INBOXLOG_DATA_DIR": str(tmp_path / "data"), "INBOXLOG_DB": url}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INBOXLOG_")}

    async def scenario() -> tuple[int, bytes, list[str]]:
        holder = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", PREPARE_LOCK)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "inboxlog.cli", "migrate", env={**clean, **env},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            deadline = time.monotonic() + 60
            while not await holder.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND NOT granted AND pid <> pg_backend_pid()"):
                assert process.returncode is None, await process.communicate()
                assert time.monotonic() < deadline, "migrate never asked for the lock"
                await asyncio.sleep(0.05)
            tables = await holder.fetch("SELECT tablename FROM pg_tables "
                                        "WHERE schemaname = 'public'")
            await holder.execute("SELECT pg_advisory_unlock($1)", PREPARE_LOCK)
            out, _ = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode is not None
            heads = await holder.fetch("SELECT version_num FROM alembic_version")
            assert not tables, tables  # nothing migrated while the lock was held
            return process.returncode, out, [r["version_num"] for r in heads]
        finally:
            await holder.close()

    try:
        code, out, heads = asyncio.run(scenario())
    finally:
        asyncio.run(postgres.drop_database(url))
    assert code == 0 and json.loads(out.decode().splitlines()[-1]) == {"migrated": True}
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert heads == [ScriptDirectory.from_config(config).get_current_head()]
