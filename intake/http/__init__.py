"""The HTTP intake: a FastAPI app that turns LMS requests into jobs through the producer.

`create_app(services)` builds it; `yfdocs intake` runs it under uvicorn. It publishes
nothing: an accepted job is committed `queued` and the dispatcher sends it. Every route
ends in `intake.events.accept_event` (or reads jobs); the routes only authenticate, read
the body and choose the status code.
"""

from __future__ import annotations

from intake.http.app import create_app

__all__ = ["create_app"]
