"""Profile the SMTP ingest path: `python -m bench.profile_ingest [sqlite|postgresql] [N]`.

Starts `inboxlog serve` (SQLite, or PostgreSQL from INBOXLOG_TEST_PG_URL) under
cProfile, sends N (default 1,000) bench messages of ~4 KB over 20 sessions after a
warm-up, stops the server and prints the functions by cumulative and by own time, with
the server's CPU-ms and statements per message. Not in `make bench`: a profile is for
reading, and cProfile itself roughly doubles the CPU per call.
"""

from __future__ import annotations

import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Server, cpu_seconds, drop_pg_database, new_pg_database
from bench.smtp_ingest import USER, WARMUP, _send, scrape_counter


class ProfiledServer(Server):
    """``Server`` whose process runs under cProfile, writing ``profile`` when stopped."""

    def __init__(self, data_dir: Path, profile: Path, db_url: str = "") -> None:
        super().__init__(data_dir, db_url=db_url)
        self.profile = profile

    def start(self, timeout: float = 60, **_: object) -> Server:
        popen = subprocess.Popen

        def wrapped(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
            args = [args[0], "-m", "cProfile", "-o", str(self.profile), *args[1:]]
            return popen(args, **kwargs)  # type: ignore[call-overload,no-any-return]

        subprocess.Popen = wrapped  # type: ignore[assignment,misc]
        try:
            return super().start(timeout)
        finally:
            subprocess.Popen = popen  # type: ignore[misc]


def main(backend: str, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="profile-ingest-") as tmp:
        url = new_pg_database() if backend == "postgresql" else ""
        profile = Path(tmp) / "server.prof"
        server = ProfiledServer(Path(tmp) / "data", profile, url)
        try:
            server.start()
            assert server.process is not None
            rcpt = server.new_portal(USER).bcc_address
            _send(server.smtp_port, rcpt, WARMUP, 4096)
            statements = scrape_counter(server.base_url, "inboxlog_db_statements")
            cpu = cpu_seconds(server.process.pid)
            result = _send(server.smtp_port, rcpt, count, 4096)
            cpu = cpu_seconds(server.process.pid) - cpu
            statements = scrape_counter(server.base_url, "inboxlog_db_statements") - statements
        finally:
            server.stop()
            if url:
                drop_pg_database(url)
        print(f"{result.ok} logged at {result.rate:.0f}/s; server CPU {cpu * 1000 / count:.2f} "
              f"ms/message (profiled), {statements / count:.1f} statements/message")
        stats = pstats.Stats(str(profile))
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite",
         int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
