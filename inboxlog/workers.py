"""`inboxlog serve --workers N`: one supervisor, N worker processes on shared sockets.

The supervisor prepares the database once (migrations, demo account), binds the SMTP
and HTTP ports, then forks the workers. Each worker has listening sockets of its own on
both ports (``SO_REUSEPORT``): the kernel spreads new connections over them by a hash of
their addresses, so a burst of connections (20 sessions opening at once) is shared
evenly; with one socket for all, the first worker to wake accepted every connection
waiting and kept most of the burst (one worker served 1,100 of 1,500 bench messages,
the other 400). The supervisor holds every socket open, so the ports stay open while a
worker is restarted: connections given to its sockets wait in their backlog. The
supervisor serves nothing itself. It restarts a worker that exits on its own (after a
pause that grows while it keeps failing), turns its own SIGTERM or SIGINT into SIGTERM
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
from inboxlog.serve import run as serve_run
from inboxlog.serve import ServeOptions, Worker, prepare, print_banner, serve

log = logging.getLogger("inboxlog.workers")

_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
FIRST_RESTART_DELAY = 0.5  # seconds before restarting a worker that exited on its own
MOST_RESTART_DELAY = 30.0
STEADY_AFTER = 30.0  # a worker that ran this long before failing restarts at once again


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
    smtp_sockets: list[socket.socket]  # one a worker, by index; [] without SMTP
    http_sockets: list[socket.socket]
    children: dict[int, int] = field(default_factory=dict)  # pid -> worker index
    started: dict[int, float] = field(default_factory=dict)  # index -> monotonic start
    delays: dict[int, float] = field(default_factory=dict)  # index -> next restart pause
    restarts: dict[int, float] = field(default_factory=dict)  # index -> when to restart
    stop_signals: int = 0
    failed: bool = False

    def __post_init__(self) -> None:
        self.watch_read, self.watch_write = os.pipe()

    def spawn(self, index: int) -> None:
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
        for n, sock in enumerate([*self.smtp_sockets, *self.http_sockets]):
            if n % self.options.workers != index:  # the other workers' sockets
                sock.close()
        worker = Worker(index=index, count=self.options.workers,
                        smtp_socket=self.smtp_sockets[index] if self.smtp_sockets else None,
                        http_socket=self.http_sockets[index] if self.http_sockets else None,
                        supervisor_fd=self.watch_read)
        serve_run(serve(self.settings, self.options, worker))
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
            ran = time.monotonic() - self.started.get(index, 0.0)
            delay = (FIRST_RESTART_DELAY if ran >= STEADY_AFTER
                     else self.delays.get(index, FIRST_RESTART_DELAY))
            self.delays[index] = min(delay * 2, MOST_RESTART_DELAY)
            self.restarts[index] = time.monotonic() + delay
            log.error("worker %d (pid %d) ended with %s after %.1f s; restarting in %.1f s",
                      index, pid, _describe(code), ran, delay)


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
    demo = asyncio.run(prepare(settings, options))
    if threading.active_count() > 1:  # a thread would not survive the fork in a worker
        log.warning("%d threads before starting the workers", threading.active_count())
    smtp = (listen_each(options.smtp_host, options.smtp_port, options.workers)
            if options.smtp else [])
    try:
        http = (listen_each(options.http_host, options.http_port, options.workers)
                if options.http else [])
    except OSError:
        for sock in smtp:
            sock.close()
        raise
    try:
        return _Supervisor(settings, options, smtp, http).run(demo)
    finally:
        for sock in (*smtp, *http):
            sock.close()
