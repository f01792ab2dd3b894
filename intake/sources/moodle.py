"""Moodle, through the tool_trigger plugin's "HTTP POST" action step.

Stock Moodle posts nothing out; tool_trigger's workflow for `\\core\\event\\course_completed`
(after a user lookup step, which adds `user_email`, `user_idnumber`, ...) posts the fields
its administrator configures, form-encoded (or JSON), with static headers: the caller's
static secret goes in `X-Yfdocs-Secret` (no signature exists). tool_trigger counts only
its expected status (200 by default) as delivered, so the intake answers 200.

The fields read (configure the step to send these names):

    user_email=jan.devries%40example.nl&user_idnumber=191166&courseid=42
    &coursefullname=BHV+basis&timecompleted=1764511331
    &certificate_url=https%3A%2F%2Flms.example.nl%2Fadmin%2Ftool%2Fcertificate%2Fview.php%3Fcode%3D...

`relateduserid` (the learner: with cron-computed completion `userid` is not) and
`tenant_id`, `document_type`, `description` may be sent too. The key is the business key
(learner, course, timecompleted): the step runs again after a failure, and must not
deliver twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from intake.events import CompletionEvent, MalformedDelivery, business_key, completion_date

__all__ = ["SECRET_HEADER", "event_from_moodle"]

SOURCE = "moodle"
SECRET_HEADER = "X-Yfdocs-Secret"  # noqa: S105 (a header name)


def _field(fields: Mapping[str, str], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value.strip() or None


def event_from_moodle(
    fields: Mapping[str, str], *, tenant_id: str | None = None
) -> CompletionEvent:
    """The completion the posted fields report (a `tenant_id` field wins over the argument)."""
    course_id = _field(fields, "courseid")
    completed = _field(fields, "timecompleted")
    email = _field(fields, "user_email")
    idnumber = _field(fields, "user_idnumber")
    learner = _field(fields, "relateduserid") or idnumber or email
    if course_id is None or completed is None or learner is None:
        missing = (
            "courseid" if course_id is None else "timecompleted" if completed is None else None
        )
        raise MalformedDelivery(
            missing or "user_email",
            f"{missing or 'the learner'} is missing: send courseid, timecompleted, and "
            "user_email or user_idnumber",
        )
    return CompletionEvent(
        source=SOURCE,
        event_key=business_key("moodle", learner, course_id, completed),
        tenant_id=_field(fields, "tenant_id") or tenant_id,
        email=email,
        employee_number=idnumber,
        document_type=_field(fields, "document_type") or "certificate",
        description=_field(fields, "description"),
        valid_from=completion_date(completed, "timecompleted"),
        certificate_url=_field(fields, "certificate_url"),
        course_name=_field(fields, "coursefullname"),
    )
