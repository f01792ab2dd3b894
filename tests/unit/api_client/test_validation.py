"""personCode, ticketId and filter checks: hostile inputs never reach the wire."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from api_client import InvalidRequestError
from api_client import validation as v

HOSTILE_PERSON_CODES = [
    "../x",
    "..",
    ".",
    "a/b",
    "a?b",
    "a#b",
    "%2e%2e",
    "%2F",
    "",
    " ",
    "a b",
    "a\tb",
    "a\nb",
    "a\x00b",
    "x" * 33,
    "ÄBC",
    "١٢٣",
    "a\\b",
    "a;b",
    "a:b",
    "191166\n",
    None,
    191166,
]


@pytest.mark.parametrize("code", HOSTILE_PERSON_CODES)
def test_hostile_person_codes_are_refused(code: object) -> None:
    with pytest.raises(InvalidRequestError, match="personCode"):
        v.validate_person_code(code)


@pytest.mark.parametrize("code", ["191166", "A-1_b.2", "x" * 32, "...", "a..b", "1"])
def test_good_person_codes(code: str) -> None:
    assert v.validate_person_code(code) == code


@pytest.mark.parametrize(
    "ticket",
    ["../x", "a/b", "a?b", "a#b", "%2e%2e", "", "x" * 65, "a.b", "a_b", "ü", "a b", "a\n"],
)
def test_hostile_ticket_ids_are_refused(ticket: str) -> None:
    with pytest.raises(InvalidRequestError, match="ticketId"):
        v.validate_ticket_id(ticket)


@pytest.mark.parametrize("ticket", ["7ca486f6-c730-4d50-a2ec-31a3a1373366", "T1", "x" * 64])
def test_good_ticket_ids(ticket: str) -> None:
    assert v.validate_ticket_id(ticket) == ticket


def test_quote_segment_leaves_no_separator() -> None:
    assert v.quote_segment("a/b?c#d%") == "a%2Fb%3Fc%23d%25"


@pytest.mark.parametrize("take", [0, -1, 1001, True, 1.0, "10", None])
def test_bad_take(take: object) -> None:
    with pytest.raises(InvalidRequestError, match="take"):
        v.validate_take(take)


@pytest.mark.parametrize("take", [1, 500, 1000])
def test_good_take(take: int) -> None:
    assert v.validate_take(take) == take


def test_datetime_format_is_utc_milliseconds() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert (
        v.format_api_datetime(datetime(2024, 3, 1, 1, 2, 3, 456789, tzinfo=plus2))
        == "2024-02-29T23:02:03.456Z"
    )
    assert v.format_api_datetime(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000Z"


def test_naive_datetime_and_dates_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="naive"):
        v.format_api_datetime(datetime(2024, 1, 1))
    with pytest.raises(InvalidRequestError, match="aware"):
        v.format_api_datetime(date(2024, 1, 1))


def test_changed_range_order() -> None:
    early = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidRequestError, match="later"):
        v.validate_changed_range(early + timedelta(days=1), early)
    assert v.validate_changed_range(early, None) == {"changedAfter": "2024-01-01T00:00:00.000Z"}


@pytest.mark.parametrize("name", ["a/b.pdf", 'x".pdf', "é.pdf", "", " ", "..", "a\r\n.pdf"])
def test_bad_filenames(name: str) -> None:
    with pytest.raises(InvalidRequestError, match="filename"):
        v.validate_filename(name)


def test_good_filename() -> None:
    assert v.validate_filename("Diploma (2024), final_v2-$.pdf")


def test_valid_from() -> None:
    assert v.validate_valid_from(date(2024, 1, 2)) == date(2024, 1, 2)
    assert v.validate_valid_from(None) is None
    with pytest.raises(InvalidRequestError):
        v.validate_valid_from(datetime(2024, 1, 2, tzinfo=UTC))
    with pytest.raises(InvalidRequestError):
        v.validate_valid_from("2024-01-02")


@pytest.mark.parametrize("record_id", ["191166 1 0", "CA-1", "x" * 64])
def test_good_record_ids(record_id: str) -> None:
    assert v.validate_record_id(record_id) == record_id


@pytest.mark.parametrize("record_id", [" a", "a ", "a/b", "..", "", "x" * 65, "a\tb", "a%20b"])
def test_bad_record_ids(record_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        v.validate_record_id(record_id)
