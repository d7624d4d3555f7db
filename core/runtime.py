"""What the adapters share at run time: settings, the database and the blob store."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from core.attachments import BlobStore
from core.db import Database, sqlite_url


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    db_url: str = ""  # empty: SQLite under data_dir
    bcc_domain: str = "bcc.localhost"
    base_url: str = "http://127.0.0.1:8025"
    secret_key: str = ""
    smtp_hostname: str = field(default_factory=socket.getfqdn)

    @property
    def database_url(self) -> str:
        return self.db_url or sqlite_url(self.data_dir / "inboxlog.db")


class Runtime:
    """One inboxlog instance's resources; create once per process, ``close`` at exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.blobs = BlobStore(settings.data_dir / "blobs")

    async def close(self) -> None:
        await self.db.dispose()
