"""Enqueue throughput: the full producer path next to a bare Celery `send_task`.

The producer validates (magic, pypdf parse), stores content-addressed with fsync, inserts
the job and its event and commits; it sends nothing to the broker (the dispatcher publishes
the job later). The baseline only sends the same number of messages to the embedded
filesystem broker: what one message costs, next to what one job costs.
Everything runs in a fresh temporary data dir (embedded SQLite unless --database-url).

    .venv/bin/python -m bench.enqueue_throughput [--small 200] [--big 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from config import Settings  # noqa: E402
from intake.producer import EnqueueRequest, enqueue_document  # noqa: E402
from intake.storage import FilesystemDocumentStore  # noqa: E402
from messaging import QUEUE_NAME, UPLOAD_TASK  # noqa: E402
from models import make_engine, migrate  # noqa: E402
from tests.pdf_samples import make_pdf  # noqa: E402
from worker.celery_app import create_celery_app  # noqa: E402

BIG_BYTES = 4_000_000


def make_documents(folder: Path, count: int, size: int | None, label: str) -> list[Path]:
    """Distinct PDFs (so none is deduplicated away); big ones are copies with one byte changed."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if size is None:
        for n in range(count):
            path = folder / f"{label}-{n}.pdf"
            make_pdf(path, text=f"{label} document {n}")
            paths.append(path)
        return paths
    template = make_pdf(None, pad_to=size, text=f"{label} template")
    marker = template.index(b"xxxxxxxx")
    for n in range(count):
        unique = f"{n:08d}".encode()
        data = template[:marker] + unique + template[marker + len(unique) :]
        path = folder / f"{label}-{n}.pdf"
        path.write_bytes(data)
        paths.append(path)
    return paths


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def bench_producer(settings: Settings, paths: list[Path]) -> float:
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    store = FilesystemDocumentStore(settings.storage_dir)

    def run() -> None:
        for path in paths:
            result = enqueue_document(
                EnqueueRequest(
                    document=path, person_code="P1", document_type="diploma", source="library"
                ),
                engine=engine,
                store=store,
                settings=settings,
            )
            if not result.created or result.job.published_at is not None:
                raise RuntimeError(f"{path.name} was not enqueued afresh, for the dispatcher")

    try:
        return timed(run)
    finally:
        engine.dispose()


def bench_send_task(settings: Settings, count: int) -> float:
    app = create_celery_app(settings)

    def run() -> None:
        for _ in range(count):
            app.send_task(UPLOAD_TASK, args=[str(uuid.uuid4())], retry=False, queue=QUEUE_NAME)

    return timed(run)


def fresh_settings(root: Path, name: str, database_url: str | None) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=root / name, database_url=database_url, tenant_id="4028868", _env_file=None
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200, help="small PDFs (default 200)")
    parser.add_argument("--big", type=int, default=20, help="4 MB PDFs (default 20)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="yfdocs-bench-") as temp:
        root = Path(temp)
        print(f"preparing {args.small} small and {args.big} x {BIG_BYTES:,}-byte PDFs ...")
        small = make_documents(root / "in-small", args.small, None, "small")
        big = make_documents(root / "in-big", args.big, BIG_BYTES, "big")
        print(f"{'case':<12}{'n':>6}{'producer/s':>14}{'send_task/s':>14}{'ratio':>9}")
        for label, paths in (("small", small), ("4 MB", big)):
            if not paths:
                continue
            count = len(paths)
            producer_seconds = bench_producer(
                fresh_settings(root, f"p-{label}", args.database_url), paths
            )
            baseline_seconds = bench_send_task(fresh_settings(root, f"b-{label}", None), count)
            producer_rate = count / producer_seconds
            baseline_rate = count / baseline_seconds
            print(
                f"{label:<12}{count:>6}{producer_rate:>14.1f}{baseline_rate:>14.1f}"
                f"{producer_rate / baseline_rate:>9.3f}"
            )
        print("ratio = producer jobs/s divided by bare send_task messages/s (embedded broker)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
