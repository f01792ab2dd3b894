"""Learner mapping: the personCode for the e-mail address or employee number an LMS knows.

Youforce's uploads need a personCode; an LMS usually knows its learner by e-mail address
or employee number instead. Both are looked up in the tenant's persons, as the last
persons sync (`intake.person_sync`) stored them:

- an employee number matches the person with that personCode (the LMS's idnumber or SIS id
  is the HR number, which Youforce calls personCode); it is tried first, being exact;
- an e-mail address matches a person with that address, Business or Private (Private ones
  are there only when the app's scope includes GetPrivateContactDetails);
- an address shared by several persons is never guessed: the answer says how many matched.

A learner not matched is not refused: the producer stores the job `unmatched` with the
reason, and the next sync tries it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from models import persons as person_table

__all__ = ["LearnerMatch", "describe_learner", "match_learner"]


@dataclass(frozen=True)
class LearnerMatch:
    """The personCode found, or why none was: exactly one of the two is set."""

    person_code: str | None
    reason: str | None = None


def describe_learner(email: str | None, employee_number: str | None) -> str:
    """How a learner is named in a reason: `e-mail a@b.nl`, `employee number 191166`."""
    parts = []
    if employee_number is not None:
        parts.append(f"employee number {employee_number}")
    if email is not None:
        parts.append(f"e-mail {email}")
    return " or ".join(parts) or "no learner"


def match_learner(
    engine: Engine, tenant_id: str, *, email: str | None, employee_number: str | None
) -> LearnerMatch:
    """The one person these name in the tenant, or the reason there is not exactly one."""
    if employee_number is not None and person_table.person_code_known(
        engine, tenant_id, employee_number
    ):
        return LearnerMatch(person_code=employee_number)
    if email is not None:
        codes = person_table.person_codes_with_email(engine, tenant_id, email)
        if len(codes) == 1:
            return LearnerMatch(person_code=codes[0])
        if len(codes) > 1:
            return LearnerMatch(
                person_code=None,
                reason=f"e-mail {email} matches {len(codes)} persons of tenant {tenant_id}; "
                "a learner is never guessed (give the employee number)",
            )
    # Worded the same from one sync to the next, so a job's history gains a line only
    # when something changed.
    state = person_table.sync_state(engine, tenant_id)
    never = " (its persons were not synced yet)" if state is None else ""
    return LearnerMatch(
        person_code=None,
        reason=f"no person with {describe_learner(email, employee_number)} is known in tenant "
        f"{tenant_id}{never}; tried again after each persons sync",
    )
