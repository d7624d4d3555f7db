"""Bodies decoded straight to disk, so a large attachment is never held in memory whole.

A :class:`SpooledFile` is written once, hashed while it is written and fsynced before
anyone sees it: the blob store takes it by linking the file, with no second hash and no
rewrite or fsync of its data inside a database transaction. The file belongs to the
object and is removed when the object is garbage-collected; files that a crash left
behind are removed by :func:`remove_stale`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType

from core._files import private_dir
from core.types import BlobHash

_PREFIX = "body-"


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


class SpooledFile:
    """A file of known size and sha256 that lives as long as this object."""

    __slots__ = ("__weakref__", "_finalizer", "path", "sha256", "size")

    def __init__(self, path: Path, size: int, sha256: BlobHash) -> None:
        self.path = path
        self.size = size
        self.sha256 = sha256
        self._finalizer = weakref.finalize(self, _unlink, path)

    def read_bytes(self) -> bytes:
        """The whole content, in memory: for the rare reader that needs the bytes."""
        return self.path.read_bytes()

    def discard(self) -> None:
        """Remove the file now rather than when the object goes."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"SpooledFile({self.path.name!r}, size={self.size}, sha256={self.sha256[:12]}...)"


class SpoolWriter:
    """Writes and hashes a body in pieces; :meth:`finish` makes it a :class:`SpooledFile`.

    Used as a context manager: leaving the block without ``finish`` removes the file.
    """

    def __init__(self, directory: Path) -> None:
        private_dir(directory)
        fd, name = tempfile.mkstemp(dir=directory, prefix=_PREFIX)
        self._path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._file.write(data)
        self._size += len(data)

    def finish(self) -> SpooledFile:
        """Flush and fsync the file; from now on it belongs to the returned object."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._done = True
        return SpooledFile(self._path, self._size, BlobHash(self._hash.hexdigest()))

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._done:
            self._file.close()
            _unlink(self._path)


def remove_stale(directory: Path, older_than: float) -> int:
    """Remove spool files older than ``older_than`` seconds (left by a crash); a count."""
    removed = 0
    cutoff = time.time() - older_than
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            try:
                stale = entry.name.startswith(_PREFIX) and entry.stat().st_mtime < cutoff
            except OSError:
                continue
            if stale:
                _unlink(Path(entry.path))
                removed += 1
    return removed
