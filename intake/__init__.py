"""Everything that turns a document handed in into a stored, queued job.

Validation (one function for every producer), the content-addressed document stores
(`intake.storage`: the interface and the filesystem; `intake.stores`: PostgreSQL, S3, the
store the database names for the fleet, and the move between stores), and the producer
itself (`enqueue_document`: validate -> store -> insert -> commit -> publish), which the
CLI, backfill, the demo and the HTTP intake all call.

May import: `models`, `config`, `messaging` (the publisher protocol), `scheduling`,
`api_client` for its document types, and boto3 for the S3 store. Never the worker or the
command; never celery.
"""

from __future__ import annotations
