"""An S3-compatible server on loopback for the recording store's tests: moto's, in a thread.

moto keeps its buckets in this process, not in the server: a server stopped and started again
on the same port (the store down, then back) still has them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.server import ThreadedMotoServer

from receptionist.recordings.stores import S3Store, s3_client
from tests.pg import free_port


@dataclass
class S3Double:
    port: int
    server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        return s3_client(
            endpoint_url=self.endpoint, region="us-east-1", access_key_id="test",
            secret_access_key="test", timeout_s=2.0,
        )  # fmt: skip

    def store(self, bucket: str) -> S3Store:
        client = self.client()
        with contextlib.suppress(Exception):  # moto keeps buckets across servers
            client.create_bucket(Bucket=bucket)
        return S3Store(client, bucket, prefix="calls")


@contextlib.contextmanager
def s3_double() -> Iterator[S3Double]:
    s3 = S3Double(free_port())
    s3.start()
    try:
        yield s3
    finally:
        s3.stop()
