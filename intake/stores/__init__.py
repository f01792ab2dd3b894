"""The document store backends beside the filesystem, and the fleet's choice among them.

- `PostgresDocumentStore`: PDFs in the fleet's PostgreSQL database (`document_blobs`);
- `S3DocumentStore`: PDFs in an S3-compatible bucket, configured by the AWS variables;

The interface and the promises every backend keeps are in `intake.storage`.
"""

from __future__ import annotations

from intake.stores.postgres import PostgresDocumentStore
from intake.stores.s3 import S3DocumentStore, s3_client_from_environment
from intake.stores.streams import SLICE_BYTES, SlicedDocument, buffered

__all__ = [
    "SLICE_BYTES",
    "PostgresDocumentStore",
    "S3DocumentStore",
    "SlicedDocument",
    "buffered",
    "s3_client_from_environment",
]
