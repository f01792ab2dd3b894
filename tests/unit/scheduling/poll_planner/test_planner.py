"""PollPlanner against a real SQLite database: the loader, per-tenant models and the cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from models import JobState, make_engine, migrate
from scheduling.policy.poll_plan import DurationObservation
from scheduling.poll_planner import COLD_START_REFRESH_SECONDS, PollPlanner, load_observations
from tests.plugins.dispatch_fixtures import add_job as add_job_row

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'planner.sqlite3'}")
    migrate(engine)
    yield engine
    engine.dispose()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def add_job(
    engine: Engine,
    tenant: str,
    *,
    n: int,
    uploaded: datetime,
    still_after: list[float],
    done_after: float | None,
    state: JobState = JobState.COMPLETE,
) -> None:
    """A job as poll_job leaves it: last seen in progress at max(still_after), done after."""
    add_job_row(
        engine,
        tenant=tenant,
        state=state,
        idempotency_key=f"{tenant}-{n}",
        uploaded_at=uploaded,
        last_in_progress_at=uploaded + timedelta(seconds=max(still_after)) if still_after else None,
        finished_at=uploaded + timedelta(seconds=done_after) if done_after is not None else None,
    )


def test_loader_reads_intervals_from_upload_last_in_progress_and_finish(engine: Engine) -> None:
    add_job(engine, "A", n=1, uploaded=T0, still_after=[], done_after=30)
    add_job(
        engine, "A", n=2, uploaded=T0 + timedelta(minutes=1), still_after=[20, 40], done_after=60
    )
    observations = load_observations(engine, "A", window=10)
    assert sorted(observations, key=lambda o: o.upper) == [
        DurationObservation(0, 30),
        DurationObservation(40, 60),
    ]


def test_loader_skips_jobs_not_complete(engine: Engine) -> None:
    add_job(
        engine, "A", n=1, uploaded=T0, still_after=[10], done_after=None, state=JobState.POLLING
    )
    add_job(engine, "A", n=2, uploaded=T0, still_after=[], done_after=50, state=JobState.FAILED)
    assert load_observations(engine, "A", window=10) == []


def test_loader_keeps_the_latest_window(engine: Engine) -> None:
    for n in range(5):
        add_job(
            engine, "A", n=n, uploaded=T0 + timedelta(minutes=n), still_after=[], done_after=10 + n
        )
    uppers = sorted(o.upper for o in load_observations(engine, "A", window=2))
    assert uppers == [13, 14]


def fill(engine: Engine, tenant: str, duration: float, count: int = 25) -> None:
    for n in range(count):
        add_job(
            engine,
            tenant,
            n=n,
            uploaded=T0 + timedelta(minutes=n),
            still_after=[duration - 1],
            done_after=duration,
        )


def planner(engine: Engine, clock: Clock) -> PollPlanner:
    return PollPlanner(engine, first_delay=30.0, max_delay=900.0, clock=clock)


def test_unknown_tenant_gets_the_settings_first_delay(engine: Engine) -> None:
    assert planner(engine, Clock()).delay_before_poll("A", 0, 0.0) == 30.0


def test_tenants_are_learned_separately(engine: Engine) -> None:
    fill(engine, "fast", 10.0)
    fill(engine, "slow", 200.0)
    p = planner(engine, Clock())
    assert p.delay_before_poll("fast", 0, 0.0) < 15 < 150 < p.delay_before_poll("slow", 0, 0.0)


def test_a_learned_model_is_cached_until_refresh(engine: Engine) -> None:
    clock = Clock()
    fill(engine, "A", 100.0)
    p = planner(engine, clock)
    assert p.model_for("A").count == 25
    add_job(engine, "A", n=100, uploaded=T0, still_after=[], done_after=50)
    clock.now += timedelta(seconds=59)
    assert p.model_for("A").count == 25
    clock.now += timedelta(seconds=1)
    assert p.model_for("A").count == 26


def test_a_tenant_still_learning_reloads_soon(engine: Engine) -> None:
    clock = Clock()
    p = planner(engine, clock)
    assert p.model_for("A").count == 0
    fill(engine, "A", 100.0)
    clock.now += timedelta(seconds=COLD_START_REFRESH_SECONDS - 1)
    assert p.model_for("A").count == 0
    clock.now += timedelta(seconds=1)
    assert p.model_for("A").count == 25


def test_model_reloads_after_refresh_seconds(engine: Engine) -> None:
    clock = Clock()
    p = planner(engine, clock)
    p.model_for("A")
    fill(engine, "A", 100.0)
    clock.now += timedelta(seconds=60)
    assert p.model_for("A").count == 25
