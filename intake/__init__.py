"""Everything that turns a document handed in into a stored, queued job.

Validation (one function for every producer), the content-addressed document store, and
the producer itself (`enqueue_document`: validate -> store -> insert -> commit -> publish),
which the CLI, backfill, the demo and the HTTP intake all call.

May import: `models`, `config`, `messaging` (the publisher protocol), `scheduling`, and
`api_client` for its document types. Never the worker or the command; never celery.
"""

from __future__ import annotations
