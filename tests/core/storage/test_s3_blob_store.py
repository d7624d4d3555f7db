"""The S3 blob store itself, against moto's S3 server and s3rver on loopback: checksummed
uploads, streamed reads, and the stray-object sweep on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.mail.spool import SpoolWriter
from core.retention import remove_orphan_blobs, remove_stray_files
from core.storage._s3 import S3BlobStore
from core.storage.blobs import BlobStoreUnavailable, parse_s3_url
from core.storage.db import Database
from core.storage.models import Blob
from tests.support.s3 import S3Endpoint, running_s3
from tests.support.server import free_port

BUCKET = "core-blobs"


@pytest.fixture(scope="module", params=["moto", "s3rver"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[S3Endpoint]:
    """Each test runs against both implementations."""
    with running_s3(request.param, BUCKET) as running:
        yield running


@pytest.fixture
def store(endpoint: S3Endpoint, tmp_path: Path) -> S3BlobStore:
    # A prefix of its own per test: the bucket is shared by the module.
    return S3BlobStore(f"s3://{BUCKET}/{tmp_path.name}", tmp_path / "spool",
                       endpoint_url=endpoint.url, region="us-east-1",
                       access_key_id=endpoint.access_key_id,
                       secret_access_key=endpoint.secret_access_key)


def _objects(store: S3BlobStore) -> dict[str, Any]:
    listed = store._client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)
    return {o["Key"]: o for o in listed.get("Contents", [])}


def test_url_parsing() -> None:
    assert parse_s3_url("s3://b/a/b/") == ("b", "a/b/")
    assert parse_s3_url("s3://b") == ("b", "")
    for bad in ("http://b/p", "s3:///p", "s3://b/p?x=1"):
        with pytest.raises(ValueError):
            parse_s3_url(bad)


async def test_put_get_and_stream(store: S3BlobStore) -> None:
    data = os.urandom(700_000)
    digest = await store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert list(_objects(store)) == [store.key(digest)]
    assert await store.get(digest) == data
    reader = await store.open(digest)
    assert reader is not None and reader.size == len(data)
    chunks = [chunk async for chunk in reader.chunks]
    assert len(chunks) > 1 and b"".join(chunks) == data
    assert await store.open(hashlib.sha256(b"never stored").hexdigest()) is None
    assert store.local_path(digest) is None


async def test_spooled_file_is_uploaded_from_disk(store: S3BlobStore) -> None:
    with SpoolWriter(store.spool_dir()) as writer:
        writer.write(b"spooled " * 200_000)
        spooled = writer.finish()
    assert await store.put(spooled, spooled.sha256) == spooled.sha256
    assert await store.get(spooled.sha256) == b"spooled " * 200_000


async def test_upload_carries_its_sha256(store: S3BlobStore) -> None:
    """The upload sends the sha256 as its checksum, which S3 checks the bytes against
    (moto and s3rver do not check it: this looks at the request)."""
    sent: list[Any] = []
    store._client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))
    digest = await store.put(b"checked bytes")
    [headers] = sent
    assert base64.b64decode(headers["x-amz-checksum-sha256"]).hex() == digest


async def test_unreachable_store_is_unavailable(tmp_path: Path) -> None:
    down = S3BlobStore(f"s3://{BUCKET}/x", tmp_path / "spool",
                       endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1",
                       access_key_id="k", secret_access_key="s")
    with pytest.raises(BlobStoreUnavailable):
        await down.put(b"anything")
    with pytest.raises(BlobStoreUnavailable):
        list(down.files_older_than(0))


async def test_stray_and_orphan_objects_are_swept(
    database: Database, store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, stray, orphan = (await store.put(b"referenced"), await store.put(b"rolled back"),
                           await store.put(b"orphaned"))
    async with database.transaction() as session:
        session.add_all([Blob(sha256=kept, size=10), Blob(sha256=orphan, size=8)])
    # Not an hour old yet: may belong to a transaction under way.
    assert await remove_stray_files(database, store) == 0
    assert len(_objects(store)) == 3
    an_hour_later = time.time() + 3601
    monkeypatch.setattr(time, "time", lambda: an_hour_later)
    assert await remove_stray_files(database, store) == 1
    assert set(_objects(store)) == {store.key(kept), store.key(orphan)}
    assert store.key(stray) not in _objects(store)
    assert await remove_orphan_blobs(database, store) == 2  # kept has no attachment either
    assert _objects(store) == {}
