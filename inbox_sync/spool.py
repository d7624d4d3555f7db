"""A durable spool of CRM sends, so a sent email is logged even when the database is
down at that moment, or the process dies before logging it.

One file per send in ``<data-dir>/send-spool/``: a JSON line of metadata, then the raw
message. Each step is written and fsynced (file and directory) before the next one:

``<name>.sending``  written before the SMTP transaction; removed when the server
                    refuses the message (nothing was sent).
``<name>.pending``  renamed so once the server accepted it: sent, not yet logged.
                    Removed once it is logged (or deliberately not logged).

A ``.sending`` file left by a process that died mid-transaction is moved to
``unknown/``: whether the server accepted it cannot be known, and logging an email that
never went out would be worse than missing one. Nothing here touches the database.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core._files import private_dir
from core.storage.blobs import fsync_directory

log = logging.getLogger(__name__)

SENDING = ".sending"
PENDING = ".pending"


@dataclass(frozen=True)
class SpooledSend:
    """What logging a sent message later needs: whose it is, and its bytes."""

    portal_id: int
    user_email: str  # the sender, as the pipeline's ``on_behalf_of``
    inbox_id: int
    message_id: str  # without <>
    tracked_send_id: int | None
    raw: bytes


class SendSpool:
    """The spool directory. Blocking file operations: call them from a worker thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started_ns = time.time_ns()

    def hold(self, entry: SpooledSend) -> Path:
        """Keep ``entry`` durably as about to be sent; its ``.sending`` path."""
        private_dir(self.folder)  # raw messages: the owner's only (docs/security.md)
        name = f"{time.time_ns():020d}-{secrets.token_hex(6)}{SENDING}"
        path = self.folder / name
        meta = {k: v for k, v in asdict(entry).items() if k != "raw"}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, json.dumps(meta).encode() + b"\n")
            view = memoryview(entry.raw)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(self.folder)
        return path

    def mark_sent(self, path: Path) -> Path:
        """The server accepted the message: it now waits to be logged. The new path."""
        pending = path.with_suffix(PENDING)
        os.replace(path, pending)
        fsync_directory(self.folder)
        return pending

    def remove(self, path: Path) -> None:
        """Done with it: refused before sending, or logged."""
        path.unlink(missing_ok=True)
        fsync_directory(self.folder)

    def pending(self) -> list[Path]:
        """Sent messages waiting to be logged, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{PENDING}"))

    def read(self, path: Path) -> SpooledSend:
        """The entry in ``path``; ValueError when the file is not one."""
        data = path.read_bytes()
        head, sep, raw = data.partition(b"\n")
        if not sep:
            raise ValueError(f"{path.name}: no metadata line")
        meta = json.loads(head)
        return SpooledSend(int(meta["portal_id"]), str(meta["user_email"]),
                           int(meta["inbox_id"]), str(meta["message_id"]),
                           None if meta["tracked_send_id"] is None
                           else int(meta["tracked_send_id"]), raw)

    def set_aside(self, path: Path) -> Path:
        """Move a file that cannot be logged automatically to ``unknown/`` for a person
        to look at; its new path."""
        aside = self.folder / "unknown"
        private_dir(aside)
        target = aside / path.name
        os.replace(path, target)
        fsync_directory(aside)
        fsync_directory(self.folder)
        return target

    def set_aside_unfinished(self) -> list[Path]:
        """At start-up: the ``.sending`` files of a process that died mid-send (named
        before this spool object was made) go to ``unknown/``. Returns their new paths."""
        if not self.folder.is_dir():
            return []
        moved = []
        for path in sorted(self.folder.glob(f"*{SENDING}")):
            if _created_ns(path) < self.started_ns:
                moved.append(self.set_aside(path))
                log.warning("send spool: %s was being sent when the process stopped; "
                            "whether it went out is unknown, so it is not logged (kept in %s)",
                            path.name, moved[-1].parent)
        return moved


def _created_ns(path: Path) -> int:
    """When a spool file was named (its name starts with the time in nanoseconds)."""
    stamp = path.name.partition("-")[0]
    return int(stamp) if stamp.isdigit() else 0
