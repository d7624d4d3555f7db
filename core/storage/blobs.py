"""The content-addressed blob store: files under ``<data_dir>/blobs`` named by sha256
(:class:`LocalBlobStore`), or objects in an S3-compatible bucket (``core.storage._s3``); the
pipeline, the purge and the download endpoint see only the :class:`BlobStore` protocol.

A blob is written to a temporary file, fsynced, and renamed into place before the
database transaction that references it commits, so a committed row never points at
a missing file. A crash between the two, or a transaction that fails after the write,
leaves at worst an unreferenced file, which ``retention.remove_stray_files`` removes.

A large attachment arrives already on disk (a :class:`SpooledFile` in ``spool_dir()``,
written, hashed and fsynced while the message was parsed, outside any transaction):
storing it is a hard link, not a rewrite.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from core._files import FILE_MODE, private_dir
from core.mail.spool import SpooledFile, remove_stale
from core.types import BlobHash

# Spool files older than this were left by a crash: no message takes this long to log.
STALE_SPOOL_SECONDS = 6 * 3600


def sha256_hex(data: bytes | SpooledFile) -> BlobHash:
    if isinstance(data, SpooledFile):
        return data.sha256
    return BlobHash(hashlib.sha256(data).hexdigest())


def blob_size(data: bytes | SpooledFile) -> int:
    return data.size if isinstance(data, SpooledFile) else len(data)


# How much of a blob a download reads at a time.
READ_CHUNK = 256 * 1024


class BlobStoreUnavailable(OSError):
    """The blob store could not be reached or refused a request; a retry later may work
    (an ``OSError``, so the pipeline answers ``451 4.3.0`` as for a database down)."""


@dataclass(frozen=True)
class BlobReader:
    """A stored blob, read in chunks: a download is never held whole in memory."""

    size: int
    chunks: AsyncIterator[bytes]


class BlobStore(Protocol):
    """Where blobs live, by sha256. ``put`` returns only once the blob is durable."""

    def spool_dir(self) -> Path: ...

    async def put(self, data: bytes | SpooledFile, digest: BlobHash | None = None
                  ) -> BlobHash: ...

    async def get(self, digest: BlobHash | str) -> bytes: ...

    async def open(self, digest: BlobHash | str) -> BlobReader | None:
        """The blob's bytes in chunks, or None when it is not stored."""
        ...

    def local_path(self, digest: BlobHash | str) -> Path | None:
        """The blob's file when it is one on this machine (served as a file), else None."""
        ...

    async def delete(self, digest: BlobHash | str) -> None: ...

    def files_older_than(self, seconds: float) -> Iterator[str]:
        """Digests of the blobs last written more than ``seconds`` ago (blocking: call
        it in a thread)."""
        ...


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, key prefix ending in ``/``, or empty)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def check_digest(digest: str) -> None:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a sha256 hex digest: {digest!r}")


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._spool_dir: Path | None = None

    def path(self, digest: BlobHash | str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def spool_dir(self) -> Path:
        """Where large bodies are decoded before they are stored: on the blobs' own file
        system, so storing one is a link. Created on first use, when what a crash left
        there is removed."""
        if self._spool_dir is None:
            spool = self.root / ".spool"
            private_dir(spool)
            remove_stale(spool, STALE_SPOOL_SECONDS)
            self._spool_dir = spool
        return self._spool_dir

    def _present(self, target: Path, size: int) -> bool:
        return target.exists() and target.stat().st_size == size

    def _write(self, digest: BlobHash, data: bytes, *, sync_name: bool = True) -> Path | None:
        """Write the blob's file; without ``sync_name`` its directory is returned (None
        when the file was there) for the caller to fsync once for many files."""
        target = self.path(digest)
        if self._present(target, len(data)):
            return None
        private_dir(target.parent)
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
        if not sync_name:
            return target.parent
        fsync_directory(target.parent)
        return None

    def _link(self, spooled: SpooledFile) -> None:
        """Give a spooled file its blob name: a hard link to its already fsynced data, or
        a copy (then fsynced) when the spool is on another file system."""
        target = self.path(spooled.sha256)
        if self._present(target, spooled.size):
            return
        private_dir(target.parent)
        # A unique name first: os.link does not replace, and the spool file stays usable
        # (a retried transaction stores it again).
        tmp = target.parent / f".tmp-{secrets.token_hex(8)}"
        try:
            try:
                os.link(spooled.path, tmp)
            except OSError:
                shutil.copyfile(spooled.path, tmp)
                os.chmod(tmp, FILE_MODE)  # copyfile creates it with the umask's mode
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_directory(target.parent)

    async def put(self, data: bytes | SpooledFile, digest: BlobHash | None = None) -> BlobHash:
        """Store ``data`` durably (idempotent) and return its sha256.

        ``digest``, when the caller has it, is trusted. Hashing and writing run in a
        worker thread: a large blob must not stall the event loop.
        """
        if isinstance(data, SpooledFile):
            await asyncio.to_thread(self._link, data)
            return data.sha256

        def write() -> BlobHash:
            known = digest or sha256_hex(data)
            self._write(known, data)
            return known

        return await asyncio.to_thread(write)

    def write_many(self, items: list[tuple[bytes | SpooledFile, BlobHash]]) -> None:
        """Store many blobs durably in the calling thread: each file is fsynced, and
        each directory once, after its last file (not one directory fsync per file)."""
        names: set[Path] = set()
        for data, digest in items:
            if isinstance(data, SpooledFile):
                self._link(data)
            elif (directory := self._write(digest, data, sync_name=False)) is not None:
                names.add(directory)
        for directory in names:
            fsync_directory(directory)

    async def get(self, digest: BlobHash | str) -> bytes:
        return await asyncio.to_thread(self.path(digest).read_bytes)

    async def open(self, digest: BlobHash | str) -> BlobReader | None:
        path = self.path(digest)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            return None
        return BlobReader(os.fstat(handle.fileno()).st_size, _file_chunks(handle))

    def local_path(self, digest: BlobHash | str) -> Path | None:
        return self.path(digest)

    def exists(self, digest: BlobHash | str) -> bool:
        return self.path(digest).exists()

    async def delete(self, digest: BlobHash | str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def files_older_than(self, seconds: float) -> Iterator[str]:
        """Digests of the blob files last written more than ``seconds`` ago; temporary
        files that old (a write a crash interrupted) are removed on the way."""
        cutoff = time.time() - seconds
        for first in _subdirs(self.root):
            for second in _subdirs(first):
                for entry in os.scandir(second):
                    if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                        continue
                    if entry.name.startswith(".tmp-"):
                        Path(entry.path).unlink(missing_ok=True)
                    elif len(entry.name) == 64:
                        yield entry.name


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` (a file created, renamed or removed) durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _subdirs(directory: Path) -> Iterator[Path]:
    """The two-hex-digit fan-out directories under ``directory`` (not ``.spool``)."""
    if not directory.is_dir():
        return
    for entry in os.scandir(directory):
        if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)


async def _file_chunks(handle: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, READ_CHUNK):
            yield chunk
    finally:
        handle.close()


async def put_many(store: BlobStore, items: list[tuple[bytes | SpooledFile, BlobHash]]) -> None:
    """Store ``items`` (data and its trusted sha256) durably: on local files in one
    worker thread with one fsync per directory, elsewhere one ``put`` after another."""
    if not items:  # most mail: no thread hop inside everyone's group commit
        return
    if isinstance(store, LocalBlobStore):
        await asyncio.to_thread(store.write_many, items)
        return
    for data, digest in items:
        await store.put(data, digest)
