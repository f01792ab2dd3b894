"""Flower, as an administrator sees it: a real headless Chromium against `yfdocs flower`.

Flower's task table is filled by JavaScript after the page loads, so only a browser shows
what an administrator sees. The pages must show the yfdocs tasks with their job ids and
never a secret: not the client secret, not Flower's own password, not a bearer token.

And Flower must answer "did this person's document arrive, and if not, why?": a search by
person code finds the delivered and the rejected document, the rejected one as FAILURE with
the job's reason, housekeeping stays out of the list, and a visitor without credentials
gets a 401 on every route. A screenshot of the search is kept (YFDOCS_TEST_ARTEFACTS, or
a folder in the temp dir; the test prints where).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import Session, select

from messaging import POLL_TASK, QUEUE_NAME, SWEEP_TASK, UPLOAD_TASK
from models import TokenCacheEntry
from sandbox import DEFAULT_CLIENT_SECRET
from tests.plugins.browser import HeadlessChromium, chromium_path
from tests.plugins.flower import FlowerProcess, running_flower
from tests.plugins.leaks import find_leaks
from tests.plugins.worker_fixtures import ServiceUnderTest, private_rabbitmq_vhost

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture
def chromium() -> str:
    return chromium_path()


@pytest.fixture
def flower(service: ServiceUnderTest) -> Iterator[FlowerProcess]:
    with running_flower(service) as running:
        yield running


TASK_SEARCH_BOX = "#tasks-table_filter input"
TASK_ROWS = """Array.from(document.querySelectorAll('#tasks-table tbody tr')).map(row => ({
    text: row.innerText,
    uuid: (row.querySelector('a[href*="/task/"]') || {}).title || null,
}))"""
TASK_TABLE_INFO = "(document.querySelector('#tasks-table_info') || {}).innerText || ''"
TASK_ARGS = """Array.from(document.querySelectorAll('dt'))
    .filter(dt => dt.textContent.trim() == 'Arguments')
    .map(dt => dt.nextElementSibling.textContent).join(' ')"""


def task_rows(browser: HeadlessChromium) -> list[dict[str, str]]:
    return list(browser.evaluate(TASK_ROWS))


def shows_upload_and_polls(browser: HeadlessChromium, job_id: str) -> bool:
    """The table shows this search's answer: the job's upload and poll tasks, both kinds.

    A task id begins with its job id, which tells this search's rows from a previous
    search's (the table may still show those while the new one is under way).
    """
    if "filtered from" not in browser.evaluate(TASK_TABLE_INFO):
        return False
    rows = task_rows(browser)
    names = {name for row in rows for name in (UPLOAD_TASK, POLL_TASK) if name in row["text"]}
    every_row_is_the_jobs = all(
        row["uuid"]
        and row["uuid"].startswith(f"{job_id}.")
        and (UPLOAD_TASK in row["text"] or POLL_TASK in row["text"])
        for row in rows
    )
    return every_row_is_the_jobs and names == {UPLOAD_TASK, POLL_TASK}


def bearer_tokens(service: ServiceUnderTest) -> list[str]:
    """The access tokens the workers hold in the fleet's token cache."""
    with Session(service.engine) as session:
        entries = session.exec(select(TokenCacheEntry)).all()
    return [entry.access_token for entry in entries if entry.access_token]


def test_flower_shows_the_tasks_with_job_ids_and_no_secret(
    chromium: str, service: ServiceUnderTest, flower: FlowerProcess
) -> None:
    service.start_worker()
    worker_name = flower.wait_for_worker(f"test-0-{os.getpid()}@")
    job_ids = [service.enqueue(), service.enqueue(document_type="diploma")]
    jobs = service.wait_for_end(job_ids)
    assert {job.state for job in jobs.values()} == {"complete"}
    tokens = bearer_tokens(service)
    assert tokens, "the workers fetched a token, so there is one to look for"
    forbidden = {
        "client secret": DEFAULT_CLIENT_SECRET,
        "flower password": flower.password,
        **{f"bearer token {n}": token for n, token in enumerate(tokens)},
    }

    # Flower's own trap, closed: the health check and the metrics want credentials too.
    for path in ("/healthcheck", "/metrics", "/tasks"):
        assert flower.get(path, auth=False).status_code == 401, path

    with HeadlessChromium(chromium) as browser:
        assert browser.navigate(f"{flower.url}/tasks").status == 401

        browser.use_basic_auth(*flower.auth)
        pages: dict[str, str] = {}
        for job_id in job_ids:
            # What an administrator does to find one document's tasks: search by argument.
            assert browser.navigate(f"{flower.url}/tasks").status == 200
            browser.type_into(TASK_SEARCH_BOX, f"args:{job_id}")
            browser.wait_for(
                functools.partial(shows_upload_and_polls, browser, job_id),
                what=f"the tasks of job {job_id}",
            )
            pages[f"tasks of {job_id}"] = browser.page_source()
            for row in task_rows(browser):
                assert browser.navigate(f"{flower.url}/task/{row['uuid']}").status == 200
                assert job_id in browser.evaluate(TASK_ARGS), "the job id is the argument"
                pages[f"task {row['uuid']}"] = browser.page_source()

        worker_url = f"{flower.url}/worker/{quote(worker_name, safe='')}"
        assert browser.navigate(worker_url).status == 200
        browser.wait_for(
            lambda: "task_acks_late" in browser.page_source(), what="the worker's config"
        )
        worker_page = browser.page_source()

    pages["worker"] = worker_page
    assert len(pages) >= 2 * 3 + 1, "two tasks pages, an upload and a poll per job, the worker"
    assert find_leaks(pages, forbidden) == []
    assert all("Bearer " not in source for source in pages.values())


# -- an administrator's questions ---------------------------------------------------------

ARTEFACTS_ENV = "YFDOCS_TEST_ARTEFACTS"
REJECTED_PERSON = "900001"  # the sandbox's person whose personnel file refuses documents
DELIVERED_PERSON = "191166"
# Every kind of route Flower has: pages, its API, static files, metrics, health, a 404.
ROUTES = (
    "/",
    "/workers",
    "/tasks",
    "/tasks/datatable",
    "/broker",
    "/task/anything",
    "/api/workers",
    "/api/tasks",
    "/metrics",
    "/healthcheck",
    "/static/css/flower.css",
    "/login",
    "/no-such-page",
)
# textContent, not innerText: the layout breaks long names across lines.
WORKER_ROWS = """Array.from(document.querySelectorAll('#workers-table tbody tr'))
    .map(row => row.textContent)"""
QUEUE_ROWS = """Array.from(document.querySelectorAll('#queue-table tbody tr'))
    .map(row => row.textContent)"""
FOUND_ROWS = """Array.from(document.querySelectorAll('#tasks-table tbody tr')).map(row => ({
    text: row.textContent,
    uuid: (row.querySelector('a[href*="/task/"]') || {}).title || null,
}))"""


def artefact_folder() -> Path:
    """Where screenshots are kept: YFDOCS_TEST_ARTEFACTS, or a folder in the temp dir."""
    configured = os.environ.get(ARTEFACTS_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "yfdocs-artefacts"


def searched(browser: HeadlessChromium, text: str) -> list[dict[str, str]]:
    """The task rows this search found, once the table shows its answer."""
    browser.type_into(TASK_SEARCH_BOX, text)

    def rows() -> list[dict[str, str]]:
        return list(browser.evaluate(FOUND_ROWS))

    def answered() -> bool:
        info = str(browser.evaluate(TASK_TABLE_INFO))
        if "filtered from" not in info:
            return False
        if info.startswith(("Showing 0 to 0", "No tasks")):
            return True
        found = rows()
        return bool(found) and all(text in row["text"] for row in found)

    browser.wait_for(answered, what=f"the tasks matching {text!r}")
    return [row for row in rows() if row["uuid"]]


# On RabbitMQ in a virtual host of the test's own (the `service` fixture starts on the
# embedded broker): other runs on the same server never show up in this Flower.
@pytest.mark.parametrize(
    "broker_kind", ["filesystem", pytest.param("amqp", marks=pytest.mark.rabbitmq)]
)
def test_an_administrator_finds_a_persons_documents_and_why_one_failed(
    chromium: str, service: ServiceUnderTest, broker_kind: str, record_property: Any
) -> None:
    with contextlib.ExitStack() as stack:
        extra = {}
        if broker_kind == "amqp":
            broker_url, api_url = stack.enter_context(private_rabbitmq_vhost())
            service.use_broker(broker_url)
            extra["YFDOCS_FLOWER_BROKER_API"] = api_url
        flower = stack.enter_context(running_flower(service, **extra))
        stack.callback(service.close)  # the workers stop before their virtual host goes
        administrator_session(chromium, service, flower, broker_kind, record_property)


def administrator_session(
    chromium: str,
    service: ServiceUnderTest,
    flower: FlowerProcess,
    broker: str,
    record_property: Any,
) -> None:
    """What the administrator does and sees, on the service's broker."""
    for route in ROUTES:
        answer = flower.get(route, auth=False)
        assert answer.status_code == 401, route
        assert flower.password not in answer.text
    worker = service.start_worker()
    worker_name = flower.wait_for_worker(f"test-0-{os.getpid()}@")
    delivered = service.enqueue(DELIVERED_PERSON, "diploma")
    rejected = service.enqueue(REJECTED_PERSON, "certificate")
    jobs = service.wait_for_end([delivered, rejected])
    assert (jobs[delivered].state, jobs[rejected].state) == ("complete", "failed")
    reason = jobs[rejected].last_error
    assert reason is not None
    assert "Youforce rejected the document" in reason

    with HeadlessChromium(chromium) as browser:
        # A visitor without credentials gets nothing, pages and metrics alike.
        for route in ("/", "/tasks", "/metrics", "/healthcheck"):
            assert browser.navigate(f"{flower.url}{route}").status == 401, route
            assert worker_name not in browser.page_source()

        browser.use_basic_auth(*flower.auth)
        assert browser.navigate(f"{flower.url}/workers").status == 200
        browser.wait_for(
            lambda: any(
                worker_name in row and "Online" in row for row in browser.evaluate(WORKER_ROWS)
            ),
            what=f"{worker_name} online",
        )

        assert browser.navigate(f"{flower.url}/tasks").status == 200
        found = searched(browser, DELIVERED_PERSON)
        assert {UPLOAD_TASK, POLL_TASK} <= {
            name for row in found for name in (UPLOAD_TASK, POLL_TASK) if name in row["text"]
        }
        assert any("SUCCESS" in row["text"] and "'complete'" in row["text"] for row in found)

        # Flower receives the poll task's failure a moment after the job is recorded.
        browser.wait_for(
            lambda: any("FAILURE" in row["text"] for row in searched(browser, REJECTED_PERSON)),
            what="the rejected document's FAILURE",
            timeout=20,
        )
        found = searched(browser, REJECTED_PERSON)
        assert all(row["uuid"].startswith(f"{rejected}.") for row in found)
        (failure,) = [row for row in found if "FAILURE" in row["text"]]
        assert "JobFailed" in failure["text"]
        screenshot = browser.screenshot(artefact_folder() / f"flower-{broker}-rejected.png")
        record_property("screenshot", str(screenshot))
        print(f"screenshot of Flower's search for {REJECTED_PERSON}: {screenshot}")

        assert browser.navigate(f"{flower.url}/task/{failure['uuid']}").status == 200
        page = str(browser.evaluate("document.body.textContent"))
        assert "FAILURE" in page
        assert reason in page, "the exception's message is the job's last error"
        assert f"'personCode': '{REJECTED_PERSON}'" in page, "the result names the document"

        assert browser.navigate(f"{flower.url}/tasks").status == 200
        assert searched(browser, SWEEP_TASK) == [], "housekeeping is not shown"
        if broker == "amqp":
            assert browser.navigate(f"{flower.url}/broker").status == 200
            browser.wait_for(
                lambda: any(QUEUE_NAME in row for row in browser.evaluate(QUEUE_ROWS)),
                what="the task queue on the broker page",
            )
    assert flower.get(f"/api/tasks?taskname={SWEEP_TASK}").json() == {}
    assert f"{SWEEP_TASK}[" in worker.log_path.read_text(), "while sweeps did run"
    metrics = flower.get("/metrics")
    assert metrics.status_code == 200
    assert SWEEP_TASK not in metrics.text
