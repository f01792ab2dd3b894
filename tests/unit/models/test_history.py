"""change_state and friends: no state change without its event row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import (
    IllegalTransition,
    JobEvent,
    JobState,
    UploadJob,
    change_state,
    record_created,
    record_note,
    session_scope,
)


def _job(**overrides: object) -> UploadJob:
    values: dict[str, object] = {
        "tenant_id": "4028868",
        "person_code": "P1",
        "document_type": "diploma",
        "description": "Diploma",
        "file_name": "d.pdf",
        "original_file_name": "d.pdf",
        "size_bytes": 10,
        "sha256": "0" * 64,
        "storage_key": "00/00/" + "0" * 64 + ".pdf",
        "idempotency_key": "k-" + str(id(overrides)),
    }
    values.update(overrides)
    return UploadJob(**values)  # type: ignore[arg-type]


def _events(engine: Engine, job_id: str) -> list[JobEvent]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(JobEvent).where(col(JobEvent.job_id) == job_id).order_by(col(JobEvent.id))
            ).all()
        )


def test_created_then_changes_write_one_event_each(sqlite_engine: Engine) -> None:
    job = _job()
    with session_scope(sqlite_engine) as session:
        session.add(job)
        session.flush()
        record_created(session, job, reason="enqueued")
    with session_scope(sqlite_engine) as session:
        job = session.get(UploadJob, job.id)
        assert job is not None
        change_state(session, job, JobState.UPLOADING, reason="claimed")
        job.attempts = 1
        change_state(session, job, JobState.POLLING, reason="uploaded")
        record_note(session, job, reason="still in progress")
        change_state(
            session,
            job,
            JobState.FAILED,
            reason="rejected",
            http_status=400,
            correlation_id="corr-1",
            error="bad file",
        )
    events = _events(sqlite_engine, job.id)
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "queued"),
        ("queued", "uploading"),
        ("uploading", "polling"),
        ("polling", "polling"),
        ("polling", "failed"),
    ]
    assert events[-1].http_status == 400
    assert events[-1].correlation_id == "corr-1"
    assert events[-1].attempt == 1
    with Session(sqlite_engine) as session:
        stored = session.get(UploadJob, job.id)
        assert stored is not None
        assert stored.state == "failed"
        assert stored.finished_at is not None
        assert stored.finished_at.tzinfo is not None
        assert stored.last_error == "bad file"
        assert stored.last_http_status == 400


def test_finished_at_is_set_on_terminal_and_cleared_on_retry(sqlite_engine: Engine) -> None:
    job = _job(state=JobState.FAILED.value)
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with session_scope(sqlite_engine) as session:
        session.add(job)
        session.flush()
        change_state(session, job, JobState.QUEUED, reason="retry", now=now)
        assert job.finished_at is None
        change_state(session, job, JobState.FAILED, reason="refused", now=now, error="x")
        assert job.finished_at == now
    assert len(_events(sqlite_engine, job.id)) == 2


def test_illegal_change_writes_nothing(sqlite_engine: Engine) -> None:
    job = _job()
    with session_scope(sqlite_engine) as session:
        session.add(job)
    with session_scope(sqlite_engine) as session:
        loaded = session.get(UploadJob, job.id)
        assert loaded is not None
        with pytest.raises(IllegalTransition):
            change_state(session, loaded, JobState.COMPLETE, reason="skip ahead")
    assert _events(sqlite_engine, job.id) == []
    with Session(sqlite_engine) as session:
        loaded = session.get(UploadJob, job.id)
        assert loaded is not None
        assert loaded.state == "queued"


def test_success_clears_the_last_error(sqlite_engine: Engine) -> None:
    job = _job(state=JobState.UPLOADING.value, last_error="timeout", last_http_status=503)
    with session_scope(sqlite_engine) as session:
        session.add(job)
        session.flush()
        change_state(session, job, JobState.POLLING, reason="uploaded", now=datetime.now(UTC))
        assert job.last_error is None
        assert job.last_http_status is None
        assert job.updated_at > datetime.now(UTC) - timedelta(minutes=1)


def test_each_committed_change_of_state_is_one_log_line(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="yfdocs.jobs")
    job = _job(idempotency_key="log-1")
    with session_scope(sqlite_engine) as session:
        session.add(job)
        session.flush()
        record_created(session, job, reason="accepted")
        assert caplog.records == [], "nothing is logged before the commit"
    with session_scope(sqlite_engine) as session:
        job = session.get(UploadJob, job.id)
        assert job is not None
        job.attempts = 1
        change_state(
            session, job, JobState.UPLOADING, reason="upload attempt 1", correlation_id="c-9"
        )
        record_note(session, job, reason="a note is no change of state")

    lines = [record for record in caplog.records if record.name == "yfdocs.jobs"]
    assert [line.getMessage() for line in lines] == [
        f"job {job.id} queued (tenant 4028868, attempt 0, correlationId -): accepted",
        f"job {job.id} queued -> uploading (tenant 4028868, attempt 1, correlationId c-9): "
        "upload attempt 1",
    ]
    last = lines[-1]
    assert (last.job_id, last.tenant, last.state, last.from_state) == (  # type: ignore[attr-defined]
        job.id,
        "4028868",
        "uploading",
        "queued",
    )
    assert (last.attempt, last.correlation_id) == (1, "c-9")  # type: ignore[attr-defined]


def test_a_change_rolled_back_is_not_logged(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="yfdocs.jobs")
    job = _job(idempotency_key="log-2")
    with session_scope(sqlite_engine) as session:
        session.add(job)
    caplog.clear()

    def failing_step() -> None:
        with session_scope(sqlite_engine) as session:
            found = session.get(UploadJob, job.id)
            assert found is not None
            change_state(session, found, JobState.UPLOADING, reason="never committed")
            session.flush()
            raise RuntimeError("the step failed before its commit")

    with pytest.raises(RuntimeError):
        failing_step()
    with session_scope(sqlite_engine) as session:
        session.get(UploadJob, job.id)

    assert [record for record in caplog.records if record.name == "yfdocs.jobs"] == []
