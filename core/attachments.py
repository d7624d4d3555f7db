"""The content-addressed blob store: files under ``<data_dir>/blobs`` named by sha256.

A blob is written to a temporary file, fsynced, and renamed into place before the
database transaction that references it commits, so a committed row never points at
a missing file. A crash between the two leaves at worst an unreferenced file, which
the retention sweep removes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from core.types import BlobHash


def sha256_hex(data: bytes) -> BlobHash:
    return BlobHash(hashlib.sha256(data).hexdigest())


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: BlobHash | str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def _write(self, digest: BlobHash, data: bytes) -> None:
        target = self.path(digest)
        if target.exists() and target.stat().st_size == len(data):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def put(self, data: bytes) -> BlobHash:
        """Store ``data`` durably (idempotent) and return its sha256."""
        digest = sha256_hex(data)
        await asyncio.to_thread(self._write, digest, data)
        return digest

    async def get(self, digest: BlobHash | str) -> bytes:
        return await asyncio.to_thread(self.path(digest).read_bytes)

    def exists(self, digest: BlobHash | str) -> bool:
        return self.path(digest).exists()

    def delete(self, digest: BlobHash | str) -> None:
        self.path(digest).unlink(missing_ok=True)
