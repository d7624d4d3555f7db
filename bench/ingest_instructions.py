"""Instructions per logged message, in process: `python -m bench.ingest_instructions`.

CPU time on a shared 2-core host swings by 15 % and more from one run to the next (and
grows under contention), so a change worth 3 % cannot be seen in `make bench`'s
CPU-ms. Instruction counts under valgrind's callgrind do not depend on the load: this
runs the ingest pipeline (``core.pipeline.log_message``, from prepare to commit, on
SQLite, 20 concurrent callers sharing group commits as SMTP sessions do) at two sizes
and prints the difference divided by the extra messages: repeatable to about 1 %.
Compare two trees by running it from each (a `git worktree` of the base). Not in
`make bench`: it takes about a minute and a half on both cores.

    python -m bench.ingest_instructions [--callers N]   # under callgrind, both sizes
    python -m bench.ingest_instructions --run N          # one plain run of N messages
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import make_messages
from bench.smtp_ingest import USER

# The warm-up reaches all 200 contacts of the bench's load, as in `make bench`'s 5,000
# messages: what is measured is logging to known contacts, not creating them.
WARMUP = 200
SMALL, LARGE = 60, 260


async def _ingest(count: int, callers: int) -> None:
    from core import accounts, pipeline
    from core.runtime import Runtime, Settings
    from core.storage.db import migrate
    from core.types import Channel, Envelope

    with tempfile.TemporaryDirectory(prefix="ingest-instructions-") as tmp:
        runtime = Runtime(Settings(data_dir=Path(tmp), secret_key="bench"))
        await migrate(runtime.db)
        async with runtime.db.transaction() as session:
            created = await accounts.create_portal(session, "Bench")
            await accounts.add_user(session, created.portal.id, USER)
            portal_id, token = created.portal.id, created.portal.bcc_token
        address = f"{token}@{runtime.settings.bcc_domain}"
        how = pipeline.Arrival.for_portal(Channel.SMTP, portal_id, Envelope(
            mail_from=USER, rcpt_tos=(address,), logging_address=address, peer="127.0.0.1"))
        messages = make_messages(WARMUP + count, USER,
                                 lambda n: f"buyer{n % 200}@acme{n % 20}.example")

        async def run(batch: list[bytes]) -> None:
            async def caller() -> None:
                while batch:
                    await pipeline.log_message(runtime, batch.pop(), how)

            await asyncio.gather(*(caller() for _ in range(callers)))

        await run(messages[:WARMUP])
        cpu, started = time.process_time(), time.perf_counter()
        await run(messages[WARMUP:])
        cpu, seconds = time.process_time() - cpu, time.perf_counter() - started
        print(f"{count} messages: {cpu * 1000 / count:.3f} CPU-ms each, "
              f"{count / seconds:.0f}/s")
        await runtime.close()


def _instructions(count: int, callers: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "bench.ingest_instructions", "--run", str(count), "--callers", str(callers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).parents[1])


def _collected(process: subprocess.Popen[str]) -> int:
    _, err = process.communicate()
    found = re.search(r"Collected : (\d+)", err)
    if process.returncode or found is None:
        raise SystemExit(f"callgrind run failed:\n{err[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=int, help="one plain run of this many messages")
    parser.add_argument("--callers", type=int, default=20)
    args = parser.parse_args()
    if args.run:
        import uvloop

        uvloop.run(_ingest(args.run, args.callers))
        return
    small, large = _instructions(SMALL, args.callers), _instructions(LARGE, args.callers)
    per_message = (_collected(large) - _collected(small)) / (LARGE - SMALL)
    print(f"{per_message / 1e6:.3f} M instructions per message "
          f"({args.callers} callers, callgrind, {LARGE} - {SMALL} messages)")


if __name__ == "__main__":
    main()
