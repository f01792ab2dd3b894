"""Jobs held back because the token endpoint refused the app's credentials.

A refusal is remembered in the token cache with a wait that doubles per refusal (see
`api_client.tokens`); the jobs that met it wait exactly until then (their `not_before` or
`next_poll_at` is the refusal's `refused_until`), and nothing fails or spends an attempt.
When a worker starts with other credentials than the refused ones, the operator has fixed
them: the refusal is forgotten and its jobs go at once, without waiting out the hours.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Engine

from api_client import credentials_fingerprint
from config import Settings
from models import jobs as job_table
from scheduling.token_cache import active_refusals, forget_refusal

__all__ = ["release_credential_holds"]

log = logging.getLogger(__name__)


def release_credential_holds(engine: Engine, settings: Settings, now: datetime) -> int:
    """Forget refusals of other credentials than the configured ones and release their
    jobs; returns how many jobs were released."""
    if not settings.client_id or settings.client_secret is None:
        return 0
    ours = credentials_fingerprint(settings.client_id, settings.client_secret.get_secret_value())
    released = 0
    for refusal in active_refusals(engine, now, other_than=ours):
        released += job_table.release_holds_until(
            engine,
            refusal.refused_until,
            now=now,
            note="a worker started with new credentials: no longer waiting for the "
            "token endpoint's refusal to lapse",
        )
        forget_refusal(engine, refusal.cache_key)
        log.warning("credentials changed: forgot the refusal for %s", refusal.cache_key)
    return released
