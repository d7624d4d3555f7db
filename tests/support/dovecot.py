"""A real Dovecot IMAP server in a temp dir: passwd-file users, Maildir, loopback ports.

Installed from Debian's ``dovecot-imapd`` when missing (``scripts/dovecot-for-tests.sh``).
Folders use RFC 6154 SPECIAL-USE, the Sent folder under a German name ("Gesendet").
One user's login fails with Gmail's "Application-specific password required" text,
through Dovecot's ``nologin``+``reason`` passdb fields: a simulation of that provider
reply, but a real IMAP exchange.

Provider limits are Dovecot's own: ``max_userip_connections`` (Dovecot refuses one
connection too many with ``NO [LIMIT]``), and a per-user quota (the quota plugin, loaded
for that user only through userdb fields; APPEND over it is ``NO [OVERQUOTA]``).
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
# passwd-file extra fields cannot hold spaces or colons, hence the hyphens.
APP_PASSWORD_TEXT = "[ALERT]Application-specific-password-required"
SENT = "Gesendet"
# Running as root, the auth processes must read the passwd-file in a 0700 temp dir.
_ROOT_AUTH = "service auth {\n  user = root\n}\nservice auth-worker {\n  user = root\n}"


def dovecot_binary() -> str:
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot"
                                        if Path("/usr/sbin/dovecot").exists() else None)
    if found:
        return found
    result = subprocess.run([str(ROOT / "scripts" / "dovecot-for-tests.sh")],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"could not install Dovecot for the tests:\n{result.stderr}")
    return result.stdout.strip()


@dataclass(frozen=True)
class MailUser:
    address: str
    password: str


class Dovecot:
    """``start()`` it, use ``imap_port`` (plain) and ``imaps_port`` (self-signed TLS)."""

    def __init__(self, users: list[MailUser], app_password_users: list[str], *,
                 max_userip_connections: int = 50):
        # Its own dir under /tmp, traversable: Dovecot's mail processes do not run as root.
        self.root = Path(tempfile.mkdtemp(prefix="inboxlog-dovecot-"))
        self.root.chmod(0o755)
        self.mail_uid, self.mail_gid = ((pwd.getpwnam("mail").pw_uid, pwd.getpwnam("mail").pw_gid)
                                        if os.getuid() == 0 else (os.getuid(), os.getgid()))
        self.users = users
        self.app_password_users = app_password_users
        self.max_userip_connections = max_userip_connections
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def maildir(self, address: str, folder: str = "INBOX") -> Path:
        base = self.root / "mail" / address
        return base if folder == "INBOX" else base / f".{folder}"

    def _write_config(self) -> Path:
        root = self.root
        for sub in ("run", "state", "mail", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(root / sub, self.mail_uid, self.mail_gid)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=localhost", "-keyout", str(root / "key.pem"),
                        "-out", str(root / "cert.pem")], check=True, capture_output=True)
        self._users().mkdir(exist_ok=True)
        for u in self.users:
            self.add_user(u.address, u.password)
        for a in self.app_password_users:
            (self._users() / f"{a}.passwd").write_text(
                f"{a}:{{PLAIN}}anything::::::nologin reason={APP_PASSWORD_TEXT}\n")
        user = getpass.getuser()
        group = grp.getgrgid(os.getgid()).gr_name
        internal = "dovecot" if os.getuid() == 0 else user
        login = "dovenull" if os.getuid() == 0 else user
        config = f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {"dovecot" if os.getuid() == 0 else group}
default_login_user = {login}
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
mail_max_userip_connections = {self.max_userip_connections}
imap_idle_notify_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u.passwd
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
{_ROOT_AUTH if os.getuid() == 0 else ""}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_plugins =
}}
plugin {{
  # Only for the users whose userdb fields load the plugin (add_user(quota_kb=...)).
  quota = maildir:User quota
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox {SENT} {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Papierkorb {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Archiv {{
    special_use = \\All
    auto = subscribe
  }}
}}
"""
        path = root / "dovecot.conf"
        path.write_text(config)
        return path

    def start(self, timeout: float = 60) -> Dovecot:
        binary = dovecot_binary()
        config = self._write_config()
        self.process = subprocess.Popen([binary, "-F", "-c", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dovecot did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _users(self) -> Path:
        return self.root / "users"

    def add_user(self, address: str, password: str, *, quota_kb: int | None = None) -> None:
        """One passwd-file per user: Dovecot re-checks a known file at most once a
        second, but opens a new one at once. ``quota_kb``: the mailbox holds at most
        that many KiB (the quota plugin, for this user only)."""
        fields = ("" if quota_kb is None else
                  f"userdb_mail_plugins=quota,imap_quota userdb_quota_rule=*:storage={quota_kb}K")
        (self._users() / f"{address}.passwd").write_text(
            f"{address}:{{PLAIN}}{password}::::::{fields}\n")

    @contextmanager
    def unreadable(self, address: str, folder: str) -> Iterator[None]:
        """Within the block the folder's Maildir cannot be read by the mail processes,
        so Dovecot answers ``NO [SERVERBUG]`` to SELECT/EXAMINE; LIST still shows it.
        (They never run as root, so the permission holds also when the tests do.)"""
        base = self.maildir(address, folder)
        # INBOX is the Maildir root, which also holds the other folders: close only its
        # own cur/new/tmp.
        paths = [base / sub for sub in ("cur", "new", "tmp")] if folder == "INBOX" else [base]
        modes = {p: p.stat().st_mode for p in paths}
        for path in paths:
            path.chmod(0)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)

    def set_password(self, address: str, password: str) -> None:
        """Change a user's password and end their sessions, as providers do when a
        password changes or access is revoked."""
        self.add_user(address, password)
        time.sleep(1.2)  # the old file may have been checked less than a second ago
        self.kick(address)

    def _doveadm(self, *args: str) -> str:
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        return subprocess.run([doveadm, "-c", str(self.root / "dovecot.conf"), *args],
                              capture_output=True, check=False, timeout=10, text=True).stdout

    def kick(self, address: str) -> None:
        """End every IMAP session of the user."""
        self._doveadm("kick", address)

    def sessions(self, address: str) -> int:
        """The user's IMAP sessions as Dovecot counts them for its connection limit."""
        return len(self.session_pids(address))

    def session_pids(self, address: str) -> set[int]:
        """The imap processes of the user's sessions that Dovecot's connection limit
        counts (anvil's list, told of a session's end some moments after it ended)."""
        lines = self._doveadm("who", "-1", address).splitlines()[1:]
        return {int(fields[2]) for fields in map(str.split, lines)
                if fields[:1] == [address] and len(fields) > 2 and fields[2].isdigit()}

    def wait_ended(self, address: str, pids: set[int], timeout: float = 30) -> None:
        """Return once none of the sessions ``pids`` counts against the user's limit."""
        deadline = time.monotonic() + timeout
        while self.session_pids(address) & pids:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Dovecot still counts sessions {pids} of {address}")
            time.sleep(0.05)
