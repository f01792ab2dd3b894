"""enqueue_document: nothing stored on refusal, idempotent, and the committed row is all:
the producer never needs the broker (the dispatcher publishes)."""

from __future__ import annotations

import re
import threading
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from intake.producer import EnqueueRequest, IdempotencyConflict, derived_idempotency_key
from intake.validation import EnqueueRejected
from models import JobEvent, JobState, Priority, UploadJob, utcnow
from tests.fake_publisher import FakePublisher
from tests.pdf_samples import (
    make_active_pdf,
    make_encrypted_pdf,
    make_owner_locked_pdf,
    make_pdf,
)
from tests.plugins.cli_fixtures import DEAD_BROKER
from tests.plugins.producer_fixtures import TENANT, Producer
from tests.unit.intake.test_validation import HOSTILE_PATHS, png_bytes
from worker.dispatcher import dispatch_once


def request(document: bytes | str | Path, **overrides: object) -> EnqueueRequest:
    values: dict[str, object] = {
        "document": document,
        "person_code": "P123",
        "document_type": "diploma",
    }
    values.update(overrides)
    return EnqueueRequest(**values)  # type: ignore[arg-type]


def test_enqueue_stores_and_inserts_and_publishes_nothing(
    producer: Producer, tmp_path: Path
) -> None:
    source = tmp_path / "First aid (2024).pdf"
    data = make_pdf(source, text="first aid")
    result = producer.enqueue(
        request(source, description="First aid", valid_from="2024-05-01", source="cli")
    )
    job = result.job
    assert result.created
    assert job.state == JobState.QUEUED.value
    assert job.tenant_id == TENANT
    assert job.file_name == "First aid (2024).pdf"
    assert job.valid_from == date(2024, 5, 1)
    assert job.size_bytes == len(data)
    assert job.priority == Priority.LIVE
    assert job.source == "cli"
    assert producer.store.path(job.storage_key).read_bytes() == data
    with Session(producer.engine) as session:
        stored = session.get(UploadJob, job.id)
        assert stored is not None
        assert stored.published_at is None, "the dispatcher publishes it"
        events = session.exec(select(JobEvent).where(col(JobEvent.job_id) == job.id)).all()
    assert [(e.from_state, e.to_state) for e in events] == [(None, "queued")]


def test_default_description_and_sanitised_name(producer: Producer) -> None:
    result = producer.enqueue(request(make_pdf(text="x"), file_name="Diplôma Jan?.pdf"))
    assert result.job.file_name == "Diploma Jan_.pdf"
    assert result.job.original_file_name == "Diplôma Jan?.pdf"
    assert result.job.description == "Diploma: Diploma Jan_"


BAD_INPUTS: list[tuple[str, dict[str, object], str]] = [
    ("not-a-pdf", {"document": b"hello world"}, "not a PDF"),
    ("png-renamed", {"document": png_bytes(), "file_name": "photo.pdf"}, "not a PDF"),
    ("truncated", {"document": make_pdf(text="t")[:300]}, r"truncated|damaged"),
    ("encrypted", {"document": make_encrypted_pdf()}, "encrypted"),
    ("empty", {"document": b""}, "the file is empty"),
    ("unknown-type", {"document_type": "passport"}, "unknown document type 'passport'"),
    ("bad-date-feb-30", {"valid_from": "2024-02-30"}, "no such calendar date"),
    ("bad-date-month-13", {"valid_from": "2024-13-01"}, "no such calendar date"),
    ("bad-date-word", {"valid_from": "yesterday"}, "expected a date as YYYY-MM-DD"),
    ("person-dotdot", {"person_code": "../x"}, "invalid personCode '../x'"),
    ("person-slash", {"person_code": "a/b"}, "invalid personCode 'a/b'"),
    ("person-query", {"person_code": "a?b"}, "invalid personCode 'a\\?b'"),
    ("person-hash", {"person_code": "a#b"}, "invalid personCode 'a#b'"),
    ("person-encoded", {"person_code": "%2e"}, "invalid personCode '%2e'"),
    ("empty-description", {"description": "  "}, "the description is empty"),
    ("long-description", {"description": "d" * 256}, "at most 255"),
    ("bad-tenant", {"tenant_id": "12/34"}, "invalid tenant id"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [pytest.param(o, m, id=i) for i, o, m in BAD_INPUTS],
)
def test_refused_input_stores_nothing(
    producer: Producer, overrides: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"document": make_pdf(text="good")}
    values.update(overrides)
    document = values.pop("document")
    assert isinstance(document, bytes)
    with pytest.raises(EnqueueRejected, match=message):
        producer.enqueue(request(document, **values))
    assert producer.stored_files() == []
    assert producer.job_count() == 0
    assert producer.event_count() == 0


def test_one_byte_over_the_limit_stores_nothing(producer: Producer, tmp_path: Path) -> None:
    source = tmp_path / "big.pdf"
    make_pdf(source, pad_to=4_000_001, text="big")
    with pytest.raises(EnqueueRejected, match="4,000,001 bytes"):
        producer.enqueue(request(source))
    assert producer.stored_files() == []
    assert producer.job_count() == 0


def test_exactly_the_limit_is_enqueued(producer: Producer, tmp_path: Path) -> None:
    source = tmp_path / "limit.pdf"
    make_pdf(source, pad_to=4_000_000, text="limit")
    assert producer.enqueue(request(source)).job.size_bytes == 4_000_000


def test_missing_tenant_is_refused(producer: Producer) -> None:
    producer.settings.tenant_id = None
    with pytest.raises(EnqueueRejected, match="no tenant id"):
        producer.enqueue(request(make_pdf(text="t")))
    assert producer.job_count() == 0


def test_same_document_twice_is_one_job(producer: Producer) -> None:
    data = make_pdf(text="twice")
    first = producer.enqueue(request(data))
    second = producer.enqueue(request(data, document_type="DIPLOMA", description="other words"))
    assert first.created
    assert not second.created
    assert second.job.id == first.job.id
    assert producer.job_count() == 1
    assert len(producer.stored_files()) == 1


def test_derived_key_separates_person_type_and_tenant(producer: Producer) -> None:
    data = make_pdf(text="shared")
    ids = {
        producer.enqueue(request(data)).job.id,
        producer.enqueue(request(data, person_code="P999")).job.id,
        producer.enqueue(request(data, document_type="certificate")).job.id,
        producer.enqueue(request(data, tenant_id="123")).job.id,
    }
    assert len(ids) == 4
    assert len(producer.stored_files()) == 1  # one copy of the bytes for all four


def history(producer: Producer, job_id: str) -> list[str]:
    with Session(producer.engine) as session:
        events = session.exec(
            select(JobEvent).where(col(JobEvent.job_id) == job_id).order_by(col(JobEvent.id))
        ).all()
    return [event.reason for event in events]


def test_caller_key_makes_it_the_same_job(producer: Producer) -> None:
    data = make_pdf(text="keyed")
    first = producer.enqueue(request(data, idempotency_key="lms-event-7"))
    again = producer.enqueue(request(data, idempotency_key="lms-event-7"))
    assert again.job.id == first.job.id
    assert not again.created
    assert first.job.idempotency_key == f"caller:{TENANT}:lms-event-7"
    assert history(producer, first.job.id) == ["enqueued by library"]  # a plain repeat


@pytest.mark.parametrize(
    ("first_key", "second_key", "words"),
    [
        (None, "lms-42", "with key lms-42"),
        ("lms-42", None, "without a key"),
        ("lms-41", "lms-42", "with key lms-42"),
    ],
    ids=["without-then-with", "with-then-without", "two-keys"],
)
def test_same_content_is_one_job_whatever_the_key(
    producer: Producer, first_key: str | None, second_key: str | None, words: str
) -> None:
    data = make_pdf(text="one certificate")
    first = producer.enqueue(request(data, idempotency_key=first_key, source="cli"))
    second = producer.enqueue(request(data, idempotency_key=second_key, source="backfill"))
    assert first.created
    assert not second.created
    assert second.job.id == first.job.id
    assert producer.job_count() == 1
    assert history(producer, first.job.id) == [
        "enqueued by cli",
        f"enqueued again by backfill {words}: same document",
    ]


def test_same_key_other_content_is_a_conflict(producer: Producer) -> None:
    first = producer.enqueue(request(make_pdf(text="one"), idempotency_key="evt-1"))
    with pytest.raises(IdempotencyConflict, match="'evt-1' is already used by job") as info:
        producer.enqueue(request(make_pdf(text="two"), idempotency_key="evt-1"))
    assert info.value.existing_job_id == first.job.id
    assert info.value.differences == ["PDF"]
    with pytest.raises(IdempotencyConflict, match="personCode"):
        producer.enqueue(request(make_pdf(text="one"), idempotency_key="evt-1", person_code="Q"))
    assert producer.job_count() == 1
    assert len(producer.stored_files()) == 1


@pytest.mark.parametrize(
    "keys",
    [[None] * 6, [None, "evt-1", None, "evt-2", "evt-1", None]],
    ids=["no-keys", "with-and-without-keys"],
)
def test_threads_racing_on_one_document_make_one_job(
    producer: Producer, keys: list[str | None]
) -> None:
    """Producers of one document at once: plain repeats, or an LMS event (keyed) beside a
    backfill (unkeyed)."""
    data = make_pdf(text="race")
    barrier = threading.Barrier(len(keys))
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def worker(key: str | None) -> None:
        try:
            barrier.wait()
            result = producer.enqueue(request(data, idempotency_key=key))
            results.append((result.job.id, result.created))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert producer.job_count() == 1


def _first_lookup_misses(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The key look-up before the insert misses once, as if another producer's insert
    had not yet committed."""
    import intake.producer as module

    real_existing = module._existing
    calls = {"n": 0}

    def first_lookup_misses(engine: object, document: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            return None
        return real_existing(engine, document)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "_existing", first_lookup_misses)
    return calls


def test_lost_race_on_the_same_document_reads_the_winner(
    producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_pdf(text="late")
    winner = producer.enqueue(request(data, idempotency_key="evt-9"))
    calls = _first_lookup_misses(monkeypatch)
    loser = producer.enqueue(request(data, idempotency_key="evt-9"))
    assert calls["n"] == 1  # the insert, under the content's lock, found the winner
    assert not loser.created
    assert loser.job.id == winner.job.id
    assert producer.job_count() == 1
    assert history(producer, winner.job.id) == ["enqueued by library"]


def test_lost_race_on_a_key_for_other_content_is_a_conflict(
    producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up misses, the insert hits the unique key: the look-up again names it."""
    winner = producer.enqueue(request(make_pdf(text="one"), idempotency_key="evt-1"))
    calls = _first_lookup_misses(monkeypatch)
    with pytest.raises(IdempotencyConflict) as info:
        producer.enqueue(request(make_pdf(text="two"), idempotency_key="evt-1"))
    assert calls["n"] == 2
    assert info.value.existing_job_id == winner.job.id
    assert producer.job_count() == 1


def test_enqueue_needs_no_broker_and_the_dispatcher_sends_the_job_once_it_is_back(
    producer: Producer,
) -> None:
    producer.settings.broker_url = DEAD_BROKER
    result = producer.enqueue(request(make_pdf(text="no broker needed")))
    assert result.created
    assert result.job.state == JobState.QUEUED.value
    assert result.job.published_at is None

    def one_pass(publisher: FakePublisher) -> bool:
        report = dispatch_once(
            producer.engine, producer.settings, publisher, owner="dispatcher:1", clock=utcnow
        )
        return report.broker_down

    dead = FakePublisher(down=True)
    assert one_pass(dead) is True
    assert dead.refused == 1
    with Session(producer.engine) as session:
        stored = session.get(UploadJob, result.job.id)
        assert stored is not None
        assert stored.state == JobState.QUEUED.value
        assert stored.published_at is None

    back = FakePublisher()
    assert one_pass(back) is False
    assert back.published == [result.job.id]
    with Session(producer.engine) as session:
        stored = session.get(UploadJob, result.job.id)
        assert stored is not None
        assert stored.published_at is not None


def test_backfill_priority_and_source(producer: Producer) -> None:
    result = producer.enqueue(
        request(make_pdf(text="old"), priority=Priority.BACKFILL, source="backfill")
    )
    assert result.job.priority == Priority.BACKFILL
    assert result.job.source == "backfill"


def test_unknown_source_is_a_programming_error(producer: Producer) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        producer.enqueue(request(make_pdf(text="s"), source="fax"))


def test_derived_key_is_stable() -> None:
    from api_client import DocumentType

    key = derived_idempotency_key("1", "P", DocumentType.DIPLOMA, "a" * 64)
    assert key == derived_idempotency_key("1", "P", DocumentType.DIPLOMA, "a" * 64)
    assert key != derived_idempotency_key("1", "P", DocumentType.CERTIFICATE, "a" * 64)
    assert key.startswith("derived:")
    assert len(key) <= 255


@pytest.mark.parametrize("case", sorted(HOSTILE_PATHS))
def test_hostile_paths_store_nothing(producer: Producer, tmp_path: Path, case: str) -> None:
    make, message = HOSTILE_PATHS[case]
    with pytest.raises(EnqueueRejected, match=re.escape(message)):
        producer.enqueue(request(make(tmp_path)))
    assert producer.stored_files() == []
    assert producer.job_count() == 0


def test_an_owner_locked_pdf_is_stored_as_it_is(producer: Producer) -> None:
    data = make_owner_locked_pdf(algorithm="AES-256")
    job = producer.enqueue(request(data)).job
    assert producer.store.path(job.storage_key).read_bytes() == data


def test_active_content_is_refused_by_default_and_allowed_by_the_setting(
    producer: Producer,
) -> None:
    data = make_active_pdf("open-action-javascript")
    with pytest.raises(EnqueueRejected, match=r"active content \(JavaScript\)"):
        producer.enqueue(request(data))
    assert producer.stored_files() == []
    assert producer.job_count() == 0
    producer.settings.pdf_active_content = "allow"
    assert producer.enqueue(request(data)).created


def test_a_repeat_under_another_key_stores_nothing(producer: Producer) -> None:
    """Its bytes may be gone already (retention deletes them after a finished job): a
    repeat must not store them again, where no job would ever delete them."""
    data = make_pdf(text="delivered long ago")
    first = producer.enqueue(request(data, idempotency_key="evt-1"))
    producer.store.delete(first.job.storage_key)
    again = producer.enqueue(request(data, idempotency_key="evt-2"))
    assert again.job.id == first.job.id
    assert producer.stored_files() == []
