"""Where encoded recordings are kept: a local directory (default) or an S3-compatible bucket
(AWS S3, Supabase Storage, Cloudflare R2, MinIO...).

A store is synchronous (boto3 is) and small: put a file under a key, read a byte range, tell a
size, delete. Callers run it in a thread. Every failure is a `StoreError` with a short reason:
a store that is down or full is retried by the uploader, never seen by a call.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from receptionist.config import Settings

__all__ = ["LocalDirStore", "RecordingStore", "S3Store", "StoreError", "store_from_settings"]

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,300}")


class StoreError(Exception):
    """The store refused or could not be reached; `missing`: the object does not exist."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def check_key(key: str) -> str:
    """Keys are ours (tenant/date/call.ogg), but a row could be edited: never a path escape."""
    if not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise StoreError(f"bad recording key {key[:80]!r}", missing=True)
    return key


class RecordingStore(Protocol):
    name: str

    def put(self, key: str, path: Path, content_type: str) -> None: ...

    def size(self, key: str) -> int: ...

    def read(self, key: str, start: int, end: int) -> bytes:
        """Bytes `start` to `end` inclusive."""
        ...

    def delete(self, key: str) -> None:
        """Gone afterwards; a key already gone is not an error."""
        ...


class LocalDirStore:
    """Files under `root`, written whole then renamed: a reader never sees half a recording."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, path: Path, content_type: str) -> None:
        target = self._path(key)
        tmp = target.with_name(target.name + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            raise StoreError(("store full: " if full else "") + f"{exc}"[:300]) from exc

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise StoreError("no such recording", missing=True) from None
        except OSError as exc:
            raise StoreError(str(exc)[:300]) from exc

    def read(self, key: str, start: int, end: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                f.seek(start)
                return f.read(end - start + 1)
        except FileNotFoundError:
            raise StoreError("no such recording", missing=True) from None
        except OSError as exc:
            raise StoreError(str(exc)[:300]) from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(str(exc)[:300]) from exc


class S3Store:
    """A bucket behind the S3 API. `client`: a boto3 S3 client (timeouts and retries are set
    by `s3_client`: a store that hangs is an outage, not a stuck worker)."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, path: Path, content_type: str) -> None:
        with _s3_errors(), path.open("rb") as body:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=body, ContentType=content_type
            )

    def size(self, key: str) -> int:
        with _s3_errors():
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        return int(head["ContentLength"])

    def read(self, key: str, start: int, end: int) -> bytes:
        with _s3_errors():
            got = self.client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end}"
            )
            body = got["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def delete(self, key: str) -> None:
        with _s3_errors():
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


@contextlib.contextmanager
def _s3_errors() -> Iterator[None]:
    """botocore's errors as StoreError (botocore imported only when S3 is used)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        missing = code in ("404", "NoSuchKey", "NotFound")
        raise StoreError(f"S3 {code}: {exc}"[:300], missing=missing) from exc
    except (BotoCoreError, OSError) as exc:
        raise StoreError(f"S3 unreachable: {exc}"[:300]) from exc


def s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    timeout_s: float = 10.0,
) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 2, "mode": "standard"},
        # path-style works with every S3-compatible service (R2, Supabase, MinIO)
        s3={"addressing_style": "path"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or "auto",
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=config,
    )


def store_from_settings(settings: Settings) -> RecordingStore:
    if settings.recording_store == "s3":
        secret = settings.recording_s3_secret_access_key
        client = s3_client(
            endpoint_url=settings.recording_s3_endpoint_url,
            region=settings.recording_s3_region,
            access_key_id=settings.recording_s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
        assert settings.recording_s3_bucket  # the settings' validator insists
        return S3Store(client, settings.recording_s3_bucket, settings.recording_s3_prefix)
    return LocalDirStore(settings.recordings_dir)
