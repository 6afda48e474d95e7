"""Where recording files live: a local folder, or a bucket of an S3-compatible server.

Both behind ``RecordingStore``: keep a finished file under a key, read a byte range of it
(the console's player seeks with HTTP ranges), delete it. Nothing here logs a key's contents.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from control_plane.errors import RecordingStoreError
from control_plane.recordings.config import RecordingSettings

CHUNK_BYTES = 64 * 1024
CONTENT_TYPE = "audio/ogg"


class RecordingStore(Protocol):
    async def put(self, key: str, path: Path) -> None:
        """Keep the file at ``path`` under ``key`` (the file may be moved away)."""

    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (inclusive) of the file under ``key``."""

    async def delete(self, key: str) -> None:
        """Remove the file under ``key``; a missing one is not an error."""


class LocalStore:
    """Files in a folder, one per key (``<session id>.ogg``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        path = (self.folder / key).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise RecordingStoreError("recording key outside the recordings folder")
        return path

    async def put(self, key: str, path: Path) -> None:
        target = self._path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.move(path, target)
            target.chmod(0o600)

        try:
            await asyncio.to_thread(move)
        except OSError as e:
            raise RecordingStoreError(f"storing a recording failed: {e.strerror}") from e

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            f = await asyncio.to_thread(path.open, "rb")
        except OSError as e:
            raise RecordingStoreError(f"reading a recording failed: {e.strerror}") from e
        try:
            await asyncio.to_thread(f.seek, start)
            left = end - start + 1
            while left > 0:
                chunk = await asyncio.to_thread(f.read, min(CHUNK_BYTES, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._path(key).unlink, missing_ok=True)
        except OSError as e:
            raise RecordingStoreError(f"deleting a recording failed: {e.strerror}") from e


class S3Store:
    """Objects in a bucket of any S3-compatible server (boto3, calls run in threads).

    Args:
        client: A boto3 S3 client.
        bucket: The bucket; created on the first upload when it does not exist.
        prefix: Put before every key.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._bucket_checked = False

    @classmethod
    def from_settings(cls, settings: RecordingSettings) -> S3Store:
        import boto3
        from botocore.config import Config

        secret = settings.s3_secret_access_key
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        assert settings.s3_bucket is not None
        return cls(client, settings.s3_bucket, settings.s3_prefix)

    async def _call(self, what: str, fn: Any, /, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, **kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "error")
            raise RecordingStoreError(f"{what} failed: S3 answered {code}") from e
        except BotoCoreError as e:
            raise RecordingStoreError(f"{what} failed: {type(e).__name__}") from e

    async def _ensure_bucket(self) -> None:
        if self._bucket_checked:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self._bucket)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise RecordingStoreError("the recordings bucket cannot be used") from e
            await self._call(
                "creating the recordings bucket", self._client.create_bucket, Bucket=self._bucket
            )
        except BotoCoreError as e:
            raise RecordingStoreError(f"the recordings bucket: {type(e).__name__}") from e
        self._bucket_checked = True

    async def put(self, key: str, path: Path) -> None:
        await self._ensure_bucket()
        await self._call(
            "storing a recording",
            self._client.upload_file,
            Filename=str(path),
            Bucket=self._bucket,
            Key=self._prefix + key,
            ExtraArgs={"ContentType": CONTENT_TYPE},
        )
        path.unlink(missing_ok=True)

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        obj = await self._call(
            "reading a recording",
            self._client.get_object,
            Bucket=self._bucket,
            Key=self._prefix + key,
            Range=f"bytes={start}-{end}",
        )
        body = obj["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call(
            "deleting a recording",
            self._client.delete_object,
            Bucket=self._bucket,
            Key=self._prefix + key,
        )


def create_store(settings: RecordingSettings, database_url: str) -> RecordingStore:
    """The bucket when ``STIMM_RECORDINGS_S3_BUCKET`` is set, the local folder otherwise."""
    if settings.s3_bucket:
        return S3Store.from_settings(settings)
    return LocalStore(settings.folder(database_url))
