"""Real forwarders in temp dirs, relaying to inboxlog's SMTP port: Postfix and Dovecot.

Postfix (Debian ``postfix``, installed by ``scripts/postfix-for-tests.sh``) runs with its
own ``main.cf``/``master.cf``, on loopback only, with ``relayhost`` set to inboxlog's
SMTP port. Its users forward the way Postfix users do: an alias in ``alias_maps`` and the
``.forward`` of the Unix account ``nobody`` (both local(8), which prepends
``Delivered-To:``), a
``virtual_alias_maps`` entry (trivial-rewrite: no header at all), and the same alias on
a second listener whose cleanup rewrites the envelope sender with SRS through postsrsd
(Debian ``postsrsd``).

Dovecot (``dovecot-lmtpd`` and ``dovecot-sieve``, installed by
``scripts/dovecot-for-tests.sh``) takes mail over LMTP and runs each user's Sieve script,
whose ``redirect`` Pigeonhole submits to inboxlog through ``submission_host``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
POSTFIX_DOMAIN = "ourco.example"  # mydestination: local(8) aliases
VIRTUAL_DOMAIN = "virt.ourco.example"  # virtual_alias_domains
SIEVE_DOMAIN = "sieve.ourco.example"
# The Unix account whose .forward (at ``forward_path``, in the temp dir) forwards: one
# every Debian system has, so the tests add no account to the machine.
DOT_FORWARD_USER = "nobody"


def _install(script: str) -> None:
    result = subprocess.run([str(ROOT / "scripts" / script)], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{result.stderr}")


def _wait_for_greeting(port: int, process: subprocess.Popen[bytes], what: str,
                       log: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer in {timeout}s:\n{log}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str,
                   timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} in {timeout}s")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Postfix:
    """``start()`` it; send to ``port`` (plain) or ``srs_port`` (envelope sender SRS-rewritten).

    ``aliases`` and ``virtual`` map a local part to where Postfix forwards it.
    """

    def __init__(self, relay_port: int, aliases: dict[str, str], virtual: dict[str, str],
                 dot_forward: str):
        self.root = Path(tempfile.mkdtemp(prefix="inboxlog-postfix-"))
        self.root.chmod(0o755)
        self.relay_port = relay_port
        self.aliases = aliases
        self.virtual = virtual
        self.dot_forward = dot_forward
        self.port = free_port()
        self.srs_port = free_port()
        self.srs_forward_port = free_port()
        self.srs_reverse_port = free_port()
        self.master: subprocess.Popen[bytes] | None = None
        self.postsrsd: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    def _write_config(self, daemons: str) -> None:
        root = self.root
        self.conf.mkdir()
        (root / "queue").mkdir(mode=0o755)
        (root / "data").mkdir()
        shutil.chown(root / "data", "postfix")
        # Bounces of the tests' refused messages go to the contact's domain, which is
        # relayed to inboxlog too and refused there; the double bounce ends here.
        aliases = {"postmaster": "/dev/null", "mailer-daemon": "/dev/null", **self.aliases}
        (self.conf / "aliases").write_text(
            "".join(f"{name}: {target}\n" for name, target in aliases.items()))
        (self.conf / "virtual").write_text("".join(
            f"{name}@{VIRTUAL_DOMAIN} {target}\n" for name, target in self.virtual.items()))
        # ``nobody``'s .forward: local(8) reads it as that user, and wants it owned so.
        (root / "forward").mkdir(mode=0o755)
        dot_forward = root / "forward" / f"{DOT_FORWARD_USER}.forward"
        dot_forward.write_text(f"{self.dot_forward}\n")
        shutil.chown(dot_forward, DOT_FORWARD_USER)
        (root / "srs.secret").write_text("inboxlog-tests-not-a-secret\n")
        (root / "srs.secret").chmod(0o600)
        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
daemon_directory = {daemons}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.{POSTFIX_DOMAIN}
mydomain = {POSTFIX_DOMAIN}
myorigin = $mydomain
mydestination = $mydomain
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{self.relay_port}
smtp_dns_support_level = disabled
alias_maps = hash:{self.conf}/aliases
alias_database = hash:{self.conf}/aliases
local_recipient_maps = $alias_maps unix:passwd.byname
forward_path = {root}/forward/$user.forward
virtual_alias_domains = {VIRTUAL_DOMAIN}
virtual_alias_maps = hash:{self.conf}/virtual
smtpd_relay_restrictions = permit_mynetworks, reject
biff = no
recipient_delimiter = +
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
bounce_queue_lifetime = 0
maximal_queue_lifetime = 0
""")
        # Debian's master.cf, with every service out of the chroot and two listeners.
        srs = (f"-o sender_canonical_maps=tcp:127.0.0.1:{self.srs_forward_port} "
               "-o sender_canonical_classes=envelope_sender")
        (self.conf / "master.cf").write_text(f"""\
127.0.0.1:{self.port} inet n - n - - smtpd
127.0.0.1:{self.srs_port} inet n - n - - smtpd -o cleanup_service_name=srscleanup
srscleanup unix n - n - 0 cleanup {srs}
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
""")
        for table in ("aliases", "virtual"):
            tool = "postalias" if table == "aliases" else "postmap"
            subprocess.run([f"/usr/sbin/{tool}", "-c", str(self.conf),
                            f"hash:{self.conf}/{table}"], check=True, capture_output=True)

    def start(self) -> Postfix:
        _install("postfix-for-tests.sh")
        daemons = subprocess.run(["/usr/sbin/postconf", "-d", "-h", "daemon_directory"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        self._write_config(daemons)
        self.postsrsd = subprocess.Popen(
            ["/usr/sbin/postsrsd", f"-s{self.root}/srs.secret", f"-d{POSTFIX_DOMAIN}",
             "-l127.0.0.1", f"-f{self.srs_forward_port}", f"-r{self.srs_reverse_port}", "-4"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(self.srs_forward_port, self.postsrsd, "postsrsd")
            # Creates the queue directories with Postfix's owners and modes.
            subprocess.run(["/usr/sbin/postfix", "-c", str(self.conf), "check"], check=True,
                           capture_output=True)
            self.master = subprocess.Popen(
                ["/usr/sbin/postfix", "-c", str(self.conf), "start-fg"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_for_greeting(self.port, self.master, "postfix", _Lazy(self.log))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.master is not None and self.master.poll() is None:
            subprocess.run(["/usr/sbin/postfix", "-c", str(self.conf), "stop"],
                           capture_output=True, check=False, timeout=20)
            try:
                self.master.wait(10)
            except subprocess.TimeoutExpired:
                _stop(self.master)
        _stop(self.postsrsd)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def send(self, raw: bytes, mail_from: str, rcpt: str, *, srs: bool = False) -> str:
        """Hand a message to Postfix as the contact's MTA would; returns its queue id."""
        with smtplib.SMTP("127.0.0.1", self.srs_port if srs else self.port, timeout=30) as smtp:
            smtp.ehlo("mx.customer.example")
            smtp.mail(mail_from)
            code, text = smtp.rcpt(rcpt)
            assert code == 250, (code, text)
            code, text = smtp.data(raw)
            assert code == 250, (code, text)
        match = re.search(r"queued as (\w+)", text.decode())
        assert match, text
        return match.group(1)

    def relay_reply(self, queue_id: str, timeout: float = 30) -> str:
        """What inboxlog answered Postfix for the forwarded copy of a queued message:
        the ``relay=`` line of the copy local(8) or trivial-rewrite made of it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            forwarded = re.search(rf"{queue_id}: .*forwarded as (\w+)", log)
            ids = [queue_id] + ([forwarded.group(1)] if forwarded else [])
            for qid in ids:
                line = re.search(rf"{qid}: to=<[^>]*>.*relay=127\.0\.0\.1.*", log)
                if line:
                    return line.group(0)
            time.sleep(0.1)
        raise AssertionError(f"no relay line for {queue_id}:\n{self.log()}")


class _Lazy:
    """Formats as the result of a call, made only when shown (an error message)."""

    def __init__(self, make: object) -> None:
        self.make = make

    def __str__(self) -> str:
        return str(self.make() if callable(self.make) else self.make)



class SieveRedirect:
    """A Dovecot LMTP server whose users' Sieve scripts ``redirect`` to ``targets[user]``.

    Users are ``<local>@{SIEVE_DOMAIN}``; redirects go out through ``submission_host``
    (inboxlog's SMTP port) with Pigeonhole's defaults, but for the users in
    ``envelope_from``, whose ``sieve_redirect_envelope_from`` (a userdb field) is given
    there (``recipient``: the redirect is sent as the user).
    """

    def __init__(self, relay_port: int, targets: dict[str, str],
                 envelope_from: dict[str, str] | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="inboxlog-sieve-"))
        self.root.chmod(0o755)
        self.relay_port = relay_port
        self.targets = targets
        self.envelope_from = envelope_from or {}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        import pwd
        root = self.root
        mail_uid, mail_gid = ((pwd.getpwnam("mail").pw_uid, pwd.getpwnam("mail").pw_gid)
                              if os.getuid() == 0 else (os.getuid(), os.getgid()))
        for sub in ("run", "state", "mail", "home", "sieve"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home", "sieve"):
            os.chown(root / sub, mail_uid, mail_gid)
        userdb = []
        for local, target in self.targets.items():
            setting = self.envelope_from.get(local)
            fields = f"userdb_sieve_redirect_envelope_from={setting}" if setting else ""
            userdb.append(f"{local}@{SIEVE_DOMAIN}::{mail_uid}:{mail_gid}::"
                          f"{root}/home/{local}@{SIEVE_DOMAIN}::{fields}\n")
            home = root / "home" / f"{local}@{SIEVE_DOMAIN}"  # Pigeonhole's duplicate db
            home.mkdir()
            os.chown(home, mail_uid, mail_gid)
            script = root / "sieve" / f"{local}@{SIEVE_DOMAIN}.sieve"
            script.write_text(f'redirect "{target}";\n')
            os.chown(script, mail_uid, mail_gid)
        (root / "userdb").write_text("".join(userdb))
        root_only = os.getuid() == 0
        config = f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = {"dovecot" if root_only else os.environ.get("USER", "nobody")}
default_login_user = {"dovenull" if root_only else os.environ.get("USER", "nobody")}
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
hostname = mx.{SIEVE_DOMAIN}
postmaster_address = postmaster@{SIEVE_DOMAIN}
submission_host = 127.0.0.1:{self.relay_port}
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = passwd-file
  args = {root}/userdb
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol lmtp {{
  mail_plugins = sieve
}}
plugin {{
  sieve = file:{root}/sieve;active={root}/sieve/%u.sieve
}}
"""
        path = root / "dovecot.conf"
        path.write_text(config)
        return path

    def start(self) -> SieveRedirect:
        _install("dovecot-for-tests.sh")
        config = self._write_config()
        self.process = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_greeting(self.port, self.process, "dovecot", _Lazy(self.log))
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, raw: bytes, mail_from: str, local: str) -> str:
        """Deliver over LMTP to ``local@SIEVE_DOMAIN``; Dovecot's reply to DATA."""
        with smtplib.LMTP("127.0.0.1", self.port, timeout=30) as lmtp:
            lmtp.ehlo("mx.customer.example")
            lmtp.mail(mail_from)
            code, text = lmtp.rcpt(f"{local}@{SIEVE_DOMAIN}")
            assert code == 250, (code, text, self.log())
            # smtplib's LMTP answers DATA with the one recipient's reply.
            code, text = lmtp.data(raw)
            return f"{code} {text.decode()}"

    def wait_for_log(self, message_id: str, timeout: float = 20) -> str:
        """Dovecot's log lines about a message's redirect, once it has one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for line in self.log().splitlines() if message_id in line]
            if any("redirect" in line for line in lines):
                return "\n".join(lines)
            time.sleep(0.1)
        raise AssertionError(f"no redirect of {message_id} in the log:\n{self.log()}")
