"""What a delivery task tells Flower: the document it carried, and whether the job ended badly.

An administrator asks Flower "did Jan's diploma arrive, and if not, why?". The messages
carry a job id and nothing else, so the answer has to come from the task's end:

- every upload and poll task returns a **result** that names what it delivered and where
  it stands: document type, personCode, tenant, ticket, the job's state and id, and the
  step's own words. Flower's search looks at results, so a person code finds that
  person's documents. Nothing in it is secret: the same fields `yfdocs status` shows.
- a step that moved its job to `failed` or `expired` ends its task as **FAILURE**, after
  the outcome is recorded: `JobFailed` or `JobExpired`, whose message is the job's last
  error, as `yfdocs status` gives it. The tasks declare them in `throws` (logged as
  expected, without a traceback) and never retry; with `acks_late`, Celery acknowledges
  a task that raised (`task_acks_on_failure`), so the message is not delivered again.
  Only a pool process that is lost hands its message back (`task_reject_on_worker_lost`),
  and this exception is raised after the outcome's commit, when nothing is left to lose.
- the result of a failed task travels on its `task-failed` event (`DeliveryRequest`),
  so the search finds a rejected document as well as a delivered one.
"""

from __future__ import annotations

from typing import Any

from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from models import JobState, UploadJob
from models import jobs as job_table
from worker.runtime import WorkerRuntime
from worker.step_runner import StepOutcome

__all__ = [
    "DELIVERY_TASK_OPTIONS",
    "DeliveryRequest",
    "JobExpired",
    "JobFailed",
    "JobNotDelivered",
    "delivery_result",
    "report",
]

DeliveryResult = dict[str, str | None]


class JobNotDelivered(Exception):
    """The step ended its job without delivering the document; `str()` is the reason.

    `result` is the task's result all the same (what was being delivered, and its state),
    for Flower's search; it crosses from the pool process to the worker with the exception.
    """

    def __init__(self, reason: str, result: DeliveryResult) -> None:
        super().__init__(reason, result)
        self.reason = reason
        self.result = result

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r})"


class JobFailed(JobNotDelivered):
    """The job is `failed`: Youforce rejected the document, or an error was permanent."""


class JobExpired(JobNotDelivered):
    """The job is `expired`: its ticket did not finish within the poll deadline."""


_ENDINGS: dict[JobState, type[JobNotDelivered]] = {
    JobState.FAILED: JobFailed,
    JobState.EXPIRED: JobExpired,
}


def delivery_result(outcome: StepOutcome, job: UploadJob | None) -> DeliveryResult:
    """The task's result: what the job delivers, where it stands, and what the step did."""
    if job is None:
        return {"job": outcome.job_id, "state": None, "step": outcome.action}
    # In the order an administrator reads them (Flower's list shows the beginning).
    return {
        "personCode": job.person_code,
        "documentType": job.document_type,
        "state": job.state,
        "tenant": job.tenant_id,
        "ticket": job.ticket_id,
        "job": job.id,
        "step": outcome.action,
    }


def report(rt: WorkerRuntime, outcome: StepOutcome) -> DeliveryResult:
    """The result of a delivery task, or `JobFailed`/`JobExpired` when its step ended the
    job so; called once the step's outcome is committed."""
    job = job_table.jobs_by_ids(rt.engine, [outcome.job_id]).get(outcome.job_id)
    result = delivery_result(outcome, job)
    ending = _ENDINGS.get(outcome.moved_to) if outcome.moved_to is not None else None
    if ending is not None:
        reason = (job.last_error if job is not None else None) or outcome.action
        raise ending(reason, result)
    return result


class DeliveryRequest(Request):  # type: ignore[misc]
    """Celery's request, with the result of a failed delivery on its `task-failed` event.

    Runs in the worker's main process, where the pool hands back the exception; Flower
    merges the event's fields into the task it shows.
    """

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> Any:
        exception = getattr(exc_info, "exception", None)
        exception = getattr(exception, "exc", exception)  # unwrap ExceptionWithTraceback
        self._delivery_result = exception.result if isinstance(exception, JobNotDelivered) else None
        return super().on_failure(
            exc_info, send_failed_event=send_failed_event, return_ok=return_ok
        )

    def send_event(self, type: str, **fields: Any) -> None:
        result = getattr(self, "_delivery_result", None)
        if type == "task-failed" and result is not None:
            fields.setdefault("result", saferepr(result))
        super().send_event(type, **fields)


# The options every delivery task (upload, poll) is registered with.
DELIVERY_TASK_OPTIONS: dict[str, Any] = {
    "Request": DeliveryRequest,
    "throws": (JobNotDelivered,),
    "max_retries": 0,
}
