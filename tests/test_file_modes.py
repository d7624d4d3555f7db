"""Files at rest are the owner's only: `inboxlog serve` creates its data dir, database,
secret key and blob store 0700 (directories) / 0600 (files), whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.support.mail import deliver, logged_id
from tests.support.server import Server


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask 022, under which a plain create is 0644 and a mkdir 0755."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def test_data_dir_database_and_blobs_are_owner_only(tmp_path: Path, loose_umask: None) -> None:
    """After logging mail with a small and a large (spooled, linked) attachment over SMTP
    and HTTP, every directory under the data dir is 0700 and every file 0600."""
    data = tmp_path / "fresh" / "data"  # does not exist yet: serve creates it
    server = Server(tmp_path, extra_args=("--data-dir", str(data))).start()
    try:
        portal = server.cli("admin", "create-portal", "--name", "Modes", "--data-dir", str(data))
        user = server.cli("admin", "add-user", "--portal", str(portal["portal_id"]),
                          "--email", "rep@ourco.example", "--data-dir", str(data))
        for size in (2_000, 3_000_000):
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = ("rep@ourco.example", "ann@acme.example",
                                                      f"files {size}")
            msg.set_content("see attached")
            msg.add_attachment(os.urandom(size), maintype="application",
                               subtype="octet-stream", filename=f"f{size}.bin")
            logged_id(deliver(server, msg, portal["bcc_address"]))
            msg.replace_header("Subject", f"one-click {size}")
            del msg["Message-ID"]
            response = httpx.post(f"{server.base_url}/api/v1/emails/log",
                                  content=msg.as_bytes(), timeout=30, headers={
                                      "Authorization": f"Bearer {user['api_token']}",
                                      "Content-Type": "message/rfc822"})
            assert response.status_code == 201, response.text
    finally:
        server.stop()
    modes = _modes(data)
    assert {"inboxlog.db", "secret_key", "blobs"} <= set(modes), modes
    assert any(name.startswith("blobs/") and not Path(data / name).is_dir() for name in modes)
    loose = {name: mode for name, mode in modes.items()
             if mode != ("0o700" if (data / name).is_dir() else "0o600")}
    assert loose == {}
    assert oct(stat.S_IMODE((tmp_path / "fresh").stat().st_mode)) == "0o700"
