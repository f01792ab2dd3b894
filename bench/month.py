"""One month of deliveries as a discrete-event simulation: three policies side by side.

Whether a month of certificates fits the API's budgets (per app, all tenants together):
6,000 calls a day, one call every 0.6 s (100 a minute), 3 in parallel, and 400 token
requests a month, each token serving one tenant for an hour. A document costs one upload
call and one or more status calls; its ticket completes after a random processing time.

The policies, on the same documents:

1. **today**: the service before the pacer. A token is fetched whenever work waits for a
   tenant whose token is gone (or expires within the refresh margin); work runs by its
   priority field (live before backfill, then oldest first); the quota rule
   (`scheduling.policy.quota.upload_wait`: a backfill upload leaves 2.2 calls to each live
   document waiting and to each still expected today, at the last day's rate, as
   `scheduling.quota_policy` counts them) and the poll planner as they are;
2. **pacer**: the dispatcher of `scheduling.dispatcher.plan_dispatch`: tenants holding a
   valid token have an open window; the others ask `TokenPace` for a grant, most urgent
   first (`most_urgent`, a tenant's place in line set by its oldest due document's
   arrival), none while the day's quota left cannot pay for a document; `choose_work`
   picks polls, live uploads, then backfill, tenants by weighted round robin,
   `room_in_broker` at a time, and no upload in a window that ends (after the refresh
   margin) before the tenant's first poll would come; the quota rule and the planner;
3. **naive**: what a team without yfdocs writes (`bench.baseline_loop`): three threads take
   documents in arrival order, each uploads one and polls it every 10 s until done; a
   tenant's token is fetched when the cached one has expired.

The policy code is imported and called, never copied (`bench.month_model`); the settings
(concurrency, ready factor, reserve, refresh margin, poll delays, the planner's window,
minimum and refresh) are read from `config.Settings` and `scheduling.poll_planner`.

The model and its assumptions:

- a simulated clock, no HTTP: a call is instantaneous and happens at the API's pace (0.6 s
  after the previous one, which is also the 100 a minute; the 3 in parallel never bind);
  a token request is instantaneous and costs no call; the API never fails, so nothing is
  retried and no credentials are refused; there is no network or worker latency;
- live documents arrive as a Poisson process around the clock (no office hours), over
  tenants evenly or by `--skew` (tenant k gets a share proportional to 1 / k**skew); the
  backfill is 10,000 documents of tenant 1 enqueued at the start of day 10; in every
  scenario one more tenant, the newcomer, sends 20 documents during day 15;
- ticket times are lognormal (median 30 s, sigma 0.5 unless told), the same for every
  tenant, independent of load; the same documents get the same times under every policy;
- the quota counts UTC days; the token budget counts 30-day months from the first day;
- the dispatcher runs a pass whenever something may have changed (an arrival, a poll
  falling due, the broker empty, the pace line reaching the next token, a grant lapsing,
  a new quota day or month), not every second; it fills the broker when it is empty; a
  grant is taken by the first call of its tenant (the token fetched before the governor
  looks at the quota, as `api_client` does; the quota rule before the token, as the
  upload step does);
- the planner (`bench.month_model.TenantPlanner.model_for`) follows `PollPlanner`: the
  tenant's last 200 outcomes, or the fleet's pooled while it has fewer than 20, cached 60 s
  (5 s while pooled); for speed a model is refitted only when what it is fitted on has
  changed, and a learned tenant's only after `--refit-after` (200) new outcomes: refitting
  after every outcome changes calls per document by 0.03 (5 tenants, 500 a day) and costs
  five times the time;
- a token request the budget refuses (today, naive) is asked again an hour later, or at
  the next month, whichever is first; it counts in "tokens" as asked;
- after the month (30 days) no new documents arrive; the simulation goes on for up to
  `--drain-days` (next month's fresh token budget) so that late documents get a latency;
  a live document still waiting then counts with its age so far ("max" shows ">").

The figures per scenario and policy: token requests asked in the month (and the day the
budget ran out), days with live work waiting and no call made ("stall"), documents
delivered within the month, the latency of live documents (arrival to the poll that saw
the ticket complete), live latency while the backfill ran against the same documents in
the run without it (p50 and p95 ratio, goal <= 1.3), calls per delivered document, the
busiest day's share of the quota, calls per document over the newcomer's first 20
uploads (goal <= 2.5) and over the founding tenants' first 20, live documents whose
status came more than an hour after the upload, and tokens fetched on a spent quota.
Twenty documents make the new-tenant figures noisy: +-0.1.

    .venv/bin/python -m bench.month [--quick] [--json] [--jobs 2] [--seed 7] [--sigma 0.5]

A whole run (18 scenarios x 3 policies) takes about two and a half CPU minutes (`--jobs 2`
spreads it over two processes); the biggest month, 20 tenants at 2,500 a day with the
backfill, about 20 s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.month_model import (  # noqa: E402
    DAY,
    ApiLimits,
    NaiveLoop,
    RunRecord,
    ServiceKnobs,
    Workload,
    YfdocsFleet,
    delivered,
    live_latencies,
    make_workload,
)

POLICIES = ("today", "pacer", "naive")
TENANT_COUNTS = (1, 5, 20)
DAILY_RATES = (100, 500, 2500)
QUICK = ((1, 100), (5, 500), (20, 2500))
RATIO_GOAL = 1.3
NEW_TENANT_GOAL = 2.5
NEW_TENANT_DOCS = 20
LATE_POLL_SECONDS = 3600.0  # a ticket takes seconds: a poll this late waited for a window


@dataclass(frozen=True)
class Scenario:
    tenants: int
    docs_per_day: int
    backfill: bool

    @property
    def label(self) -> str:
        return f"{self.tenants}x{self.docs_per_day}{' +bf' if self.backfill else ''}"


@dataclass
class Figures:
    """What the table prints for one policy in one scenario (times in seconds)."""

    tenants: int
    docs_per_day: int
    backfill: bool
    policy: str
    tokens_asked: int
    tokens_granted: int
    within_budget: bool
    budget_spent_day: int | None
    stall_days: list[int]
    arrived: int
    delivered_in_month: int
    live_p50: float
    live_p95: float
    live_max: float
    live_max_is_lower_bound: bool
    live_undelivered: int
    backfill_delivered_in_month: int
    backfill_done_day: float | None
    ratio_p50: float | None = None
    ratio_p95: float | None = None
    calls_per_doc: float = 0.0
    busiest_day_quota: float = 0.0
    newcomer_calls: float = math.nan
    founders_calls: float = math.nan
    founders_calls_worst: float = math.nan
    late_polls: int = 0
    tokens_without_quota: int = 0
    expired: int = 0
    seconds: float = 0.0
    per_tenant_new_calls: list[float | None] = field(default_factory=list)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    if not ordered:
        return math.nan
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def stalled_days(record: RunRecord, month_end: float) -> list[int]:
    """Days (1-based) of the month with live work waiting and no call made."""
    days = int(month_end // DAY)
    waiting = [0] * (days + 1)
    for document in record.documents:
        if not document.live:
            continue
        end = document.done_at if document.done_at is not None else record.ended_at
        first = int(document.arrived // DAY)
        last = min(days - 1, int(min(end, month_end - 1e-6) // DAY))
        if first <= last:
            waiting[first] += 1
            waiting[last + 1] -= 1
    stalls, running = [], 0
    for day in range(days):
        running += waiting[day]
        if running > 0 and record.calls_by_day[day] == 0:
            stalls.append(day + 1)
    return stalls


def new_tenant_calls(record: RunRecord, tenants: int) -> list[float | None]:
    """Per tenant, calls per document over its first 20 uploads (those delivered)."""
    calls = [0] * tenants
    counted = [0] * tenants
    for document in record.documents:
        if 0 <= document.upload_rank < NEW_TENANT_DOCS and document.done_at is not None:
            calls[document.tenant] += document.calls
            counted[document.tenant] += 1
    return [c / n if n else None for c, n in zip(calls, counted, strict=True)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def figures_of(
    scenario: Scenario, policy: str, record: RunRecord, workload: Workload, limits: ApiLimits
) -> Figures:
    month_end = workload.month_end
    latencies = live_latencies(record)
    ordered = sorted(value for value, _ in latencies.values())
    worst = max(latencies.values(), default=(0.0, False))
    backfill = [d for d in record.documents if not d.live]
    backfill_done = [d.done_at for d in backfill if d.done_at is not None]
    finished = [d for d in record.documents if d.done_at is not None]
    new_calls = new_tenant_calls(record, workload.tenants)
    newcomer = None if workload.newcomer is None else new_calls[workload.newcomer]
    founders = [c for n, c in enumerate(new_calls) if c is not None and n != workload.newcomer]
    granted = record.tokens_by_window[0]
    spent = record.budget_spent_at
    return Figures(
        tenants=scenario.tenants,
        docs_per_day=scenario.docs_per_day,
        backfill=scenario.backfill,
        policy=policy,
        tokens_asked=granted + record.tokens_refused,
        tokens_granted=granted,
        within_budget=record.tokens_refused == 0 and granted <= limits.token_budget,
        budget_spent_day=None if spent is None or spent >= month_end else int(spent // DAY) + 1,
        stall_days=stalled_days(record, month_end),
        arrived=len(record.documents),
        delivered_in_month=delivered(record.documents, month_end),
        live_p50=percentile(ordered, 0.50),
        live_p95=percentile(ordered, 0.95),
        live_max=worst[0],
        live_max_is_lower_bound=worst[1],
        live_undelivered=sum(1 for _, open_ in latencies.values() if open_),
        backfill_delivered_in_month=delivered(backfill, month_end),
        backfill_done_day=(
            max(backfill_done) / DAY if backfill and len(backfill_done) == len(backfill) else None
        ),
        calls_per_doc=sum(d.calls for d in finished) / len(finished) if finished else math.nan,
        busiest_day_quota=max(record.calls_by_day[: int(month_end // DAY)]) / limits.daily_quota,
        newcomer_calls=math.nan if newcomer is None else newcomer,
        founders_calls=_mean(founders),
        founders_calls_worst=max(founders, default=math.nan),
        late_polls=sum(
            1
            for d in record.documents
            if d.live
            and d.done_at is not None
            and d.uploaded is not None
            and d.done_at - d.uploaded > LATE_POLL_SECONDS
        ),
        tokens_without_quota=record.tokens_without_quota,
        expired=record.expired,
        per_tenant_new_calls=[None if c is None else round(c, 3) for c in new_calls],
    )


def backfill_ratios(
    with_backfill: RunRecord, without: RunRecord, workload: Workload
) -> tuple[float, float]:
    """p50 and p95 of live latency for the documents that arrived while the backfill ran
    (from its start to its last delivery, or the month's end), with it / without it."""
    start = workload.backfill_start
    done = [d.done_at for d in with_backfill.documents if not d.live]
    end = max(done) if done and None not in done else workload.month_end  # type: ignore[type-var]
    end = min(end, workload.month_end)  # type: ignore[type-var]
    behind = live_latencies(with_backfill)
    alone = live_latencies(without)
    arrived = {d.index for d in with_backfill.documents if d.live and start <= d.arrived < end}
    slow = sorted(behind[i][0] for i in arrived)
    fast = sorted(alone[i][0] for i in arrived)
    if not slow:
        return math.nan, math.nan
    return (
        percentile(slow, 0.5) / percentile(fast, 0.5),
        percentile(slow, 0.95) / percentile(fast, 0.95),
    )


def run_policy(
    policy: str,
    workload: Workload,
    limits: ApiLimits,
    knobs: ServiceKnobs,
    args: argparse.Namespace,
) -> RunRecord:
    if policy == "naive":
        return NaiveLoop(workload, limits=limits, drain_days=args.drain_days, seed=args.seed).run()
    fleet = YfdocsFleet(
        workload,
        paced=policy == "pacer",
        limits=limits,
        knobs=knobs,
        drain_days=args.drain_days,
        seed=args.seed,
    )
    return fleet.run()


def run_pair(tenants: int, rate: int, policy: str, args: argparse.Namespace) -> list[Figures]:
    """One policy on one (tenants, rate), without and with the backfill: the same live
    documents, so their latency while the backfill ran can be compared."""
    limits = ApiLimits(
        daily_quota=args.daily_quota,
        token_budget=args.token_budget,
        token_lifetime=args.token_lifetime,
    )
    knobs = ServiceKnobs(refit_after=args.refit_after)
    records: dict[bool, RunRecord] = {}
    found = []
    for backfill in (False, True):
        workload = make_workload(
            tenants=tenants,
            docs_per_day=rate,
            days=args.days,
            skew=args.skew,
            median=args.median,
            sigma=args.sigma,
            backfill_docs=args.backfill_docs if backfill else 0,
            backfill_day=args.backfill_day - 1,
            newcomer_docs=args.newcomer_docs,
            newcomer_day=args.newcomer_day - 1,
            seed=args.seed,
        )
        clock = time.perf_counter()
        records[backfill] = run_policy(policy, workload, limits, knobs, args)
        figures = figures_of(
            Scenario(tenants, rate, backfill), policy, records[backfill], workload, limits
        )
        figures.seconds = time.perf_counter() - clock
        if backfill:
            figures.ratio_p50, figures.ratio_p95 = backfill_ratios(
                records[True], records[False], workload
            )
        found.append(figures)
    return found


def run_all(
    args: argparse.Namespace, progress: Callable[[str], None]
) -> tuple[list[Figures], float]:
    """Every (tenants, rate) and policy, in `--jobs` processes; results in a fixed order."""
    pairs = QUICK if args.quick else [(t, r) for t in args.tenants for r in args.rates]
    units = [(tenants, rate, policy) for tenants, rate in pairs for policy in args.policies]
    started = time.perf_counter()
    results: dict[tuple[int, int, str], list[Figures]] = {}

    def report(unit: tuple[int, int, str], figures: list[Figures]) -> None:
        results[unit] = figures
        for f in figures:
            label = Scenario(f.tenants, f.docs_per_day, f.backfill).label
            progress(f"{label:<12} {f.policy:<6} {f.seconds:6.1f}s")

    if args.jobs <= 1:
        for unit in units:
            report(unit, run_pair(*unit, args))
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(run_pair, *unit, args): unit for unit in units}
            for future in as_completed(futures):
                report(futures[future], future.result())
    ordered = [f for unit in units for f in results[unit]]
    return ordered, time.perf_counter() - started


# -- the table ------------------------------------------------------------------------------


def duration(seconds: float, lower_bound: bool = False) -> str:
    """Seconds as the unit that reads best: 45s, 12m, 5.2h, 3.1d."""
    if math.isnan(seconds):
        return "-"
    mark = ">" if lower_bound else ""
    if seconds < 90:
        return f"{mark}{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{mark}{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{mark}{seconds / 3600:.1f}h"
    return f"{mark}{seconds / DAY:.1f}d"


def _number(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


_ratio = _number


COLUMNS = (
    ("scenario", 12, "<"),
    ("policy", 6, "<"),
    ("tokens", 9, ">"),
    ("spent", 5, ">"),
    ("stall", 5, ">"),
    ("delivered", 12, ">"),
    ("p50", 6, ">"),
    ("p95", 6, ">"),
    ("max", 6, ">"),
    ("bf x p50", 8, ">"),
    ("bf x p95", 8, ">"),
    ("calls", 5, ">"),
    ("quota", 5, ">"),
    ("new20", 5, ">"),
    ("start20", 9, ">"),
    ("late", 5, ">"),
    ("t/noq", 5, ">"),
)


def _row(cells: list[str]) -> str:
    return "  ".join(
        f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True)
    ).rstrip()


def table(results: list[Figures], limits: ApiLimits, newcomer_day: float) -> str:
    lines = [
        _row([name for name, _, _ in COLUMNS]),
        "-" * len(_row([name for name, _, _ in COLUMNS])),
    ]
    previous = None
    for f in results:
        key = (f.tenants, f.docs_per_day)
        if previous is not None and key != previous:
            lines.append("")
        previous = key
        scenario = Scenario(f.tenants, f.docs_per_day, f.backfill)
        tokens = f"{f.tokens_asked}" + ("" if f.within_budget else "!")
        lines.append(
            _row(
                [
                    scenario.label,
                    f.policy,
                    tokens,
                    "-" if f.budget_spent_day is None else f"d{f.budget_spent_day}",
                    str(len(f.stall_days)),
                    f"{f.delivered_in_month}/{f.arrived}",
                    duration(f.live_p50),
                    duration(f.live_p95),
                    duration(f.live_max, f.live_max_is_lower_bound),
                    _ratio(f.ratio_p50),
                    _ratio(f.ratio_p95),
                    f"{f.calls_per_doc:.2f}",
                    f"{100 * f.busiest_day_quota:.0f}%",
                    _number(f.newcomer_calls),
                    f"{_number(f.founders_calls)}/{_number(f.founders_calls_worst)}",
                    str(f.late_polls),
                    str(f.tokens_without_quota),
                ]
            )
        )
    lines += [
        "",
        f"tokens: requests asked in the month ('!': more than the budget of "
        f"{limits.token_budget}, the rest refused); spent: the day the budget ran out",
        "stall: days with live work waiting and no call made; delivered: within the month, "
        "of all documents (live + backfill)",
        "p50/p95/max: live delivery latency, arrival to recorded complete ('>': still waiting "
        "when the run ended)",
        f"bf x: live latency while the backfill ran / the same documents without it "
        f"(goal <= {RATIO_GOAL})",
        "calls: per delivered document; quota: the busiest day's share of the daily quota",
        f"new20: calls per document over the first {NEW_TENANT_DOCS} uploads of a tenant that "
        f"joins on day {newcomer_day:.0f} (goal <= {NEW_TENANT_GOAL}); start20: the same for the "
        "founding tenants,",
        "  average/worst, who start on day 1 with nothing known (the first ones on the plain "
        "schedule, 30 s then x2)",
        "late: live documents recorded complete more than an hour after their upload (the "
        "poll waited for a window or a quota day)",
        "t/noq: tokens fetched when the day's quota was already spent",
    ]
    return "\n".join(lines)


def _without_nan(fields: dict[str, object]) -> dict[str, object]:
    """NaN (a figure with nothing to measure) as null: JSON has no NaN."""
    return {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in fields.items()
    }


def _numbers(text: str, kind: type) -> tuple:
    return tuple(kind(part) for part in text.split(",") if part)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK} (tenants, docs/day)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=1, help="processes to run scenarios in")
    parser.add_argument("--tenants", type=lambda s: _numbers(s, int), default=TENANT_COUNTS)
    parser.add_argument("--rates", type=lambda s: _numbers(s, int), default=DAILY_RATES)
    parser.add_argument(
        "--policies", type=lambda s: tuple(s.split(",")), default=POLICIES, help="today,pacer,naive"
    )
    parser.add_argument("--median", type=float, default=30.0, help="ticket time median, s")
    parser.add_argument("--sigma", type=float, default=0.5, help="ticket time lognormal sigma")
    parser.add_argument("--skew", type=float, default=0.0, help="tenant shares ~ 1/rank**skew")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--drain-days", type=float, default=10.0)
    parser.add_argument("--backfill-docs", type=int, default=10_000)
    parser.add_argument("--backfill-day", type=float, default=10.0, help="1-based")
    parser.add_argument("--newcomer-docs", type=int, default=NEW_TENANT_DOCS)
    parser.add_argument("--newcomer-day", type=float, default=15.0, help="1-based")
    parser.add_argument("--daily-quota", type=int, default=6000)
    parser.add_argument("--token-budget", type=int, default=400)
    parser.add_argument("--token-lifetime", type=float, default=3600.0)
    parser.add_argument(
        "--refit-after", type=int, default=200, help="new outcomes before a learned tenant refits"
    )
    args = parser.parse_args(argv)
    unknown = set(args.policies) - set(POLICIES)
    if unknown:
        parser.error(f"unknown policies: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results, wall = run_all(args, progress)
    if args.json:
        figures = [_without_nan(asdict(f)) for f in results]
        print(json.dumps({"wall_seconds": wall, "results": figures}, allow_nan=False))
        return 0
    print(
        f"One month ({args.days:.0f} days) per scenario, seed {args.seed}; ticket times "
        f"lognormal(median {args.median:.0f} s, sigma {args.sigma}); skew {args.skew}; "
        f"backfill {args.backfill_docs} docs of tenant 1 from day {args.backfill_day:.0f}"
    )
    print(table(results, ApiLimits(token_budget=args.token_budget), args.newcomer_day))
    print(f"\nwall time {wall:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
