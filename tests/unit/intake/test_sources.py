"""The adapters' own rules, without a server: how each source names its learner, its
certificate and its key; the completion date; the one status function."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from intake.callers import CallerNotAuthenticated, TenantNotPermitted
from intake.events import (
    CompletionEvent,
    Ignored,
    MalformedDelivery,
    NoCertificate,
    completion_date,
    text_at,
)
from intake.http.errors import status_for
from intake.producer import IdempotencyConflict
from intake.sources.canvas import check_certificate_url_template, event_from_canvas
from intake.sources.moodle import event_from_moodle
from intake.sources.xapi import StatementsRequest, events_from_statements
from intake.validation import FileTooLarge, InvalidPersonCode, InvalidValidFrom
from models import utcnow
from models.jobs import JobNotFound
from scheduling.deferrals import CallDeferred


def canvas_event(**metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {"event_name": "course_completed", "user_id": "7", **metadata},
        "body": {
            "course": {"id": "42", "name": "BHV", "sis_source_id": "BHV-01"},
            "progress": {"completed_at": "2026-11-30T23:30:00-02:00"},
            "user": {"id": "7"},
        },
    }


def test_canvas_login_is_an_email_when_it_is_one_else_an_employee_number() -> None:
    template = "https://certs.example.nl/{course_sis_id}/{user_id}/{user_login}.pdf"
    as_email = event_from_canvas(
        canvas_event(user_login="jan@example.nl"), certificate_url_template=template
    )
    assert isinstance(as_email, CompletionEvent)
    assert (as_email.email, as_email.employee_number) == ("jan@example.nl", None)
    assert as_email.certificate_url == "https://certs.example.nl/BHV-01/7/jan%40example.nl.pdf"
    assert as_email.valid_from == date(2026, 12, 1)  # the completion's UTC date
    as_number = event_from_canvas(
        canvas_event(user_login="191166"), certificate_url_template=template
    )
    assert isinstance(as_number, CompletionEvent)
    assert (as_number.email, as_number.employee_number) == (None, "191166")
    sis = event_from_canvas(
        canvas_event(user_login="jan", user_sis_id="P-1"), certificate_url_template=template
    )
    assert isinstance(sis, CompletionEvent)
    assert sis.employee_number == "P-1"
    assert sis.event_key == as_number.event_key  # the same user, course and completion time


def test_canvas_templates_are_checked_at_start_and_filled_only_with_what_the_event_has() -> None:
    with pytest.raises(ValueError, match="https"):
        check_certificate_url_template("http://certs.example.nl/{user_id}")
    with pytest.raises(ValueError, match="user_email"):
        check_certificate_url_template("https://certs.example.nl/{user_email}")
    check_certificate_url_template("https://certs.example.nl/{course_id}/{user_sis_id}.pdf")
    with pytest.raises(NoCertificate, match="user_sis_id"):
        event_from_canvas(
            canvas_event(), certificate_url_template="https://c.example.nl/{user_sis_id}.pdf"
        )
    assert isinstance(
        event_from_canvas({"metadata": {"event_name": "x"}}, certificate_url_template=None), Ignored
    )


def test_moodle_keys_by_learner_course_and_time_and_prefers_relateduserid() -> None:
    fields = {"courseid": "42", "timecompleted": "1764511331", "user_idnumber": "191166"}
    first = event_from_moodle(fields)
    assert first.valid_from == date(2025, 11, 30)
    assert event_from_moodle(fields).event_key == first.event_key
    moved = event_from_moodle({**fields, "timecompleted": "1764511332"})
    assert moved.event_key != first.event_key
    other_user = event_from_moodle({**fields, "relateduserid": "9"})
    assert other_user.event_key != first.event_key
    assert event_from_moodle(fields, tenant_id="1").tenant_id == "1"
    assert event_from_moodle({**fields, "tenant_id": "2"}, tenant_id="1").tenant_id == "2"


def test_xapi_statements_without_an_id_get_a_key_from_their_content() -> None:
    statement = {
        "actor": {"mbox": "mailto:jan@example.nl"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/passed"},
        "attachments": [{"contentType": "application/pdf", "sha2": "a" * 64}],
    }
    request = StatementsRequest([statement], {"a" * 64: b"%PDF-"})
    (first,) = events_from_statements(request, certificate_usage_type="urn:x")
    (second,) = events_from_statements(request, certificate_usage_type="urn:x")
    assert isinstance(first, CompletionEvent)
    assert isinstance(second, CompletionEvent)
    assert first.event_key == second.event_key
    assert first.event_key is not None
    assert first.event_key.startswith("xapi:")
    assert first.pdf == b"%PDF-"


def test_completion_dates_and_text_fields() -> None:
    assert completion_date("2026-11-30T14:02:11.000Z", "t") == date(2026, 11, 30)
    assert completion_date(1764511331, "t") == date(2025, 11, 30)
    assert completion_date(None, "t") is None
    for bad in ("soon", "9" * 30):
        with pytest.raises(InvalidValidFrom):
            completion_date(bad, "t")
    assert text_at({"a": {"b": 12}}, "a", "b") == "12"
    assert text_at({"a": None}, "a", "b") is None
    with pytest.raises(MalformedDelivery, match="a must be a JSON object"):
        text_at({"a": [1]}, "a", "b")
    with pytest.raises(MalformedDelivery, match="must be text"):
        text_at({"a": {"b": True}}, "a", "b")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (CallerNotAuthenticated("no key"), 401),
        (TenantNotPermitted("tenant_id", "not yours"), 403),
        (IdempotencyConflict("k", "job", ["PDF"]), 409),
        (FileTooLarge("file", "big"), 413),
        (MalformedDelivery("body", "not JSON"), 400),
        (InvalidPersonCode("person_code", "bad"), 422),
        (JobNotFound("no job"), 422),
        (CallDeferred(utcnow(), "quota"), 503),
    ],
)
def test_one_function_picks_the_status(error: Exception, status: int) -> None:
    assert status_for(error) == status  # type: ignore[arg-type]
