"""S3-compatible servers on loopback for the blob store's tests: moto's (in this process)
and s3rver (Node, installed by scripts/s3rver-for-tests.sh), two implementations."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.support.server import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key_id: str
    secret_access_key: str

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key,
                            config=Config(s3={"addressing_style": "path"}))


def s3rver_command() -> str:
    """The s3rver command: INBOXLOG_TEST_S3RVER, else installed by the script."""
    command = os.environ.get("INBOXLOG_TEST_S3RVER")
    if command:
        return command
    result = subprocess.run([str(ROOT / "scripts" / "s3rver-for-tests.sh")],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"could not install s3rver for the tests:\n{result.stderr}")
    os.environ["INBOXLOG_TEST_S3RVER"] = result.stdout.strip()
    return os.environ["INBOXLOG_TEST_S3RVER"]


@contextmanager
def running_s3(kind: str, *buckets: str) -> Iterator[S3Endpoint]:
    """A fresh server of ``kind`` ("moto" or "s3rver") with ``buckets`` made."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if kind == "moto":
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        endpoint = S3Endpoint(url, "testing", "testing")
        try:
            for bucket in buckets:
                endpoint.client().create_bucket(Bucket=bucket)
            yield endpoint
        finally:
            moto.stop()
        return
    with tempfile.TemporaryDirectory() as data:
        args = [s3rver_command(), "-a", "127.0.0.1", "-p", str(port), "-d", data, "-s"]
        for bucket in buckets:
            args += ["--configure-bucket", bucket]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        endpoint = S3Endpoint(url, "S3RVER", "S3RVER")
        try:
            _wait_ready(endpoint, process)
            yield endpoint
        finally:
            stop_process(process)


def _wait_ready(endpoint: S3Endpoint, process: subprocess.Popen[bytes]) -> None:
    client = endpoint.client()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("s3rver exited early")
        try:
            client.list_buckets()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("s3rver did not start in 20 s")
