"""Persons sync against the sandbox: full then delta by changedAfter, pages of take=1000
followed by nextLink, deletions removed; and unmatched jobs queued once their learner is
known. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from config import Settings
from intake.person_sync import TenantSyncFailure, request_window, sync_persons, sync_tenants
from intake.producer import EnqueueRequest, enqueue_document
from intake.storage import FilesystemDocumentStore
from models import JobEvent, JobState, UploadJob, utcnow
from models import persons as person_table
from sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxServer
from tests.pdf_samples import make_pdf
from tests.plugins.cli_fixtures import Cli
from tests.plugins.dispatch_fixtures import grants, spend_tokens
from tests.plugins.intake_fixtures import dispatch_pass
from tests.plugins.sandbox_fixtures import SandboxFactory
from worker.runtime import build_client

TENANT = "4028868"
PERSONS = 2300  # three pages of 1000


@pytest.fixture
def big_sandbox(sandbox_factory: SandboxFactory) -> SandboxServer:
    return sandbox_factory(tenants={TENANT: PERSONS, "4028869": 40})


def settings_for(sandbox: SandboxServer, tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        database_url=database_url,  # type: ignore[arg-type]
        api_url=sandbox.url,
        token_url=sandbox.token_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,  # type: ignore[arg-type]
        tenant_id=TENANT,
    )


def seed(sandbox: SandboxServer, changed_at: str, persons: list[Any], deleted: list[str]) -> None:
    answer = requests.post(
        f"{sandbox.url}/_sandbox/persons",
        json={
            "tenant_id": TENANT,
            "changed_at": changed_at,
            "persons": persons,
            "deleted": deleted,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def person_reads(sandbox: SandboxServer, since: int = 0) -> list[dict[str, Any]]:
    log = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=10).json()["requests"]
    return [entry for entry in log[since:] if entry["path"] == "/learning/v1.0/persons"]


def person(code: str, email: str) -> dict[str, Any]:
    return {"personCode": code, "emailAddresses": [{"type": "Business", "address": email}]}


@pytest.fixture
def parts(
    big_sandbox: SandboxServer, tmp_path: Path, database_url: str, db_engine: Engine
) -> Iterator[tuple[Settings, Engine, Any]]:
    settings = settings_for(big_sandbox, tmp_path, database_url)
    client = build_client(settings, db_engine)
    # The worker's client fetches a token only in a delivery window, as for any call.
    assert request_window(db_engine, settings, TENANT)
    yield settings, db_engine, client
    client.close()


def test_a_full_sync_then_a_delta_over_pages_with_deletions(
    big_sandbox: SandboxServer, parts: tuple[Settings, Engine, Any]
) -> None:
    _settings, engine, client = parts
    first = sync_persons(engine, client, TENANT)
    reads = person_reads(big_sandbox)
    assert [parse_qs(entry["query"]) for entry in reads] == [
        {"take": ["1000"]},
        {"take": ["1000"], "skip": ["1000"]},
        {"take": ["1000"], "skip": ["2000"]},
    ]
    assert first.full
    assert first.deleted > 0  # the seed deletes one person in sixty
    assert first.changed + first.deleted == PERSONS
    assert first.persons == first.changed
    assert first.changed_after is not None
    assert person_table.person_codes_with_email(engine, TENANT, "nobody@example.nl") == []

    known = sorted(big_sandbox.service.hr.tenant(TENANT).live_person_codes)  # type: ignore[union-attr]
    gone, changed = known[0], known[1]
    seed(
        big_sandbox,
        "2030-01-01T00:00:00.000Z",
        [person("555001", "new.starter@example.nl"), person(changed, "Renamed@Example.nl")],
        [gone],
    )
    before = len(person_reads(big_sandbox))
    second = sync_persons(engine, client, TENANT)
    delta = person_reads(big_sandbox)[before:]
    assert len(delta) == 1
    query = parse_qs(delta[0]["query"])
    assert query["take"] == ["1000"]
    watermark = first.changed_after
    assert query["changedAfter"] == [
        watermark.strftime("%Y-%m-%dT%H:%M:%S.") + f"{watermark.microsecond // 1000:03d}Z"
    ]
    assert not second.full
    assert (second.changed, second.deleted) == (2, 1)
    assert second.persons == first.persons + 1 - 1
    assert person_table.person_codes_with_email(engine, TENANT, "new.starter@example.nl") == [
        "555001"
    ]
    assert person_table.person_codes_with_email(engine, TENANT, "renamed@example.nl") == [changed]
    assert not person_table.person_code_known(engine, TENANT, gone)
    # The watermark stays before the sync began, so the next delta reads the seeded
    # changes (dated in the future here) again, harmlessly; it never moves back.
    assert second.changed_after is not None
    assert second.changed_after >= first.changed_after


def test_an_unmatched_job_is_queued_after_the_sync_that_knows_its_learner(
    big_sandbox: SandboxServer, parts: tuple[Settings, Engine, Any]
) -> None:
    settings, engine, client = parts
    store = FilesystemDocumentStore(settings.storage_dir)

    def enqueue(email: str, key: str) -> UploadJob:
        request = EnqueueRequest(
            document=make_pdf(text=key),
            person_code=None,
            learner_email=email,
            document_type="certificate",
            idempotency_key=key,
            source="intake",
        )
        return enqueue_document(request, engine=engine, store=store, settings=settings).job

    waiting = enqueue("new.starter@example.nl", "evt-1")
    shared = enqueue("shared@example.nl", "evt-2")
    assert (waiting.state, shared.state) == ("unmatched", "unmatched")
    assert dispatch_pass(engine, settings) == []  # nothing to send while unmatched

    seed(
        big_sandbox,
        "2030-01-01T00:00:00.000Z",
        [
            person("555001", "new.starter@example.nl"),
            person("555002", "shared@example.nl"),
            person("555003", "shared@example.nl"),
        ],
        [],
    )
    report = sync_persons(engine, client, TENANT)
    assert (report.rematch.matched, report.rematch.still_unmatched) == (1, 1)
    with Session(engine) as session:
        matched = session.get(UploadJob, waiting.id)
        still = session.get(UploadJob, shared.id)
        assert matched is not None
        assert still is not None
        events = session.exec(
            select(JobEvent).where(col(JobEvent.job_id) == waiting.id).order_by(col(JobEvent.id))
        ).all()
    assert (matched.state, matched.person_code, matched.last_error) == ("queued", "555001", None)
    # Queued for the dispatcher, not published by the sync: the next pass sends it.
    assert matched.published_at is None
    assert dispatch_pass(engine, settings) == [waiting.id]
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "unmatched"),
        ("unmatched", "queued"),
    ]
    assert "matched to personCode 555001" in events[1].reason
    assert still.state == JobState.UNMATCHED.value
    assert still.last_error is not None
    assert "matches 2 persons" in still.last_error


def test_the_command_syncs_and_reports_as_json(big_sandbox: SandboxServer, cli: Cli) -> None:
    result = cli.run(
        "sync-persons",
        "--tenant",
        TENANT,
        "--json",
        YFDOCS_API_URL=big_sandbox.url,
        YFDOCS_TOKEN_URL=big_sandbox.token_url,
        YFDOCS_CLIENT_ID=DEFAULT_CLIENT_ID,
        YFDOCS_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
    )
    assert result.returncode == 0, result.stderr
    (outcome,) = json.loads(result.stdout)
    assert outcome["tenant_id"] == TENANT
    assert outcome["full"] is True
    assert outcome["persons"] == person_table.count_persons(cli.engine, TENANT) > 2000
    assert DEFAULT_CLIENT_SECRET not in result.stdout + result.stderr


def test_a_tenant_the_app_may_not_read_is_reported_and_the_command_exits_1(
    big_sandbox: SandboxServer, cli: Cli
) -> None:
    result = cli.run(
        "sync-persons",
        "--tenant",
        "999",
        YFDOCS_API_URL=big_sandbox.url,
        YFDOCS_TOKEN_URL=big_sandbox.token_url,
        YFDOCS_CLIENT_ID=DEFAULT_CLIENT_ID,
        YFDOCS_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
    )
    assert result.returncode == 1
    assert "tenant 999: not synced" in result.stdout


def test_a_sync_asks_the_pacer_for_a_window_and_waits_when_it_allows_none(
    big_sandbox: SandboxServer, tmp_path: Path, database_url: str, db_engine: Engine
) -> None:
    settings = settings_for(big_sandbox, tmp_path, database_url)
    with build_client(settings, db_engine) as client:
        (synced,) = sync_tenants(db_engine, client, [TENANT], settings=settings)
        assert not isinstance(synced, TenantSyncFailure), synced
        assert synced.persons > 2000
        assert grants(db_engine)[TENANT].reason == "persons sync"
    # With the month's token budget spent, the pacer opens no window: the sync makes no
    # token request and says why, and the tenant stays unsynced for the next try.
    spend_tokens(db_engine, settings.token_monthly_budget, at=utcnow(), tenant="4028869")
    with build_client(settings, db_engine) as client:
        (refused,) = sync_tenants(db_engine, client, ["4028869"], settings=settings)
    assert isinstance(refused, TenantSyncFailure)
    assert "delivery window" in refused.error
    assert person_table.sync_state(db_engine, "4028869") is None
