"""`serve --blob-store s3://bucket/prefix`: attachments in an S3-compatible bucket (moto's
server and s3rver on loopback), through the real SMTP and HTTP ports and the `purge` command."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support import postgres
from tests.support.mail import deliver, logged_id, message
from tests.support.s3 import S3Endpoint, running_s3
from tests.support.server import PortalAccount, Server, free_port

BUCKET = "inboxlog-blobs"
PREFIX = "node-a"


class MotoS3:
    """A moto S3 server on a loopback port, stoppable and restartable (its objects
    live in this process, so they survive a restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        self.client: Any = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port,
                                          verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def objects(self, prefix: str = PREFIX) -> dict[str, bytes]:
        return _objects(self.client, prefix)


def _objects(client: Any, prefix: str) -> dict[str, bytes]:
    found = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            for o in found}


class Bucket:
    def __init__(self, endpoint: S3Endpoint) -> None:
        self.endpoint = endpoint
        self.client = endpoint.client()

    def objects(self, prefix: str = PREFIX) -> dict[str, bytes]:
        return _objects(self.client, prefix)


@pytest.fixture(scope="module", params=["moto", "s3rver"])
def s3(request: pytest.FixtureRequest) -> Iterator[Bucket]:
    """Both implementations, one server each for the module."""
    with running_s3(request.param, BUCKET) as endpoint:
        yield Bucket(endpoint)


@pytest.fixture(scope="module")
def s3_server(s3: Bucket, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose blobs are in the bucket, configured through the environment."""
    running = Server(tmp_path_factory.mktemp("s3-server"), extra_env={
        "AWS_ENDPOINT_URL": s3.endpoint.url, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": s3.endpoint.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3.endpoint.secret_access_key,
        "INBOXLOG_BLOB_STORE": f"s3://{BUCKET}/{PREFIX}/"}).start()
    yield running
    running.stop()


def key(digest: str, prefix: str = PREFIX) -> str:
    return f"{prefix}/{digest[:2]}/{digest[2:4]}/{digest}"


def _with_files(account: PortalAccount, *files: tuple[str, bytes]) -> EmailMessage:
    msg = message(sender=account.user_email, to="ann@s3-buyer.example",
                  subject="Files", message_id=make_msgid())
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream",
                           filename=name)
    return msg


def _attachments(server: Server, account: PortalAccount, email_id: int) -> dict[str, Any]:
    with server.api(account.user_token) as api:
        email = api.get(f"/api/v1/emails/{email_id}").json()
    return {a["filename"]: a for a in email["attachments"]}


def test_attachments_are_stored_in_the_bucket_and_stream_back(
    s3: Bucket, s3_server: Server
) -> None:
    account = s3_server.new_portal()
    small = b"%PDF-1.4 proposal " + os.urandom(3000)
    large = os.urandom(3 * 1024 * 1024)  # over the spool threshold: uploaded from disk
    email_id = logged_id(deliver(s3_server, _with_files(
        account, ("proposal.pdf", small), ("r\u00e9sum\u00e9 big.bin", large)),
        account.bcc_address))

    files = _attachments(s3_server, account, email_id)
    stored = s3.objects()
    with s3_server.api(account.user_token) as api:
        for name, data in (("proposal.pdf", small), ("r\u00e9sum\u00e9 big.bin", large)):
            digest = hashlib.sha256(data).hexdigest()
            assert files[name]["sha256"] == digest
            assert stored[key(digest)] == data
            with api.stream("GET", f"/api/v1/attachments/{files[name]['id']}") as download:
                assert download.status_code == 200
                assert download.headers["content-length"] == str(len(data))
                assert download.headers["content-disposition"].startswith("attachment;")
                assert download.headers["x-content-type-options"] == "nosniff"
                chunks = list(download.iter_bytes())
            assert hashlib.sha256(b"".join(chunks)).hexdigest() == digest
    # Nothing went to the node's own disk but the spool, which is empty again.
    assert not list((s3_server.data_dir / "blobs").rglob(hashlib.sha256(small).hexdigest()))
    assert [p for p in (s3_server.data_dir / "spool").iterdir()] == []


def test_a_bad_blob_store_url_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--blob-store"):
        Server(tmp_path, extra_args=("--blob-store", "s3:/no-bucket")).start()


def test_the_same_file_twice_is_one_object(s3: Bucket, s3_server: Server) -> None:
    account = s3_server.new_portal()
    data = os.urandom(5000)
    for n in range(2):
        logged_id(deliver(s3_server, _with_files(account, (f"copy{n}.bin", data)),
                          account.bcc_address))
    digest = hashlib.sha256(data).hexdigest()
    assert [k for k in s3.objects() if k.endswith(digest)] == [key(digest)]


def test_purge_deletes_the_orphaned_objects_only(s3: Bucket, s3_server: Server) -> None:
    account = s3_server.new_portal()
    own, shared = os.urandom(4000), os.urandom(4000)
    gone = logged_id(deliver(s3_server, _with_files(account, ("own.bin", own),
                                                    ("shared.bin", shared)),
                             account.bcc_address))
    logged_id(deliver(s3_server, _with_files(account, ("shared.bin", shared)),
                      account.bcc_address))
    with s3_server.api(account.user_token) as api:
        assert api.delete(f"/api/v1/emails/{gone}").status_code == 200
    later = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    counts = s3_server.cli("purge", "--now", later)
    assert counts["blobs"] >= 1
    stored = s3.objects()
    assert key(hashlib.sha256(own).hexdigest()) not in stored
    assert stored[key(hashlib.sha256(shared).hexdigest())] == shared


def test_s3_down_during_data_is_451_and_nothing_is_half_stored(tmp_path: Path) -> None:
    """With the bucket unreachable the message is refused for now, no row refers to a
    blob that is not there, and the retry once it is back logs the message."""
    s3 = MotoS3()
    s3.start()
    s3.client.create_bucket(Bucket=BUCKET)
    server = Server(tmp_path / "server", extra_args=(
        "--blob-store", f"s3://{BUCKET}/down-test", "--s3-endpoint-url", s3.endpoint),
        extra_env={k: v for k, v in s3.env.items() if k != "AWS_ENDPOINT_URL"}).start()
    try:
        account = server.new_portal()
        data = os.urandom(6000)
        msg = _with_files(account, ("while-down.bin", data))
        s3.stop()
        code, text = deliver(server, msg, account.bcc_address)
        assert (code, text.split()[0]) == (451, "4.3.0"), text
        with sqlite3.connect(server.data_dir / "inboxlog.db") as db:
            assert db.execute("SELECT count(*) FROM emails").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM attachments").fetchone() == (0,)
        s3.start()
        assert s3.objects("down-test") == {}
        email_id = logged_id(deliver(server, msg, account.bcc_address))
        digest = hashlib.sha256(data).hexdigest()
        assert s3.objects("down-test") == {key(digest, "down-test"): data}
        files = _attachments(server, account, email_id)
        with server.api(account.user_token) as api:
            download = api.get(f"/api/v1/attachments/{files['while-down.bin']['id']}")
        assert download.content == data
    finally:
        server.stop()
        s3.stop()


def test_two_nodes_on_one_postgresql_share_the_bucket(s3: Bucket, tmp_path: Path) -> None:
    """Mail logged by one node has its attachment read from the other; the same file
    logged through the other is not stored again."""
    url = asyncio.run(postgres.create_database())
    env = {"AWS_ENDPOINT_URL": s3.endpoint.url, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": s3.endpoint.access_key_id,
           "AWS_SECRET_ACCESS_KEY": s3.endpoint.secret_access_key,
           "INBOXLOG_BLOB_STORE": f"s3://{BUCKET}/shared"}
    nodes = [Server(tmp_path / name, db_url=url, extra_env=env) for name in ("a", "b")]
    try:
        for node in nodes:
            node.start()
        a, b = nodes
        account = a.new_portal()
        data = os.urandom(20_000)
        first = logged_id(deliver(a, _with_files(account, ("spec.bin", data)),
                                  account.bcc_address))
        second = logged_id(deliver(b, _with_files(account, ("spec-again.bin", data)),
                                   account.bcc_address))
        for node, email_id, name in ((b, first, "spec.bin"), (a, second, "spec-again.bin")):
            files = _attachments(node, account, email_id)
            with node.api(account.user_token) as api:
                assert api.get(f"/api/v1/attachments/{files[name]['id']}").content == data
        digest = hashlib.sha256(data).hexdigest()
        assert list(s3.objects("shared")) == [key(digest, "shared")]
        assert not [*a.data_dir.rglob(digest), *b.data_dir.rglob(digest)]  # no local copy
    finally:
        for node in nodes:
            node.stop()
        asyncio.run(postgres.drop_database(url))
