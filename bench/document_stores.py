"""Put and get of ~4 MB PDFs on each document store, and a worker's memory uploading from each.

Backends: filesystem (a temporary folder), postgres (a fresh database on the server of
YFDOCS_TEST_POSTGRES_URL or `--postgres-url`; dropped at the end) and s3 (moto's S3 server on
loopback, started and stopped here; a real S3 over a network is slower).

1. In this process, `--docs` distinct PDFs of `--size` bytes per backend: a put of new bytes,
   a put of bytes already stored (the existence check alone), and a get as the upload reads
   (open, then 64 KiB reads to the end); milliseconds per document (median), MB/s, and the
   highest Python allocation during one get (tracemalloc: what a reader holds at once).
2. One `yfdocs worker --concurrency 3` per backend delivering `--files` PDFs of `--size`
   bytes to a fresh sandbox (real limits, time scale `--scale`), sampled as
   `bench.worker_memory` does (VmRSS/VmHWM of every process every `--every` s). The
   filesystem row runs on the embedded defaults (SQLite), the others on PostgreSQL; the
   broker is the embedded one everywhere. Last, what one boto3 S3 client costs a process
   by itself (measured in a fresh interpreter).

    .venv/bin/python -m bench.document_stores [--docs 8] [--files 12] [--size 3900000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy.engine import Engine  # noqa: E402

from bench.enqueue_throughput import make_documents  # noqa: E402
from bench.worker_memory import ProcessPeak, measure_worker  # noqa: E402
from intake.storage import DocumentStore, FilesystemDocumentStore  # noqa: E402
from intake.stores import PostgresDocumentStore, S3DocumentStore  # noqa: E402
from models import make_engine, migrate  # noqa: E402
from tests.plugins.database_fixtures import (  # noqa: E402
    create_postgres_database,
    drop_postgres_database,
)
from tests.plugins.s3_fixtures import S3Bucket, create_bucket, start_s3_server  # noqa: E402

READ_BYTES = 64 * 1024  # what the multipart body asks for at a time


@dataclass
class Backend:
    """A store for part 1, and the setting that gives a worker the same kind in part 2."""

    name: str
    store: DocumentStore
    setting: str


@contextmanager
def fresh_database(postgres_url: str) -> Iterator[str]:
    url = create_postgres_database(postgres_url, prefix="yfdocs_bench")
    try:
        yield url
    finally:
        drop_postgres_database(postgres_url, url)


@contextmanager
def backends(folder: Path, postgres_url: str) -> Iterator[list[Backend]]:
    """The three stores, each empty; everything started here is stopped at exit."""
    with fresh_database(postgres_url) as database:
        engine: Engine = make_engine(database)
        migrate(engine)
        s3 = start_s3_server(folder)
        try:
            bucket: S3Bucket = create_bucket(s3, "bench")
            os.environ.update(s3.environment)  # the producer here and the worker processes
            yield [
                Backend("filesystem", FilesystemDocumentStore(folder / "documents"), "filesystem"),
                Backend("postgres", PostgresDocumentStore(engine), "postgres"),
                Backend(
                    "s3",
                    S3DocumentStore(bucket.name, bucket.prefix, s3.client()),
                    bucket.location_text,
                ),
            ]
        finally:
            s3.stop()
            engine.dispose()


def measure_worker_on(
    backend: Backend, paths: list[Path], args: argparse.Namespace
) -> tuple[list[ProcessPeak], int]:
    """Part 2 for one backend: the embedded database for the filesystem store, a fresh
    PostgreSQL database for the others (the fleet's choice of store lives there)."""
    if backend.setting == "filesystem":
        return measure_worker(paths, args.scale, args.every)
    with fresh_database(args.postgres_url) as database:
        variables = {"YFDOCS_DATABASE_URL": database, "YFDOCS_DOCUMENT_STORE": backend.setting}
        return measure_worker(paths, args.scale, args.every, variables=variables)


def _ms(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def _get(store: DocumentStore, key: str) -> int:
    total = 0
    digest = hashlib.sha256()
    with store.open(key) as stream:
        while chunk := stream.read(READ_BYTES):
            total += len(chunk)
            digest.update(chunk)
    assert key.endswith(digest.hexdigest() + ".pdf"), "read back the bytes stored"
    return total


@dataclass
class StoreFigures:
    put_ms: float
    put_again_ms: float
    get_ms: float
    get_peak_mib: float
    size: int

    def rate(self, ms: float) -> float:
        return self.size / 1e6 / (ms / 1000)


def measure_store(backend: Backend, documents: list[bytes]) -> StoreFigures:
    keys: list[str] = []
    puts = [_ms(lambda data=data: keys.append(backend.store.put(data))) for data in documents]
    again = [_ms(lambda data=data: backend.store.put(data)) for data in documents]
    gets = [_ms(lambda key=key: _get(backend.store, key)) for key in keys]
    tracemalloc.start()
    try:
        _get(backend.store, keys[0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return StoreFigures(
        statistics.median(puts),
        statistics.median(again),
        statistics.median(gets),
        peak / (1 << 20),
        len(documents[0]),
    )


def print_store_table(rows: list[tuple[str, StoreFigures]], count: int) -> None:
    print(f"\nput and get, {count} documents per backend, median per document")
    print(
        f"  {'backend':<11} {'put ms':>8} {'MB/s':>7} {'put again ms':>13} {'get ms':>8} "
        f"{'MB/s':>7} {'get peak MiB':>13}"
    )
    for name, f in rows:
        print(
            f"  {name:<11} {f.put_ms:>8.1f} {f.rate(f.put_ms):>7.0f} {f.put_again_ms:>13.2f} "
            f"{f.get_ms:>8.1f} {f.rate(f.get_ms):>7.0f} {f.get_peak_mib:>13.2f}"
        )


CLIENT_COST = """
import sys
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
sys.path.insert(0, sys.argv[1])
import intake.stores, models, sqlalchemy
before = rss()
from intake.stores import s3_client_from_environment
client = s3_client_from_environment()
client.list_buckets()
print((rss() - before) / 1024)
"""


def s3_client_cost_mib() -> float:
    """What building a process's one boto3 S3 client (its service model) and a first call
    add to the resident set, in a fresh interpreter: part of the S3 row's pool rise that
    does not depend on the documents."""
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_COST, str(REPO)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip())


def print_memory_table(rows: list[tuple[str, list[ProcessPeak], int]], files: int) -> None:
    print(f"\nworker --concurrency 3 delivering {files} PDFs, MiB")
    print(
        f"  {'backend':<11} {'delivered':>9} {'pool idle RSS':>14} {'pool max RSS':>13} "
        f"{'pool rise':>10} {'sum VmHWM':>10}"
    )
    for name, peaks, delivered in rows:
        children = [p for p in peaks if not p.role.startswith("main")]
        busiest = max(children, key=lambda p: p.rss_max - (p.rss_start or 0))
        before = (busiest.rss_start or 0) / 1024
        highest = busiest.rss_max / 1024
        total = sum(p.hwm for p in peaks) / 1024
        print(
            f"  {name:<11} {delivered:>9} {before:>14.1f} {highest:>13.1f} "
            f"{highest - before:>10.1f} {total:>10.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--size", type=int, default=3_900_000)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=0.05, help="seconds between samples")
    parser.add_argument("--postgres-url", default=os.environ.get("YFDOCS_TEST_POSTGRES_URL"))
    parser.add_argument("--no-worker", action="store_true", help="part 1 only")
    args = parser.parse_args(argv)
    if not args.postgres_url:
        parser.error("needs --postgres-url or YFDOCS_TEST_POSTGRES_URL (may CREATE DATABASE)")
    with tempfile.TemporaryDirectory(prefix="yfdocs-bench-stores-") as tmp:
        folder = Path(tmp)
        paths = make_documents(folder / "pdf", args.docs, args.size, "stores")
        documents = [path.read_bytes() for path in paths]
        print(f"{args.docs} PDFs of {args.size:,} bytes; part 2 with {args.files}")
        with backends(folder, args.postgres_url) as stores:
            store_rows = [(b.name, measure_store(b, documents)) for b in stores]
            print_store_table(store_rows, args.docs)
            if args.no_worker:
                return 0
            memory_rows = []
            for backend in stores:
                uploads = make_documents(
                    folder / backend.name, args.files, args.size, f"upload {backend.name}"
                )
                peaks, delivered = measure_worker_on(backend, uploads, args)
                memory_rows.append((backend.name, peaks, delivered))
            print_memory_table(memory_rows, args.files)
            print(
                f"  one boto3 S3 client per process (built on first use) adds "
                f"{s3_client_cost_mib():.1f} MiB of that rise by itself"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
