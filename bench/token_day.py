"""Token requests over one simulated API day: a yfdocs fleet next to the baseline.

One API day at a high time scale (default 720: a day in 120 wall seconds, a 3,600 s token
lives 5 wall seconds). A trickle of documents arrives across the day at random (seeded)
times, the same schedule for both sides, each on its own fresh sandbox, side by side in the
same 120 s:

- yfdocs: 2 worker processes (concurrency 3, one with the beat) sharing one data dir, so one
  token cache in the database for the whole fleet;
- baseline: the `bench.baseline_loop` client as 2 "processes" (threads that share nothing),
  each fetching a token when it starts its first document and again once `expires_in` has
  passed (or on a 401): the honest typical naive client.

At this scale one call per 0.6 API s is 0.8 wall ms, far below timing noise, so the sandbox's
spike check is switched off for this measurement (parallel, daily and token limits stay on)
and the governor keeps the scaled interval. Goal: at most one token request per tenant per
token lifetime, i.e. 24 in a day.

    .venv/bin/python -m bench.token_day [--scale 720] [--docs 144]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.baseline_loop import BaselineClient, BaselineOutcome, TokenHolder  # noqa: E402
from bench.fleet_throughput import (  # noqa: E402
    fresh_service,
    sandbox_config,
    sandbox_stats,
    start_fleet,
    states,
)
from sandbox import DEFAULT_TENANT_ID, SandboxServer  # noqa: E402
from tests.pdf_samples import make_pdf  # noqa: E402

DAY_API_S = 86_400.0
TOKEN_LIFETIME_API_S = 3_600.0


def arrival_times(docs: int, seed: int) -> list[float]:
    """Seeded arrival times across one day, in API seconds from its start."""
    rng = random.Random(seed)
    return sorted(rng.uniform(0.0, DAY_API_S) for _ in range(docs))


def run_baseline_day(
    sandbox: SandboxServer, arrivals: list[float], scale: float, day_start: float, folder: Path
) -> BaselineOutcome:
    """Two independent processes (threads sharing nothing) taking documents alternately."""
    outcome = BaselineOutcome()

    def process(index: int) -> None:
        tokens = TokenHolder(
            sandbox.token_url,
            DEFAULT_TENANT_ID,
            outcome,
            time_scale=scale,
            refresh_on_expiry=True,
        )
        client = BaselineClient(sandbox.url, tokens, outcome, time_scale=scale)
        for n in range(index, len(arrivals), 2):
            due = day_start + arrivals[n] / scale
            if due >= day_start + DAY_API_S / scale:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            path = folder / f"token-day-{n}.pdf"
            make_pdf(path, text=f"token day document {n}")
            status = client.deliver(path)
            with outcome.lock:
                outcome.delivered += status == "Complete"
                outcome.failed += status != "Complete"

    threads = [threading.Thread(target=process, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=720.0)
    parser.add_argument("--docs", type=int, default=144, help="documents across the day")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    scale = args.scale
    arrivals = arrival_times(args.docs, args.seed)
    day_wall = DAY_API_S / scale

    with (
        fresh_service(scale, "tokenday", spike=False) as service,
        SandboxServer(sandbox_config(scale, spike=False)) as baseline_sandbox,
        tempfile.TemporaryDirectory(prefix="yfdocs-bench-tokenday-") as tmp,
    ):
        start_fleet(service, 2)
        day_start = time.monotonic()
        baseline_result: list[BaselineOutcome] = []
        baseline_thread = threading.Thread(
            target=lambda: baseline_result.append(
                run_baseline_day(baseline_sandbox, arrivals, scale, day_start, Path(tmp))
            )
        )
        baseline_thread.start()
        job_ids = []
        for n, at in enumerate(arrivals):
            time.sleep(max(0.0, day_start + at / scale - time.monotonic()))
            job_ids.append(service.enqueue(title=f"token day document {n}"))
        time.sleep(max(0.0, day_start + day_wall - time.monotonic()))
        yfdocs_tokens = sandbox_stats(service.sandbox)["token_requests"]
        baseline_tokens = sandbox_stats(baseline_sandbox)["token_requests"]
        yfdocs_states = states(service, job_ids)
        baseline_thread.join()
        baseline = baseline_result[0]
        elapsed = time.monotonic() - day_start

    goal = int(DAY_API_S / TOKEN_LIFETIME_API_S)
    print(
        f"one API day at time scale {scale:g} ({day_wall:.0f} s wall, measured {elapsed:.0f} s), "
        f"token lifetime {TOKEN_LIFETIME_API_S:.0f} API s, {len(arrivals)} documents at random "
        f"times, one tenant, sandbox spike check off"
    )
    header = f"{'client':<44} {'delivered':>9} {'token requests':>14} {'goal':>5}"
    print(header)
    print("-" * len(header))
    complete = yfdocs_states.get("complete", 0)
    print(
        f"{'yfdocs, 2 worker processes (shared cache)':<44} {complete:>9} "
        f"{yfdocs_tokens:>14} {goal:>5}"
    )
    print(
        f"{'baseline, 2 processes, token per process':<44} {baseline.delivered:>9} "
        f"{baseline_tokens:>14} {goal:>5}"
    )
    if complete < len(job_ids):
        print(f"yfdocs jobs not complete when the day ended: {yfdocs_states}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
