"""Live events behind a backfill: their latency, and how busy a backlogged fleet keeps the API.

One `yfdocs worker --concurrency 3` with its beat, embedded defaults (SQLite, filesystem
broker), against a sandbox process with the real limits at time scale S (default 6: the
governor's interval is 0.6/S + 0.05 s = 150 ms wall). Two runs, each on a fresh sandbox and
data dir:

1. **alone**: three live events, nothing else;
2. **behind a backfill**: a backfill of N documents enqueued at backfill priority (as
   `yfdocs backfill` does), then the same three live events at once.

Printed per run: the live events' latency (enqueue to `complete`, wall seconds, and their
ratio to the run alone), and, while the backlog lasted, how often calls started compared
with the rate the spacing allows (from the sandbox's record of arrivals: the mean gap
between consecutive API-call arrivals against the configured interval).

    .venv/bin/python -m bench.live_behind_backfill [--scale 6] [--backfill 150]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.fleet_throughput import (  # noqa: E402
    ARRIVAL_MARGIN_S,
    fresh_service,
    last_seq,
    sandbox_log,
    start_fleet,
    wait_terminal,
)
from models import Priority  # noqa: E402
from tests.plugins.worker_fixtures import ServiceUnderTest  # noqa: E402

LIVE_EVENTS = 3


def _live(service: ServiceUnderTest, tag: str) -> tuple[list[str], float]:
    started = time.monotonic()
    ids = [service.enqueue(person_code="191166", title=f"live {tag} {n}") for n in range(3)]
    return ids, started


def _arrival_gaps(entries: list[dict[str, object]], scale: float) -> list[float]:
    """Wall seconds between consecutive API-call arrivals (token requests apart)."""
    arrivals = sorted(
        float(entry["arrived_api_s"])  # type: ignore[arg-type]
        for entry in entries
        if entry.get("kind") not in (None, "token") and "arrived_api_s" in entry
    )
    return [(b - a) / scale for a, b in itertools.pairwise(arrivals)]


def run(scale: float, backfill: int, timeout: float) -> dict[str, float]:
    interval = 0.6 / scale + ARRIVAL_MARGIN_S
    with fresh_service(scale, "alone") as service:
        start_fleet(service, 1)
        ids, started = _live(service, "alone")
        wait_terminal(service, ids, timeout)
        alone = time.monotonic() - started
    with fresh_service(scale, "backfill") as service:
        start_fleet(service, 1)
        since = last_seq(service.sandbox)
        backlog = [
            service.enqueue(title=f"backfill {n}", priority=Priority.BACKFILL)
            for n in range(backfill)
        ]
        ids, started = _live(service, "behind")
        wait_terminal(service, ids, timeout)
        behind = time.monotonic() - started
        # The backlog's own pace, while there is more waiting than the fleet can run.
        busy_until = time.monotonic() + min(30.0, timeout)
        while time.monotonic() < busy_until:
            time.sleep(1.0)
        gaps = _arrival_gaps(sandbox_log(service.sandbox, since), scale)
        wait_terminal(service, backlog, timeout * 4)
    mean_gap = statistics.fmean(gaps) if gaps else float("nan")
    return {
        "interval_s": interval,
        "alone_s": alone,
        "behind_s": behind,
        "ratio": behind / alone if alone else float("nan"),
        "mean_gap_s": mean_gap,
        "of_spacing_rate": interval / mean_gap if gaps else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--backfill", type=int, default=150)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args(argv)
    os.environ.pop("YFDOCS_BROKER_URL", None)
    figures = run(args.scale, args.backfill, args.timeout)
    print(
        f"time scale {args.scale:g}, governor interval {figures['interval_s'] * 1000:.0f} ms, "
        f"{LIVE_EVENTS} live events, backfill of {args.backfill}"
    )
    print(f"{'live latency alone':<40} {figures['alone_s']:>8.1f} s")
    print(f"{'live latency behind the backfill':<40} {figures['behind_s']:>8.1f} s")
    print(f"{'ratio':<40} {figures['ratio']:>8.2f} x")
    print(f"{'mean gap between call arrivals':<40} {figures['mean_gap_s'] * 1000:>8.0f} ms")
    print(f"{'call starts, of the rate spacing allows':<40} {figures['of_spacing_rate']:>8.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
