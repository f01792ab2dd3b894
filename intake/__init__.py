"""Everything that turns a document handed in, or an LMS event, into a stored, queued job.

Validation (one function for every producer), the content-addressed document stores
(`intake.storage`: the interface and the filesystem; `intake.stores`: PostgreSQL, S3, the
store the database names for the fleet, and the move between stores), and the producer
itself (`enqueue_document`: validate -> store -> insert -> commit; the dispatcher
publishes), which the CLI, backfill, the demo and the HTTP intake all call. Around it, for
LMSs:

- `intake.http`: the FastAPI app `yfdocs intake` serves (it never publishes: a job it
  accepts is a committed row, which the dispatcher sends);
- `intake.sources`: one adapter per LMS format, each to one `intake.events.CompletionEvent`;
- `intake.callers`: the callers' keys; `intake.certificate_fetch`: certificates by URL;
- `intake.learners` and `intake.person_sync`: learner mapping from Youforce's persons.

May import: `models`, `config`, `messaging` (names and protocols), `scheduling`, and
`api_client` for its document types and HR readers; boto3 for the S3 store; FastAPI,
PyJWT, standardwebhooks, python-multipart and urllib3 for the HTTP side. Never the worker
or the command; never celery.
"""

from __future__ import annotations
