"""What a worker process needs to do its work, built once per process from the settings."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from api_client import Timeouts, YouforceClient, parse_status_number_map
from config import Settings
from intake.storage import FilesystemDocumentStore
from messaging import JobPublisher
from models import make_engine, utcnow
from models.errors import Decision, YfdocsError
from scheduling.governor import DatabaseGovernor, governor_from_settings
from scheduling.policy.retry import RetryPolicy
from scheduling.poll_planner import PollPlanner
from scheduling.token_cache import DatabaseTokenCache

__all__ = ["MissingCredentials", "WorkerRuntime", "build_client", "process_owner"]


class MissingCredentials(YfdocsError):
    """The worker cannot call Youforce without a client id and secret."""

    decision = Decision.REFUSE


def process_owner() -> str:
    """A name for this process in leases: host and pid, unique across the fleet."""
    return f"{socket.gethostname()}:{os.getpid()}"


def build_governor(settings: Settings, engine: Engine, owner: str) -> DatabaseGovernor:
    """The fleet-wide governor; a slot is waited for only as long as the step's time allows
    (`config.budgets`: never past the step's last moment to start a call)."""
    return governor_from_settings(engine, settings, owner, max_wait=settings.time_budgets.slot_wait)


def build_client(
    settings: Settings, engine: Engine, governor: DatabaseGovernor | None = None
) -> YouforceClient:
    """A Youforce client that shares one token per tenant and one governor with the fleet."""
    if not settings.client_id or settings.client_secret is None:
        raise MissingCredentials("set YFDOCS_CLIENT_ID and YFDOCS_CLIENT_SECRET")
    return YouforceClient(
        governor=governor,
        api_url=settings.api_url,
        token_url=settings.token_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        token_cache=DatabaseTokenCache(
            engine,
            owner=process_owner(),
            lease_seconds=settings.time_budgets.token_fetch_lease,
            wait_timeout=settings.time_budgets.token_fetch_lease,
            require_grant=True,
        ),
        timeouts=Timeouts(connect=settings.connect_timeout, read=settings.read_timeout),
        status_number_map=parse_status_number_map(settings.status_number_map),
        token_refresh_margin=settings.token_refresh_margin,
        credentials_retry=settings.credentials_retry,
        plain_http_hosts=settings.plain_http_host_names,
    )


@dataclass
class WorkerRuntime:
    """The settings and the boundaries (database, API, broker, document store) of a worker."""

    settings: Settings
    engine: Engine
    client: YouforceClient
    publisher: JobPublisher
    store: FilesystemDocumentStore
    poll_planner: PollPlanner
    owner: str = field(default_factory=process_owner)
    clock: Callable[[], datetime] = utcnow
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_settings(cls, settings: Settings, publisher: JobPublisher) -> WorkerRuntime:
        engine = make_engine(settings.resolved_database_url)
        owner = process_owner()
        return cls(
            settings=settings,
            engine=engine,
            client=build_client(settings, engine, build_governor(settings, engine, owner)),
            owner=owner,
            publisher=publisher,
            store=FilesystemDocumentStore(settings.storage_dir),
            retry_policy=RetryPolicy(
                base_delay=settings.retry_base_delay,
                max_delay=settings.retry_max_delay,
                max_attempts=settings.retry_max_attempts,
            ),
            poll_planner=PollPlanner(
                engine, first_delay=settings.poll_first_delay, max_delay=settings.poll_max_delay
            ),
        )
