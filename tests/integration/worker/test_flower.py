"""Flower, as an administrator sees it: a real headless Chromium against `yfdocs flower`.

Flower's task table is filled by JavaScript after the page loads, so only a browser shows
what an administrator sees. The pages must show the yfdocs tasks with their job ids and
never a secret: not the client secret, not Flower's own password, not a bearer token.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlmodel import Session, select

from messaging import POLL_TASK, UPLOAD_TASK
from models import TokenCacheEntry
from sandbox import DEFAULT_CLIENT_SECRET
from tests.plugins.browser import HeadlessChromium, chromium_path
from tests.plugins.flower import FlowerProcess, running_flower
from tests.plugins.worker_fixtures import ServiceUnderTest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


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
    leaks = [
        f"{what} on the {page} page"
        for page, source in pages.items()
        for what, secret in forbidden.items()
        if secret in source
    ]
    assert leaks == []
    assert all("Bearer " not in source for source in pages.values())
