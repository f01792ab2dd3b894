"""Peak resident memory of a worker uploading ~4 MB PDFs at full concurrency, beside the baseline.

A fresh sandbox (real limits, time scale S) and data dir; one `yfdocs worker
--concurrency 3` (with its beat); `--files` valid PDFs padded to `--size` bytes are enqueued
at once. Every `--every` seconds the bench reads VmRSS and VmHWM of the worker's main process
and of every descendant (found through /proc/<pid>/task/*/children) from
/proc/<pid>/status, until every job is complete. The baseline is `bench.baseline_loop` in its
own process with 3 threads on the same files (requests' `files=` builds each body in memory),
sampled the same way. Printed: per process the RSS before the uploads, the highest RSS seen
and VmHWM (the kernel's own peak), and the sum over processes (an upper bound: peaks of
different processes need not coincide).

    .venv/bin/python -m bench.worker_memory [--files 12] [--size 3900000] [--scale 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.enqueue_throughput import make_documents  # noqa: E402
from bench.fleet_throughput import (  # noqa: E402
    fresh_service,
    sandbox_config,
    sandbox_stats,
    start_fleet,
    wait_terminal,
)
from intake.producer import EnqueueRequest, enqueue_document  # noqa: E402
from sandbox import SandboxServer  # noqa: E402


def _status_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def _descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in children.read_text().split()]
        except OSError:
            continue
    return found + [d for child in found for d in _descendants(child)]


def _role(pid: int, root: int) -> str:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
    return f"main ({name})" if pid == root else f"child of {root} ({name})"


@dataclass
class ProcessPeak:
    """One process: its RSS at the start, the highest RSS and VmHWM seen (KiB)."""

    pid: int
    role: str
    rss_start: int | None = None
    rss_max: int = 0
    hwm: int = 0


@dataclass
class TreeSampler:
    """Samples a process and its descendants in a background thread until stopped."""

    root: int
    every: float
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for pid in [self.root, *_descendants(self.root)]:
            values = _status_kib(pid)
            if not values:
                continue
            peak = self.peaks.setdefault(pid, ProcessPeak(pid, _role(pid, self.root)))
            if peak.rss_start is None:
                peak.rss_start = values.get("VmRSS", 0)
            peak.rss_max = max(peak.rss_max, values.get("VmRSS", 0))
            peak.hwm = max(peak.hwm, values.get("VmHWM", 0))

    def start(self) -> TreeSampler:
        def loop() -> None:
            while not self._stop.is_set():
                self.sample()
                self._stop.wait(self.every)

        self.sample()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[ProcessPeak]:
        self.sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return sorted(self.peaks.values(), key=lambda p: p.pid)


def measure_worker(
    paths: list[Path], scale: float, every: float, variables: dict[str, str] | None = None
) -> tuple[list[ProcessPeak], int]:
    """Peaks of one worker (and its pool) while it delivers `paths`; `variables` configure
    the service (another database, another document store)."""
    with fresh_service(scale, "memory", variables=variables) as service:
        start_fleet(service, 1)
        time.sleep(1.0)
        sampler = TreeSampler(service.workers[0].process.pid, every).start()
        ids = []
        for path in paths:
            request = EnqueueRequest(
                document=path.read_bytes(),
                person_code="191166",
                document_type="certificate",
                file_name=path.name,
            )
            result = enqueue_document(
                request,
                engine=service.engine,
                store=service.store,
                settings=service.settings,
            )
            ids.append(result.job.id)
        delivered = wait_terminal(service, ids, timeout=240.0)
        peaks = sampler.stop()
        if sandbox_stats(service.sandbox)["uploads_accepted"] < len(paths):
            print("  ! not every upload was accepted", file=sys.stderr)
        return peaks, delivered


def measure_baseline(
    paths: list[Path], scale: float, every: float
) -> tuple[list[ProcessPeak], int]:
    with SandboxServer(sandbox_config(scale)) as sandbox:
        argv = [
            sys.executable,
            "-m",
            "bench.baseline_loop",
            "--api-url",
            sandbox.url,
            "--time-scale",
            str(scale),
            "--threads",
            "3",
            *map(str, paths),
        ]
        process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL)
        sampler = TreeSampler(process.pid, every).start()
        while process.poll() is None:
            time.sleep(every)
            sampler.sample()
        peaks = sampler.stop()
        return peaks, int(sandbox_stats(sandbox)["uploads_accepted"])


def print_peaks(label: str, peaks: list[ProcessPeak], delivered: int) -> None:
    print(f"{label} ({delivered} delivered)")
    header = f"  {'pid':>7} {'process':<42} {'RSS before':>10} {'RSS max':>8} {'VmHWM':>8}"
    print(header)
    for p in peaks:
        before = f"{(p.rss_start or 0) / 1024:.1f}"
        print(
            f"  {p.pid:>7} {p.role:<42} {before:>10} {p.rss_max / 1024:>8.1f} {p.hwm / 1024:>8.1f}"
        )
    total_rss = sum(p.rss_max for p in peaks) / 1024
    total_hwm = sum(p.hwm for p in peaks) / 1024
    print(f"  {'':>7} {'sum (MiB)':<42} {'':>10} {total_rss:>8.1f} {total_hwm:>8.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--size", type=int, default=3_900_000)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=0.05, help="seconds between samples")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="yfdocs-bench-memory-") as tmp:
        paths = make_documents(Path(tmp) / "pdf", args.files, args.size, "memory")
        print(
            f"{args.files} PDFs of {args.size:,} bytes, sandbox time scale {args.scale:g}, "
            "memory in MiB"
        )
        worker_peaks, worker_done = measure_worker(paths, args.scale, args.every)
        print_peaks("yfdocs worker --concurrency 3 (main, pool, beat)", worker_peaks, worker_done)
        base_peaks, base_done = measure_baseline(paths, args.scale, args.every)
        print_peaks("baseline loop, 3 threads, one process", base_peaks, base_done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
