"""Cost of one blob put and read, local store against the S3 store on s3rver (loopback).

Not part of ``make bench``: ``.venv/bin/python -m bench.s3_blob_store``. Client CPU is
this process's (s3rver runs in its own); wall times include s3rver's own work.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

from core.storage._s3 import S3BlobStore
from core.storage.blobs import BlobStore, LocalBlobStore
from tests.support.s3 import running_s3


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(store: BlobStore, size: int, count: int) -> tuple[float, float, float]:
    blobs = [os.urandom(size) for _ in range(count)]
    await store.put(os.urandom(size))  # warm-up: connection, first request
    wall, cpu = time.perf_counter(), _cpu()
    for blob in blobs:
        await store.put(blob)
    put_wall, put_cpu = (time.perf_counter() - wall) / count, (_cpu() - cpu) / count
    wall = time.perf_counter()
    for blob in blobs:
        reader = await store.open(hashlib.sha256(blob).hexdigest())
        assert reader is not None
        async for _ in reader.chunks:
            pass
    return put_wall * 1000, put_cpu * 1000, (time.perf_counter() - wall) / count * 1000


async def main() -> None:
    with tempfile.TemporaryDirectory() as data, running_s3("s3rver", "bench") as endpoint:
        stores: dict[str, BlobStore] = {
            "local": LocalBlobStore(Path(data) / "blobs"),
            "s3rver": S3BlobStore("s3://bench/blobs", Path(data) / "spool",
                                  endpoint_url=endpoint.url, region="us-east-1",
                                  access_key_id=endpoint.access_key_id,
                                  secret_access_key=endpoint.secret_access_key),
        }
        print("store    blob size  put ms  put client CPU ms  read ms")
        for size, count in ((4096, 200), (1024 * 1024, 20)):
            for name, store in stores.items():
                put_wall, put_cpu, read_wall = await _measure(store, size, count)
                print(f"{name:7} {size:>10} {put_wall:7.2f} {put_cpu:18.2f} {read_wall:8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
