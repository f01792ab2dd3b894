"""No secret in anything a run emits: logs, the database, Celery's messages, Flower, metrics.

A whole run on RabbitMQ as compose runs it (a quorum queue; a virtual host of its own): a
worker with the embedded beat, Flower and `yfdocs metrics` deliver one document and see
another rejected. Every byte the run put out is then searched for every secret it held:

- logs: the worker's (JSON lines), Flower's and the exporter's;
- the database: every row of every table but the token cache, whose purpose is to hold
  the fleet's token;
- Celery's messages: copies of every task message and every event, taken by queues this
  test binds to the task and event exchanges before anything is sent;
- Flower: its pages and its API's JSON, the workers' inspected configuration included;
- the metrics: the exporter's and Flower's.

The secrets: the client secret, every token the sandbox issued, Flower's password, the
metrics token, and the HTTP intake's keys once the intake exists (`intake_keys`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from kombu import Connection
from sqlalchemy import MetaData, select

from sandbox import DEFAULT_CLIENT_SECRET
from tests.plugins.flower import FlowerProcess, running_flower
from tests.plugins.leaks import find_leaks
from tests.plugins.metrics import running_exporter
from tests.plugins.worker_fixtures import ServiceUnderTest, private_rabbitmq_vhost
from yfdocs.demo import DEMO_REJECTED_PERSON

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(180)]

# With quorum queues (compose's setting) tasks go through the topic exchange `yfdocs`; on
# a classic queue Celery would send them through the default exchange, which no queue but
# the addressed one can be bound to.
TAPS = {"leak-tap-tasks": ("yfdocs", "#"), "leak-tap-events": ("celeryev", "#")}
KEPT_TABLES_WITH_TOKENS = {"token_cache"}


def intake_keys(service: ServiceUnderTest) -> list[str]:
    """The HTTP intake's keys this run made. None yet: the intake is not built; when it is,
    create a key in the run (`yfdocs intake keys add`) and return it here."""
    return []


def secrets_of_the_run(
    service: ServiceUnderTest, flower: FlowerProcess, metrics_token: str
) -> dict[str, str]:
    issued = service.sandbox.service.tokens.issued_values()
    assert issued, "the sandbox issued tokens, so there are some to look for"
    return {
        "the client secret": DEFAULT_CLIENT_SECRET,
        "Flower's password": flower.password,
        "the metrics token": metrics_token,
        **{f"sandbox token {n}": token for n, token in enumerate(issued)},
        **{f"intake key {n}": key for n, key in enumerate(intake_keys(service))},
    }


@pytest.fixture
def vhost(service: ServiceUnderTest) -> Iterator[tuple[str, str]]:
    with private_rabbitmq_vhost() as (broker_url, api_url):
        service.configure(YFDOCS_BROKER_QUEUE_TYPE="quorum")
        service.use_broker(broker_url)
        yield broker_url, api_url
        service.close()  # the workers stop before their virtual host goes


def bind_taps(broker_url: str) -> None:
    """Queues that receive a copy of every task message and every event from now on."""
    with Connection(broker_url) as connection:
        channel = connection.channel()
        for queue, (exchange, routing_key) in TAPS.items():
            channel.queue_declare(queue=queue, durable=False, auto_delete=False)
            channel.queue_bind(queue=queue, exchange=exchange, routing_key=routing_key)


def tapped_messages(broker_url: str) -> dict[str, list[str]]:
    """Every message the taps took, body and headers, by tap."""
    taken: dict[str, list[str]] = {}
    with Connection(broker_url) as connection:
        channel = connection.channel()
        for queue in TAPS:
            messages = taken.setdefault(queue, [])
            while (message := channel.basic_get(queue=queue, no_ack=True)) is not None:
                body = message.body
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
                messages.append(f"{text}\n{message.properties!r}")
    return taken


def flower_output(flower: FlowerProcess, worker_name: str, job_ids: list[str]) -> dict[str, str]:
    """Flower's pages and API answers, the workers' inspected configuration included."""
    worker = quote(worker_name, safe="")
    paths = [
        "/",
        "/workers?json=1",
        "/tasks",
        "/broker",
        "/metrics",
        f"/worker/{worker}",
        "/api/workers?refresh=1",
        "/api/tasks",
        "/api/task/types",
        "/api/queues/length",
    ]
    tasks = flower.get("/api/tasks").json()
    paths += [f"/task/{task_id}" for task_id in tasks]
    paths += [f"/api/task/info/{task_id}" for task_id in tasks]
    output = {path: flower.get(path).text for path in paths}
    assert any(job_id in output["/api/tasks"] for job_id in job_ids)
    assert "task_acks_late" in output["/api/workers?refresh=1"], "the worker's conf was read"
    return output


def database_rows(service: ServiceUnderTest) -> dict[str, str]:
    metadata = MetaData()
    metadata.reflect(service.engine)
    rows = {}
    with service.engine.connect() as connection:
        for name, table in metadata.tables.items():
            if name in KEPT_TABLES_WITH_TOKENS:
                continue
            rows[name] = json.dumps(
                [list(row) for row in connection.execute(select(table))], default=str
            )
    return rows


def test_no_secret_anywhere_a_run_leaves_a_trace(
    service: ServiceUnderTest, vhost: tuple[str, str]
) -> None:
    broker_url, api_url = vhost
    service.configure(YFDOCS_LOG_FORMAT="json")
    worker = service.start_worker()
    with running_flower(service, YFDOCS_FLOWER_BROKER_API=api_url) as flower:
        worker_name = flower.wait_for_worker(f"test-0-{os.getpid()}@")
        bind_taps(broker_url)
        with running_exporter(service) as exporter:
            delivered = service.enqueue()
            rejected = service.enqueue(person_code=DEMO_REJECTED_PERSON)
            jobs = service.wait_for_end([delivered, rejected])
            assert {job.state for job in jobs.values()} == {"complete", "failed"}
            service.wait_until(  # the last events reach Flower (and the taps, alike)
                lambda: any(
                    task["state"] == "FAILURE" for task in flower.get("/api/tasks").json().values()
                ),
                what="Flower to see the rejected document's FAILURE",
            )
            outputs: dict[str, str] = {
                f"Flower {path}": text
                for path, text in flower_output(flower, worker_name, [delivered, rejected]).items()
            }
            outputs["the metrics"] = exporter.text()
            forbidden = secrets_of_the_run(service, flower, exporter.token)
    worker.stop()

    taps = tapped_messages(broker_url)
    assert len(taps["leak-tap-tasks"]) >= 3, "the uploads and polls were copied"
    assert any("task-failed" in message for message in taps["leak-tap-events"])
    for tap, messages in taps.items():
        outputs[f"message {tap}"] = "\n".join(messages)
    logs: list[Path] = [worker.log_path, flower.log_path, exporter.log_path]
    for path in logs:
        outputs[f"log {path.name}"] = path.read_text(errors="replace")
    assert '"logger": "yfdocs.jobs"' in outputs[f"log {worker.log_path.name}"]
    for table, rows in database_rows(service).items():
        outputs[f"table {table}"] = rows
    assert delivered in outputs["table job_events"]

    assert find_leaks(outputs, forbidden) == []
    assert all("Bearer ey" not in text for text in outputs.values())
