"""The document store backends beside the filesystem, and the fleet's choice among them.

- `PostgresDocumentStore`: PDFs in the fleet's PostgreSQL database (`document_blobs`);
- `S3DocumentStore`: PDFs in an S3-compatible bucket, configured by the AWS variables;
- `ActiveDocumentStore` (`open_document_store`): the store the database names for the
  fleet, which is what the producer, the worker and retention use;
- `move_documents`: `yfdocs documents move`, which copies, verifies and switches.

The interface and the promises every backend keeps are in `intake.storage`.
"""

from __future__ import annotations

from intake.stores.active import ActiveDocumentStore, StoreBuilder, open_document_store
from intake.stores.moving import MoveFailed, MoveRefused, MoveReport, move_documents
from intake.stores.postgres import PostgresDocumentStore
from intake.stores.s3 import S3DocumentStore, s3_client_from_environment
from intake.stores.streams import SLICE_BYTES, SlicedDocument, buffered

__all__ = [
    "SLICE_BYTES",
    "ActiveDocumentStore",
    "MoveFailed",
    "MoveRefused",
    "MoveReport",
    "PostgresDocumentStore",
    "S3DocumentStore",
    "SlicedDocument",
    "StoreBuilder",
    "buffered",
    "move_documents",
    "open_document_store",
    "s3_client_from_environment",
]
