"""Learner mapping in the producer: an e-mail or employee number becomes a personCode, or an
`unmatched` job that keeps its PDF and says why."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from intake.learners import match_learner
from intake.producer import EnqueueRequest, IdempotencyConflict
from intake.validation import EnqueueRejected
from models import JobEvent, JobState, utcnow
from models import jobs as job_table
from models.persons import PersonEntry, apply_person_changes
from tests.pdf_samples import make_pdf
from tests.plugins.producer_fixtures import TENANT, Producer


def seed(producer: Producer, *entries: PersonEntry, deletions: tuple[str, ...] = ()) -> None:
    apply_person_changes(
        producer.engine, TENANT, upserts=list(entries), deletions=list(deletions), now=utcnow()
    )


def person(code: str, *emails: str, kind: str = "Business") -> PersonEntry:
    return PersonEntry(code, code, tuple((email, kind) for email in emails), None)


def due_job_ids(producer: Producer) -> list[str]:
    """The jobs a dispatcher pass could send now."""
    now = utcnow()
    due = job_table.due_work(producer.engine, now=now, stale_before=now, per_tenant=100)
    return [job.job_id for job in due]


def learner_request(pdf: bytes, **learner: str) -> EnqueueRequest:
    return EnqueueRequest(
        document=pdf, person_code=None, document_type="certificate", source="intake", **learner
    )  # type: ignore[arg-type]


def test_an_email_matches_a_business_or_private_address_case_blind(producer: Producer) -> None:
    seed(producer, person("191166", "Jan.deVries@Example.nl"))
    seed(producer, person("191167", "sanne@example.net", kind="Private"))
    found = match_learner(
        producer.engine, TENANT, email="jan.devries@example.nl", employee_number=None
    )
    assert found.person_code == "191166"
    result = producer.enqueue(
        learner_request(make_pdf(text="a"), learner_email="mailto:SANNE@example.net")
    )
    assert result.job.state == JobState.QUEUED.value
    assert result.job.person_code == "191167"
    assert result.job.learner_email == "sanne@example.net"
    assert due_job_ids(producer) == [result.job.id]  # for the dispatcher, like any job


def test_an_employee_number_is_a_known_personcode(producer: Producer) -> None:
    seed(producer, person("191166", "jan@example.nl"))
    result = producer.enqueue(learner_request(make_pdf(text="b"), learner_employee_number="191166"))
    assert (result.job.state, result.job.person_code) == ("queued", "191166")


def test_an_unknown_learner_is_stored_unmatched_with_its_pdf_and_reason(
    producer: Producer,
) -> None:
    pdf = make_pdf(text="c")
    result = producer.enqueue(learner_request(pdf, learner_email="nobody@example.nl"))
    job = result.job
    assert job.state == JobState.UNMATCHED.value
    assert job.person_code == ""
    assert job.last_error is not None
    assert "no person with e-mail nobody@example.nl" in job.last_error
    assert "were not synced yet" in job.last_error
    assert producer.store.path(job.storage_key).read_bytes() == pdf
    assert due_job_ids(producer) == []  # nothing for the dispatcher until it is matched
    with Session(producer.engine) as session:
        events = session.exec(select(JobEvent).where(col(JobEvent.job_id) == job.id)).all()
    assert [(e.from_state, e.to_state) for e in events] == [(None, "unmatched")]
    assert "unmatched: no person" in events[0].reason


def test_an_address_two_persons_share_is_never_guessed(producer: Producer) -> None:
    seed(producer, person("1", "team@example.nl"), person("2", "team@example.nl"))
    result = producer.enqueue(learner_request(make_pdf(text="d"), learner_email="team@example.nl"))
    assert result.job.state == JobState.UNMATCHED.value
    assert result.job.last_error is not None
    assert "matches 2 persons" in result.job.last_error


def test_the_employee_number_goes_first_and_a_deleted_person_no_longer_matches(
    producer: Producer,
) -> None:
    seed(producer, person("1", "team@example.nl"), person("2", "team@example.nl"))
    found = match_learner(producer.engine, TENANT, email="team@example.nl", employee_number="2")
    assert found.person_code == "2"
    seed(producer, deletions=("2",))
    found = match_learner(producer.engine, TENANT, email="team@example.nl", employee_number="2")
    assert found.person_code == "1"


@pytest.mark.parametrize(
    ("learner", "field", "message"),
    [
        ({}, "person_code", "no learner"),
        ({"learner_email": "not an address"}, "email", "invalid e-mail"),
        ({"learner_email": "a@b.nl\x00"}, "email", "invalid e-mail"),
        ({"learner_employee_number": "../1"}, "employee_number", "invalid employee number"),
    ],
)
def test_a_bad_learner_is_refused_and_nothing_is_stored(
    producer: Producer, learner: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(EnqueueRejected) as refused:
        producer.enqueue(learner_request(make_pdf(text="e"), **learner))
    assert refused.value.field == field
    assert message in refused.value.message
    assert producer.job_count() == 0
    assert producer.stored_files() == []


def test_a_personcode_wins_and_the_learner_is_kept_for_the_record(producer: Producer) -> None:
    result = producer.enqueue(
        EnqueueRequest(
            document=make_pdf(text="f"),
            person_code="191166",
            document_type="certificate",
            learner_email="Jan@Example.nl",
        )
    )
    job = result.job
    assert (job.state, job.person_code, job.learner_email) == ("queued", "191166", "jan@example.nl")


def test_an_unmatched_event_sent_again_is_the_same_job_and_a_changed_learner_conflicts(
    producer: Producer,
) -> None:
    pdf = make_pdf(text="g")
    first = producer.enqueue(
        learner_request(pdf, learner_email="new@example.nl", idempotency_key="evt-1")
    )
    seed(producer, person("555001", "new@example.nl"))
    again = producer.enqueue(
        learner_request(pdf, learner_email="new@example.nl", idempotency_key="evt-1")
    )
    assert (again.job.id, again.created) == (first.job.id, False)
    with pytest.raises(IdempotencyConflict, match="learner"):
        producer.enqueue(
            learner_request(pdf, learner_email="other@example.nl", idempotency_key="evt-1")
        )


def test_unknown_learners_are_one_job_each_and_the_same_one_is_one_job_under_two_keys(
    producer: Producer,
) -> None:
    # The same PDF (a certificate without a name on it) for two learners nobody knows yet:
    # their content differs by the learner, though neither has a personCode.
    pdf = make_pdf(text="generic certificate")
    first = producer.enqueue(learner_request(pdf, learner_email="a@example.nl")).job
    other = producer.enqueue(learner_request(pdf, learner_email="b@example.nl")).job
    assert first.id != other.id
    assert (first.state, other.state) == ("unmatched", "unmatched")
    # The first learner's event again under a key of its own: the same job, noted.
    again = producer.enqueue(
        EnqueueRequest(
            document=pdf,
            person_code=None,
            learner_email="a@example.nl",
            document_type="certificate",
            idempotency_key="lms/evt-9",
            source="intake",
        )
    )
    assert (again.job.id, again.created) == (first.id, False)
    assert producer.job_count() == 2
    with Session(producer.engine) as session:
        notes = session.exec(select(JobEvent).where(col(JobEvent.job_id) == first.id)).all()
    assert "enqueued again by intake with key lms/evt-9" in notes[-1].reason
    # Once the learner is known, the same PDF is that person's content like any other.
    seed(producer, person("191166", "a@example.nl"))
    matched = producer.enqueue(learner_request(pdf, learner_employee_number="191166")).job
    assert (matched.state, matched.person_code) == ("queued", "191166")
    assert matched.id not in {first.id, other.id}
