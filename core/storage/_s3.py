"""The blob store in an S3-compatible bucket: ``s3://bucket/prefix``, keys
``<prefix>/ab/cd/<sha256>`` (the local store's layout), so several nodes share blobs.

A blob is uploaded with its sha256 as the request's checksum (the server refuses bytes
that do not match it) and ``put`` returns only once the server has answered the upload:
the transaction that references the blob commits after that, as with a local file. The
boto3 client runs in worker threads; endpoint, region and credentials come from the
standard ``AWS_*`` environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``) unless given here.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core._files import private_dir
from core.mail.spool import SpooledFile, remove_stale
from core.storage.blobs import (
    READ_CHUNK,
    STALE_SPOOL_SECONDS,
    BlobReader,
    BlobStoreUnavailable,
    check_digest,
    parse_s3_url,
    sha256_hex,
)
from core.types import BlobHash

T = TypeVar("T")

# Blobs this large are looked for before they are uploaded (a PUT of the same key
# replaces the object with the same bytes, so smaller ones are just uploaded again).
HEAD_FIRST_BYTES = 256 * 1024


class S3BlobStore:
    def __init__(self, url: str, spool_root: Path, *, endpoint_url: str = "",
                 region: str = "", access_key_id: str = "", secret_access_key: str = ""
                 ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self._spool_root = spool_root
        self._spool_dir: Path | None = None
        options: dict[str, Any] = {}
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        if access_key_id or secret_access_key:
            options["aws_access_key_id"] = access_key_id
            options["aws_secret_access_key"] = secret_access_key
        session = boto3.session.Session(region_name=region or None)
        if session.region_name is None:
            options["region_name"] = "us-east-1"
        self._client = session.client("s3", config=Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5, read_timeout=60,
            # Path-style works on every S3-compatible server (and on AWS).
            s3={"addressing_style": "path"},
        ), **options)

    def key(self, digest: BlobHash | str) -> str:
        check_digest(digest)
        return f"{self.prefix}{digest[:2]}/{digest[2:4]}/{digest}"

    def spool_dir(self) -> Path:
        """Large bodies are decoded to local disk, then uploaded from there."""
        if self._spool_dir is None:
            private_dir(self._spool_root)
            remove_stale(self._spool_root, STALE_SPOOL_SECONDS)
            self._spool_dir = self._spool_root
        return self._spool_dir

    def _size(self, key: str) -> int | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def _upload(self, digest: BlobHash, data: bytes | SpooledFile) -> None:
        key = self.key(digest)
        size = data.size if isinstance(data, SpooledFile) else len(data)
        # A request costs about as much client CPU as another (bench/NOTES.md): asking
        # whether the object is there pays only when that saves uploading much.
        if size >= HEAD_FIRST_BYTES and self._size(key) == size:
            return
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        if isinstance(data, SpooledFile):
            with data.path.open("rb") as body:
                answer = self._client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                                 ContentLength=size, ChecksumSHA256=checksum)
        else:
            answer = self._client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                             ChecksumSHA256=checksum)
        # S3 answers with the checksum it verified; a server that checks none may not.
        if answer.get("ChecksumSHA256", checksum) != checksum:
            raise BlobStoreUnavailable(f"blob store stored other bytes under {key}")

    async def put(self, data: bytes | SpooledFile, digest: BlobHash | None = None) -> BlobHash:
        def upload() -> BlobHash:
            known = digest or sha256_hex(data)
            self._upload(known, data)
            return known

        return await _unavailable_on_error(upload)

    async def get(self, digest: BlobHash | str) -> bytes:
        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=self.key(digest))["Body"]
            with body:
                return bytes(body.read())

        return await _unavailable_on_error(read)

    async def open(self, digest: BlobHash | str) -> BlobReader | None:
        key = self.key(digest)

        def start() -> Any:
            try:
                return self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return None
                raise

        found = await _unavailable_on_error(start)
        if found is None:
            return None
        return BlobReader(int(found["ContentLength"]), _body_chunks(found["Body"]))

    def local_path(self, digest: BlobHash | str) -> Path | None:
        return None

    async def delete(self, digest: BlobHash | str) -> None:
        key = self.key(digest)
        await _unavailable_on_error(
            lambda: self._client.delete_object(Bucket=self.bucket, Key=key))

    def files_older_than(self, seconds: float) -> Iterator[str]:
        cutoff = time.time() - seconds
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    name = entry["Key"][len(self.prefix):]
                    digest = name.rpartition("/")[2]
                    if (name == f"{digest[:2]}/{digest[2:4]}/{digest}" and len(digest) == 64
                            and entry["LastModified"].timestamp() < cutoff):
                        yield digest
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreUnavailable(f"blob store: {exc}") from exc


async def _unavailable_on_error(work: Callable[[], T]) -> T:
    """Run blocking client ``work`` in a thread; its failures become
    ``BlobStoreUnavailable`` (so the message is answered 451 and retried)."""
    try:
        return await asyncio.to_thread(work)
    except (BotoCoreError, ClientError) as exc:
        raise BlobStoreUnavailable(f"blob store: {exc}") from exc


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await _unavailable_on_error(lambda: body.read(READ_CHUNK)):
            yield chunk
    finally:
        body.close()
