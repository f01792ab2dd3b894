"""Jobs as JSON: the objects of `yfdocs status --json` and of the HTTP intake's answers.

Pure functions of a job row, in the intake room so that the intake and the command (which
imports this) agree on every field name. The shape of `job_to_dict` is a public interface
(DESIGN.md, `yfdocs status --json`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from models import JobEvent, Priority, UploadJob

__all__ = ["event_to_dict", "iso_timestamp", "job_to_dict"]


def iso_timestamp(value: datetime | date | None) -> str | None:
    """A time as ISO 8601 with `Z` for UTC, a date as `YYYY-MM-DD`; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _priority_name(value: int) -> str:
    try:
        return Priority(value).name.lower()
    except ValueError:
        return str(value)


def job_to_dict(job: UploadJob) -> dict[str, Any]:
    """A job as JSON: the fields DESIGN.md promises first, then what helps an operator."""
    return {
        "id": job.id,
        "state": job.state,
        "tenant_id": job.tenant_id,
        "person_code": job.person_code,
        "document_type": job.document_type,
        "ticket_id": job.ticket_id,
        "attempts": job.attempts,
        "error": job.last_error,
        "created_at": iso_timestamp(job.created_at),
        "updated_at": iso_timestamp(job.updated_at),
        "description": job.description,
        "valid_from": iso_timestamp(job.valid_from),
        "file_name": job.file_name,
        "original_file_name": job.original_file_name,
        "size_bytes": job.size_bytes,
        "sha256": job.sha256,
        "priority": _priority_name(job.priority),
        "source": job.source,
        # How the LMS named the learner, when it did not know the personCode.
        "learner_email": job.learner_email,
        "learner_employee_number": job.learner_employee_number,
        "idempotency_key": job.idempotency_key,
        "poll_count": job.poll_count,
        # Attempts whose upload may have reached Youforce although no ticket came back.
        "uncertain_deliveries": job.uncertain_deliveries,
        "last_http_status": job.last_http_status,
        "last_correlation_id": job.last_correlation_id,
        "published_at": iso_timestamp(job.published_at),
        "uploaded_at": iso_timestamp(job.uploaded_at),
        "next_poll_at": iso_timestamp(job.next_poll_at),
        "finished_at": iso_timestamp(job.finished_at),
    }


def event_to_dict(event: JobEvent) -> dict[str, Any]:
    """One line of a job's history as JSON."""
    return {
        "at": iso_timestamp(event.at),
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
        "attempt": event.attempt,
        "http_status": event.http_status,
        "correlation_id": event.correlation_id,
    }
