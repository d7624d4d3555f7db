"""`inboxlog serve --workers N`: one supervisor, N worker processes on shared sockets.

The supervisor prepares the database once (migrations, demo account), binds the SMTP
and HTTP ports, then forks the workers. Each worker has listening sockets of its own on
both ports (``SO_REUSEPORT``): the kernel spreads new connections over them by a hash of
their addresses, so a burst of connections (20 sessions opening at once) is shared
evenly; with one socket for all, the first worker to wake accepted every connection
waiting and kept most of the burst (one worker served 1,100 of 1,500 bench messages,
the other 400). The supervisor binds them all before forking. When a worker dies, the
supervisor closes that worker's sockets at once: the kernel then hashes new connections
over the live workers' sockets only, instead of queueing a share of them where nobody
accepts until the restart (up to 30 s, or for ever for a worker that keeps failing).
Connections already queued on the closed sockets move to a live socket of the port
where the kernel migrates them (``net.ipv4.tcp_migrate_req = 1``, Linux 5.14+: the
supervisor reads it and logs which); elsewhere the kernel resets them, and the client
sees a refused connection it may retry, never a hang. The restarted worker gets fresh
sockets, bound just before it is forked. The supervisor serves nothing itself. It
restarts a worker that exits on its own (after a pause that grows while it keeps
failing; ``INBOXLOG_WORKER_RESTART_DELAY`` sets the first pause, 0.5 s by default),
turns its own SIGTERM or SIGINT into SIGTERM
for every worker (a second one into SIGINT: stop without waiting for open
connections), and exits when all have. Each worker reads a pipe that only the
supervisor holds open, so a supervisor killed outright (SIGKILL) leaves no worker
behind.

Worker 0 alone runs what must run once per node: the periodic purge and the inbox sync
(``serve.Worker.runs_singletons``). A restarted worker keeps its number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core import metrics
from core.runtime import Settings
from core.storage import connections
from inboxlog.serve import ServeOptions, Worker, prepare, print_banner, run, serve

log = logging.getLogger("inboxlog.workers")

_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
FIRST_RESTART_DELAY = 0.5  # seconds before restarting a worker that exited on its own
MOST_RESTART_DELAY = 30.0
STEADY_AFTER = 30.0  # a worker that ran this long before failing restarts at once again
MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


def first_restart_delay() -> float:
    """The first pause before restarting a worker: ``INBOXLOG_WORKER_RESTART_DELAY``
    (seconds; tests make it long to watch the port without the worker) or 0.5 s."""
    given = os.environ.get("INBOXLOG_WORKER_RESTART_DELAY", "").strip()
    try:
        delay = float(given) if given else FIRST_RESTART_DELAY
    except ValueError:
        delay = -1.0
    if not 0 <= delay < math.inf:
        raise WorkersUnavailable(
            f"INBOXLOG_WORKER_RESTART_DELAY must be seconds (0 or more), not {given!r}")
    return delay


def queued_connections_migrate() -> bool:
    """Whether this kernel moves the connections queued on a closed listening socket to
    another socket of its ``SO_REUSEPORT`` group (``net.ipv4.tcp_migrate_req``), rather
    than resetting them."""
    try:
        return MIGRATE_REQ.read_text().strip() == "1"
    except OSError:
        return False


class WorkersUnavailable(Exception):
    """``--workers`` above 1 cannot run here; the message says why."""


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse ``workers > 1`` where it would not work (WorkersUnavailable)."""
    if workers <= 1:
        return
    if settings.database_url.startswith("sqlite"):
        raise WorkersUnavailable(
            "--workers above 1 needs PostgreSQL (--db postgresql+asyncpg://...): SQLite "
            "takes one writer at a time, and one process already shares each commit "
            "among the messages arriving together; several processes would only queue "
            "on the file's lock")
    if not hasattr(signal, "sigtimedwait") or not hasattr(os, "fork"):
        raise WorkersUnavailable("--workers above 1 needs Linux (fork and sigtimedwait)")
    first_restart_delay()  # WorkersUnavailable when it is not seconds


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (the first address a name resolves to);
    with ``reuse_port`` others may listen on the same port (``SO_REUSEPORT``)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def listen_each(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port (``SO_REUSEPORT``): one a worker. Port 0
    takes a free port for the first and the same for the others."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(listen(host, port, reuse_port=True))
            port = sockets[0].getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@dataclass
class _Supervisor:
    settings: Settings
    options: ServeOptions
    # One a worker, by index ([] without SMTP): None while that worker is down.
    smtp_sockets: list[socket.socket | None]
    http_sockets: list[socket.socket | None]
    children: dict[int, int] = field(default_factory=dict)  # pid -> worker index
    started: dict[int, float] = field(default_factory=dict)  # index -> monotonic start
    delays: dict[int, float] = field(default_factory=dict)  # index -> next restart pause
    restarts: dict[int, float] = field(default_factory=dict)  # index -> when to restart
    stop_signals: int = 0
    failed: bool = False

    def __post_init__(self) -> None:
        self.first_delay = first_restart_delay()
        self.most_delay = max(MOST_RESTART_DELAY, self.first_delay)
        self.migrate = queued_connections_migrate()
        self.ports = [(host, _port_of(sockets)) for host, sockets in (
            (self.options.smtp_host, self.smtp_sockets),
            (self.options.http_host, self.http_sockets)) if sockets]
        self.watch_read, self.watch_write = os.pipe()

    def _close_sockets(self, index: int) -> None:
        """Close worker ``index``'s listening sockets (it is dead): the port's new
        connections go to the live workers' sockets."""
        for sockets in (self.smtp_sockets, self.http_sockets):
            if sockets and (sock := sockets[index]) is not None:
                sockets[index] = None
                sock.close()

    def _bind_sockets(self, index: int) -> None:
        """Fresh listening sockets for worker ``index`` where it has none (OSError when
        a port cannot be bound again: its sockets stay closed)."""
        kinds = [sockets for sockets in (self.smtp_sockets, self.http_sockets) if sockets]
        try:
            for sockets, (host, port) in zip(kinds, self.ports, strict=True):
                if sockets[index] is None:
                    sockets[index] = listen(host, port, reuse_port=True)
        except OSError:
            self._close_sockets(index)
            raise

    def spawn(self, index: int) -> None:
        try:
            self._bind_sockets(index)
        except OSError as exc:
            delay = self._next_delay(index, ran=0.0)
            self.restarts[index] = time.monotonic() + delay
            log.error("worker %d: cannot listen again (%s); retrying in %.1f s",
                      index, exc, delay)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            code = 1
            try:
                code = self._work(index)
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                os._exit(code)
        self.children[pid] = index
        self.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, pid)

    def _work(self, index: int) -> int:
        os.close(self.watch_write)  # only the supervisor holds the pipe open
        os.setpgid(0, 0)  # a terminal's Ctrl+C reaches the supervisor, which forwards it
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter(
                f"%(asctime)s %(levelname)s worker-{index} %(name)s %(message)s"))
        for sockets in (self.smtp_sockets, self.http_sockets):
            for n, sock in enumerate(sockets):
                if n != index and sock is not None:  # the other workers' sockets
                    sock.close()
        worker = Worker(index=index, count=self.options.workers,
                        smtp_socket=self.smtp_sockets[index] if self.smtp_sockets else None,
                        http_socket=self.http_sockets[index] if self.http_sockets else None,
                        supervisor_fd=self.watch_read)
        run(serve(self.settings, self.options, worker))
        return 0

    def run(self, demo: dict[str, object]) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for index in range(self.options.workers):
                self.spawn(index)
            print_banner(self.settings, self.options, demo)
            while self.children or self.restarts:
                self._wait()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            os.close(self.watch_write)
            os.close(self.watch_read)
        return 1 if self.failed else 0

    def _wait(self) -> None:
        timeout = 5.0
        if self.restarts:
            timeout = max(0.0, min(self.restarts.values()) - time.monotonic())
        info = signal.sigtimedwait(_SIGNALS, timeout)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
            self._stop(info.si_signo)
        self._reap()
        now = time.monotonic()
        for index, when in list(self.restarts.items()):
            if when <= now:
                del self.restarts[index]
                self.spawn(index)

    def _stop(self, received: int) -> None:
        self.stop_signals += 1
        self.restarts.clear()
        forward = signal.SIGTERM if self.stop_signals == 1 else signal.SIGINT
        log.info("%s: stopping %d worker(s)", signal.Signals(received).name,
                 len(self.children))
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, forward)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None:
                continue
            metrics.process_ended(pid)
            code = os.waitstatus_to_exitcode(status)
            if self.stop_signals:
                # Killed by the SIGTERM forwarded to it: one still starting (its handler
                # not yet set) had nothing to finish.
                if code not in (0, -signal.SIGTERM):
                    self.failed = True
                    log.warning("worker %d (pid %d) ended with %s", index, pid,
                                _describe(code))
                continue
            self._close_sockets(index)
            ran = time.monotonic() - self.started.get(index, 0.0)
            delay = self._next_delay(index, ran)
            self.restarts[index] = time.monotonic() + delay
            log.error("worker %d (pid %d) ended with %s after %.1f s; its sockets closed "
                      "(queued connections %s); restarting in %.1f s", index, pid,
                      _describe(code), ran,
                      "moved to the other workers" if self.migrate else "reset", delay)

    def _next_delay(self, index: int, ran: float) -> float:
        delay = (self.first_delay if ran >= STEADY_AFTER
                 else self.delays.get(index, self.first_delay))
        self.delays[index] = min(delay * 2, self.most_delay)
        return delay


def _port_of(sockets: list[socket.socket | None]) -> int:
    port: int = next(sock for sock in sockets if sock is not None).getsockname()[1]
    return port


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


@contextlib.contextmanager
def _shared_metrics() -> Iterator[None]:
    """Every process's counters in one directory, so that ``/metrics`` sums them all
    (``core.metrics``): ``PROMETHEUS_MULTIPROC_DIR`` when set (emptied first), else a
    fresh temporary directory, removed at the end."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="inboxlog-metrics-"))
    metrics.share_across_processes(directory)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)


def run_workers(settings: Settings, options: ServeOptions) -> int:
    """Prepare, bind, fork ``options.workers`` workers and supervise them until they
    have all stopped; the exit code (0 when every worker stopped cleanly)."""
    with _shared_metrics():
        return _run_workers(settings, options)


def _run_workers(settings: Settings, options: ServeOptions) -> int:
    # The supervisor's connections (the migrations, then none) are named too; each
    # worker takes its share of options.db_connections (serve.serve).
    connections.use(connections.Share(process="inboxlog serve supervisor"))
    demo = asyncio.run(prepare(settings, options))
    if threading.active_count() > 1:  # a thread would not survive the fork in a worker
        log.warning("%d threads before starting the workers", threading.active_count())
    smtp: list[socket.socket | None] = [
        *(listen_each(options.smtp_host, options.smtp_port, options.workers)
          if options.smtp else [])]
    http: list[socket.socket | None] = []
    try:
        if options.http:
            http.extend(listen_each(options.http_host, options.http_port, options.workers))
        return _Supervisor(settings, options, smtp, http).run(demo)
    finally:
        for sock in (*smtp, *http):
            if sock is not None:
                sock.close()
