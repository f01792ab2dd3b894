"""Which tasks Flower sees: the deliveries, never the housekeeping.

Flower builds its task list from the task events that publishers and workers send. A
sweep every few seconds would bury the uploads and polls an administrator looks for, so
a task named in `messaging.HOUSEKEEPING_TASKS` sends none, from either side:

- its workers send no `task-received`, `-started`, `-succeeded` or `-failed` event: the
  task's `send_events` is off, set by a Celery annotation (`housekeeping_annotations`), so
  a housekeeping task added later needs only its name in that set;
- its publisher (beat, or any process that sends it) sends no `task-sent` event:
  `QuietHousekeepingAMQP` drops it from the message it builds.

Worker heartbeats and the delivery tasks' events are untouched.
"""

from __future__ import annotations

from typing import Any

from celery.app.amqp import AMQP

from messaging import HOUSEKEEPING_TASKS

__all__ = ["QuietHousekeepingAMQP", "housekeeping_annotations"]


def housekeeping_annotations() -> dict[str, dict[str, Any]]:
    """`task_annotations` that turn task events off for every housekeeping task."""
    return {name: {"send_events": False} for name in sorted(HOUSEKEEPING_TASKS)}


class QuietHousekeepingAMQP(AMQP):  # type: ignore[misc]
    """Celery's message builder, without the `task-sent` event of a housekeeping task.

    `task_send_sent_event` is one setting for the whole app; the deliveries keep it (Flower
    then shows a task as soon as it is queued), the housekeeping tasks lose it here.
    """

    def as_task_v2(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        return _quiet(name, super().as_task_v2(task_id, name, *args, **kwargs))

    def as_task_v1(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        return _quiet(name, super().as_task_v1(task_id, name, *args, **kwargs))


def _quiet(name: str, message: Any) -> Any:
    """The message as built, without its sent event when the task is housekeeping."""
    if name in HOUSEKEEPING_TASKS and message.sent_event is not None:
        return message._replace(sent_event=None)
    return message
