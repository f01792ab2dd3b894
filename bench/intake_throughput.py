"""Intake throughput: LMS events per second through `yfdocs intake` next to a bare library
enqueue of the same PDFs, measured in the same run.

The intake is the real command (uvicorn, SQLite unless --database-url) in a process of
its own; HTTP clients post `POST /v1/documents` (a 200 KB PDF each, a distinct event_id)
from threads of this process. The baseline calls `enqueue_document` with the same bytes
in this process, one after the other: the same validation, store, insert and commit,
without HTTP. Neither publishes (the dispatcher does, later), so both measure the producer
alone: every job must be created afresh, `queued` and unpublished.
Each case gets a fresh data dir. Nothing here is a timed test.

    .venv/bin/python -m bench.intake_throughput [--docs 200] [--clients 1,4] [--size 200000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.enqueue_throughput import fresh_settings, make_documents, timed  # noqa: E402
from intake.callers import add_key  # noqa: E402
from intake.producer import EnqueueRequest, enqueue_document  # noqa: E402
from intake.storage import FilesystemDocumentStore  # noqa: E402
from models import make_engine, migrate  # noqa: E402

TENANT = "4028868"
YFDOCS = str(Path(sys.executable).with_name("yfdocs"))


def bench_library(root: Path, documents: list[bytes], database_url: str | None) -> float:
    settings = fresh_settings(root, "library", database_url)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    store = FilesystemDocumentStore(settings.storage_dir)

    def run() -> None:
        for number, content in enumerate(documents):
            result = enqueue_document(
                EnqueueRequest(
                    document=content,
                    person_code="191166",
                    document_type="certificate",
                    idempotency_key=f"lms/document:{number}",
                    file_name="certificate.pdf",
                    source="intake",
                ),
                engine=engine,
                store=store,
                settings=settings,
            )
            if not (result.created and result.job.state == "queued"):
                raise RuntimeError(f"document {number} was not enqueued afresh")

    try:
        return timed(run)
    finally:
        engine.dispose()


class IntakeServer:
    """`yfdocs intake` on a free loopback port, for a fresh data dir with one key."""

    def __init__(self, root: Path, name: str, database_url: str | None) -> None:
        settings = fresh_settings(root, name, database_url)
        settings.data_dir.mkdir(parents=True)
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        self.key = add_key(engine, name="lms", tenants=[TENANT]).key
        engine.dispose()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("YFDOCS_")}
        env.update(YFDOCS_DATA_DIR=str(settings.data_dir), YFDOCS_TENANT_ID=TENANT)
        env["PYTHONPATH"] = str(REPO)
        if database_url:
            env["YFDOCS_DATABASE_URL"] = database_url
        self._log = (root / f"{name}.log").open("wb")
        self.process = subprocess.Popen(
            [YFDOCS, "intake", "--port", str(port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("yfdocs intake did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def bench_intake(
    server: IntakeServer, documents: list[bytes], clients: int
) -> tuple[float, list[float]]:
    """Wall seconds for every document, posted by `clients` threads; per-request seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    next_index = iter(range(len(documents)))
    failures: list[str] = []

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {server.key}"
        while True:
            with lock:
                number = next(next_index, None)
            if number is None:
                return
            started = time.perf_counter()
            answer = session.post(
                f"{server.url}/v1/documents",
                files={"file": ("certificate.pdf", documents[number], "application/pdf")},
                data={
                    "document_type": "certificate",
                    "person_code": "191166",
                    "event_id": str(number),
                },
                timeout=60,
            )
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if answer.status_code != 202 or not answer.json()["created"]:
                    failures.append(f"{number}: {answer.status_code} {answer.text[:120]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} request(s) failed, e.g. {failures[0]}")
    return wall, latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=200, help="documents per case (200)")
    parser.add_argument("--clients", default="1,4", help="HTTP client threads per case (1,4)")
    parser.add_argument("--size", type=int, default=200_000, help="PDF bytes (200000)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args(argv)
    client_counts = [int(item) for item in args.clients.split(",") if item]

    with tempfile.TemporaryDirectory(prefix="yfdocs-bench-") as temp:
        root = Path(temp)
        print(f"preparing {args.docs} distinct PDFs of {args.size:,} bytes ...")
        documents = [
            path.read_bytes()
            for path in make_documents(root / "in", args.docs, args.size, "certificate")
        ]
        library_seconds = bench_library(root, documents, args.database_url)
        library_rate = args.docs / library_seconds
        print(f"{'case':<22}{'n':>6}{'events/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'of library':>12}")
        print(f"{'library enqueue':<22}{args.docs:>6}{library_rate:>10.1f}{'':>9}{'':>9}{1:>12.2f}")
        for clients in client_counts:
            server = IntakeServer(root, f"intake-{clients}", args.database_url)
            try:
                wall, latencies = bench_intake(server, documents, clients)
            finally:
                server.stop()
            rate = args.docs / wall
            p50 = statistics.median(latencies) * 1000
            p95 = statistics.quantiles(latencies, n=20)[-1] * 1000
            label = f"intake, {clients} client(s)"
            print(
                f"{label:<22}{args.docs:>6}{rate:>10.1f}{p50:>9.1f}{p95:>9.1f}"
                f"{rate / library_rate:>12.2f}"
            )
        print("of library = intake events/s divided by bare library enqueues/s (same run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
