"""The S3 document store: PDFs as objects `<prefix>/ab/cd/<sha256>.pdf` in one bucket.

Any S3-compatible server (AWS, MinIO, Ceph RGW) through boto3. Where it is and who we are
come from the standard AWS variables only, never from yfdocs settings, so the store's
name (`s3://bucket/prefix`, stored in the database and printed) holds no secret:
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_DEFAULT_REGION or
AWS_REGION, and AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for a server that is not AWS (then
path-style addressing: `http://minio:9000/bucket/key`, which needs no DNS per bucket).
Without explicit keys, boto3's own chain (profiles, instance roles) applies.

A put asks for the object first (a document already stored is not sent again) and then
writes it with one PUT, which S3 makes visible only complete. The PUT carries the MD5 of
the bytes that were hashed for the key: should a file change between hashing and sending,
the server refuses it rather than store bytes its key does not name.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from intake.storage import DocumentMissing, sha256_of_key, source_digests, storage_key
from intake.stores.streams import SlicedDocument, buffered

__all__ = ["S3DocumentStore", "s3_client_from_environment"]

_ABSENT = {"404", "NoSuchKey", "NotFound"}


def s3_client_from_environment(
    environ: Mapping[str, str] | None = None,
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
) -> Any:
    """A boto3 S3 client configured by the standard AWS variables (of `environ`, by default
    this process's), with timeouts on every call."""
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    session = boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        region_name=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
    )
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": 3},
        s3={"addressing_style": "path"} if endpoint else {},
    )
    return session.client("s3", endpoint_url=endpoint, config=config)


def _absent(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _ABSENT


class S3DocumentStore:
    """PDFs in `bucket` under `prefix`, through `client` (boto3; thread-safe, one a process)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def __repr__(self) -> str:
        shown = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"S3DocumentStore({shown!r})"

    def object_key(self, key: str) -> str:
        """Where the document of `key` lives in the bucket; only the store's own keys."""
        sha256_of_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def check_bucket(self) -> None:
        """Raise unless the bucket is there and these credentials may use it (a HEAD on a
        missing object cannot tell a missing bucket from a missing key)."""
        self.client.head_bucket(Bucket=self.bucket)

    def _size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _absent(exc):
                return None
            raise
        return int(head["ContentLength"])

    def put(self, source: bytes | Path) -> str:
        (sha256, md5), size = source_digests(source, ("sha256", "md5"))
        key = storage_key(sha256.hex())
        if self._size(key) is not None:
            return key
        arguments = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "ContentLength": size,
            "ContentMD5": base64.b64encode(md5).decode("ascii"),
            "ContentType": "application/pdf",
        }
        if isinstance(source, bytes):
            self.client.put_object(Body=source, **arguments)
        else:
            with Path(source).open("rb") as handle:
                self.client.put_object(Body=handle, **arguments)
        return key

    def open(self, key: str) -> BinaryIO:
        size = self._size(key)
        if size is None:
            raise DocumentMissing.for_key(key)
        return buffered(_ObjectSlices(self, key, size))

    def exists(self, key: str) -> bool:
        return self._size(key) is not None

    def delete(self, key: str) -> bool:
        existed = self._size(key) is not None
        if existed:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        return existed


class _ObjectSlices(SlicedDocument):
    """One GET streamed in slices; a seek elsewhere (the 401 retry) starts a ranged GET
    there on the next read. The GET starts at the first read, not at `open`, so an upload
    that waits for an API slot keeps no idle connection to the object store meanwhile."""

    def __init__(self, store: S3DocumentStore, key: str, size: int) -> None:
        super().__init__(key, size)
        self._store = store
        self._body: Any = None
        self._body_at = 0

    def fetch(self, offset: int, length: int) -> bytes:
        if self._body is None or self._body_at != offset:
            self._drop_body()
            extra = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                answer = self._store.client.get_object(
                    Bucket=self._store.bucket, Key=self._store.object_key(self.key), **extra
                )
            except ClientError as exc:
                if _absent(exc):
                    raise DocumentMissing.for_key(self.key) from None
                raise
            self._body, self._body_at = answer["Body"], offset
        data: bytes = self._body.read(length)
        self._body_at += len(data)
        return data

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
