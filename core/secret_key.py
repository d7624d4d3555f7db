"""The server secret: given by the operator, or generated once and kept in the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core._files import private_dir

SECRET_FILE = "secret_key"


def load_or_create(data_dir: Path, given: str = "") -> str:
    """``given`` when not empty; else the key in ``<data_dir>/secret_key``, created on
    first use with mode 0600 (an exclusive create, so two processes agree on one key)."""
    if given:
        return given
    path = data_dir / SECRET_FILE
    private_dir(data_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        raise RuntimeError(f"{path} is empty: remove it or give --secret-key") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key
