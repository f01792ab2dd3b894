"""Where the fleet keeps stored PDFs: the value of `YFDOCS_DOCUMENT_STORE`, parsed.

Three kinds, one spelling each, so that the same text can name a store in the settings, in
the database (the row `yfdocs documents move` writes) and on the command line:

- `filesystem`: the data dir of each process (`<YFDOCS_DATA_DIR>/documents`); the embedded
  default, and for a fleet only on a folder every host mounts;
- `postgres`: the `document_blobs` table in the database the fleet already shares; at most
  `POSTGRES_MAX_DOCUMENT_BYTES` a document;
- `s3://bucket/prefix`: an S3-compatible object store; endpoint, region and credentials
  come from the standard AWS variables, never from this text (it is stored and printed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["POSTGRES_MAX_DOCUMENT_BYTES", "StoreKind", "StoreLocation"]

StoreKind = Literal["filesystem", "postgres", "s3"]

# One bytea value is read and written whole by the driver: keep it small (4 MiB), which is
# above the API's own limit (YFDOCS_MAX_FILE_BYTES, 4,000,000 by default).
POSTGRES_MAX_DOCUMENT_BYTES = 4 * 1024 * 1024

# S3's rules for bucket names: 3 to 63 lowercase letters, digits, dots and hyphens,
# beginning and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9!_.*'()-]+")


@dataclass(frozen=True)
class StoreLocation:
    """One document store, by kind; `bucket` and `prefix` only for S3."""

    kind: StoreKind
    bucket: str = ""
    prefix: str = ""

    def __str__(self) -> str:
        if self.kind != "s3":
            return self.kind
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @classmethod
    def parse(cls, text: str) -> StoreLocation:
        """The location `text` names; ValueError with one line saying what is accepted."""
        value = text.strip()
        if value in ("filesystem", "postgres"):
            return cls(value)  # type: ignore[arg-type]  # narrowed by the test above
        if not value.startswith("s3://"):
            raise ValueError(
                f"{text!r} is not a document store: use filesystem, postgres or s3://bucket/prefix"
            )
        bucket, _, prefix = value.removeprefix("s3://").partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ValueError(
                f"{text!r}: {bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, "
                "digits, dots and hyphens)"
            )
        prefix = prefix.strip("/")
        parts = prefix.split("/") if prefix else []
        if any(part in (".", "..") or not _PREFIX_PART.fullmatch(part) for part in parts):
            raise ValueError(
                f"{text!r}: the prefix must be folder names of letters, digits and !_.*'()- "
                "separated by single slashes"
            )
        return cls("s3", bucket=bucket, prefix=prefix)
