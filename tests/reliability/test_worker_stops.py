"""`yfdocs worker` stops on SIGTERM to it or to its whole process group, and on SIGINT,
on every broker, and leaves no job held for its lease (issue: a worker that will not stop).

Before the fix, SIGTERM to the group killed the pool children where they waited for work,
and the main process then waited for ever at exit for the queue lock a dead child held:
5 of 8 tries hung on the embedded broker. Each repetition here is bounded; a worker that
does not exit within the bound fails the test (and is killed by it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest

from models import JobState
from tests.plugins.worker_fixtures import ServiceUnderTest, WorkerProcess

# An idle worker needs a few seconds for its warm shutdown (the embedded broker's loop
# wakes every two seconds); the bound is generous for a loaded machine. A hung worker
# never exits at all.
EXIT_BOUND_SECONDS = 30.0
BROKERS = [
    "filesystem",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("amqp", marks=pytest.mark.rabbitmq),
]


def _send(worker: WorkerProcess, how: str) -> None:
    if how == "term-group":
        os.killpg(worker.process.pid, signal.SIGTERM)
    elif how == "int-group":
        os.killpg(worker.process.pid, signal.SIGINT)
    else:
        worker.process.send_signal(signal.SIGTERM)


def _exits_in_time(workers: list[WorkerProcess]) -> list[str]:
    """Wait for every worker to exit within the bound; the ones that did not, by log tail."""
    deadline = time.monotonic() + EXIT_BOUND_SECONDS
    for worker in workers:
        remaining = max(0.1, deadline - time.monotonic())
        with contextlib.suppress(subprocess.TimeoutExpired):  # reported below, then killed
            worker.process.wait(timeout=remaining)
    hung = [_where_it_hangs(worker) for worker in workers if worker.process.poll() is None]
    for worker in workers:
        if worker.process.poll() is None:
            worker.kill()
    # The stop watchdog keeps the bound when a teardown sticks, and says so in the log; a
    # stop the watchdog had to end is a stuck one all the same, with its stacks to show.
    hung += [
        worker.log_tail(200)
        for worker in workers
        if "the warm shutdown has not ended" in worker.log_tail(400)
    ]
    return hung


def _where_it_hangs(worker: WorkerProcess) -> str:
    """The hung worker's processes and its main process's thread stacks (Celery prints
    them to the log on SIGUSR1), then its log's tail."""
    processes = subprocess.run(
        ["ps", "-o", "pid,ppid,stat,wchan:20,args", "-s", str(worker.process.pid)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    with contextlib.suppress(ProcessLookupError):
        worker.process.send_signal(signal.SIGUSR1)
    time.sleep(2.0)
    return f"{processes}\n{worker.log_tail(120)}"


def _wait_for_an_upload_in_flight(service: ServiceUnderTest) -> None:
    """Until the sandbox has an upload call open (not the token fetch before it: a step
    still waiting to call is handed back at once when the worker stops)."""
    service.wait_until(
        lambda: any(
            "/documents/" in entry.get("path", "") and entry.get("status") is None
            for entry in service.received()
        ),
        what="an upload to be in flight",
    )


def _stop_rounds(service: ServiceUnderTest, how: str, rounds: int, at_once: int) -> None:
    for _ in range(rounds):
        workers = [service.start_worker(beat=index == 0, concurrency=3) for index in range(at_once)]
        service.wait_until_ready(workers)
        time.sleep(1.0)  # the pool children settle into their wait for work
        for worker in workers:
            _send(worker, how)
        hung = _exits_in_time(workers)
        assert not hung, f"{len(hung)} of {at_once} workers did not stop by themselves:\n" + (
            "\n---\n".join(hung)
        )


def test_sigterm_to_the_whole_group_stops_the_worker_every_time_on_the_embedded_broker(
    service: ServiceUnderTest,
) -> None:
    # Ten repetitions, five workers at a time (the first with its embedded beat).
    _stop_rounds(service, "term-group", rounds=2, at_once=5)


# Every signal on every broker, twice (two workers at once); the embedded broker's group
# SIGTERM has its ten repetitions above.
SIGNAL_CASES = [
    pytest.param(broker, how, id=f"{broker}-{how}", marks=marks)
    for broker, marks in (
        ("filesystem", ()),
        ("redis", (pytest.mark.redis,)),
        ("amqp", (pytest.mark.rabbitmq,)),
    )
    for how in ("term-group", "term-process", "int-group")
    if (broker, how) != ("filesystem", "term-group")
]


@pytest.mark.parametrize(("broker", "how"), SIGNAL_CASES)
def test_each_signal_stops_the_worker_on_each_broker(
    service: ServiceUnderTest, broker: str, how: str
) -> None:
    _stop_rounds(service, how, rounds=1, at_once=2)


@pytest.mark.parametrize("broker", BROKERS)
def test_an_upload_in_flight_finishes_and_is_recorded_before_the_worker_exits(
    service: ServiceUnderTest,
) -> None:
    service.sandbox.patch_config({"faults": {"latency_s": 3.0}})
    worker = service.start_worker(beat=False)
    service.start_dispatcher()
    service.wait_until_ready([worker])
    job_id = service.enqueue()
    _wait_for_an_upload_in_flight(service)

    os.killpg(worker.process.pid, signal.SIGTERM)
    hung = _exits_in_time([worker])
    service.sandbox.patch_config({"faults": {"latency_s": 0.0}})

    assert not hung, hung
    job = service.job(job_id)
    assert job.job_state is JobState.POLLING, "the answer of the call in flight was recorded"
    assert job.ticket_id is not None
    assert job.lease_owner is None
    assert len(service.accepted_uploads()) == 1


def test_a_job_waiting_for_a_call_is_handed_back_at_once_when_the_worker_stops(
    service: ServiceUnderTest,
) -> None:
    # One call slot, held by a slow upload: the second job waits for it.
    service.configure(YFDOCS_MAX_CONCURRENCY="1")
    service.sandbox.patch_config({"faults": {"latency_s": 4.0}})
    worker = service.start_worker(beat=False, concurrency=2)
    service.start_dispatcher()
    service.wait_until_ready([worker])
    first = service.enqueue(title="first")
    second = service.enqueue(title="second")
    service.wait_until(
        lambda: {service.job(first).state, service.job(second).state} == {"uploading"},
        what="both jobs to be claimed, one waiting for the slot",
    )
    _wait_for_an_upload_in_flight(service)

    os.killpg(worker.process.pid, signal.SIGTERM)
    hung = _exits_in_time([worker])
    service.sandbox.patch_config({"faults": {"latency_s": 0.0}})

    assert not hung, hung
    jobs = {job_id: service.job(job_id) for job_id in (first, second)}
    assert all(job.lease_owner is None for job in jobs.values()), "no job waits for its lease"
    waited = [job for job in jobs.values() if job.job_state is JobState.QUEUED]
    assert len(waited) == 1, {job_id: job.state for job_id, job in jobs.items()}
    [handed_back] = waited
    assert handed_back.attempts == 0, "no call was made: not an attempt"
    reasons = [event.reason for event in service.events(handed_back.id)]
    assert any("the worker is stopping" in reason for reason in reasons), reasons
    assert handed_back.not_before is not None
    assert handed_back.not_before - handed_back.updated_at < timedelta(seconds=1)


@pytest.mark.parametrize("broker", BROKERS)
def test_a_stopping_worker_starts_no_new_step(service: ServiceUnderTest) -> None:
    """Work the dispatcher publishes while a worker finishes its last call (its warm
    shutdown) is left for another worker: not started, and so not left held for its lease
    when the pool closes."""
    service.sandbox.patch_config({"faults": {"latency_s": 3.0}})
    worker = service.start_worker(beat=False)
    service.start_dispatcher()
    service.wait_until_ready([worker])
    first = service.enqueue(title="first")
    _wait_for_an_upload_in_flight(service)

    os.killpg(worker.process.pid, signal.SIGTERM)
    later = service.enqueue(title="published during the warm shutdown")
    service.wait_until(
        lambda: service.job(later).published_at is not None or worker.process.poll() is not None,
        what="the dispatcher to publish the later job",
    )
    hung = _exits_in_time([worker])
    service.sandbox.patch_config({"faults": {"latency_s": 0.0}})

    assert not hung, hung
    assert service.job(first).job_state is JobState.POLLING
    job = service.job(later)
    assert job.lease_owner is None, (
        f"the stopping worker started {later} and left it held: {service.events(later)[-1].reason}"
    )
    assert job.attempts == 0
