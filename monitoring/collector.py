"""The fleet's domain metrics, computed from the database on every scrape.

Flower knows the tasks one Flower process has seen since it started; Celery's exporters
know the broker. Neither knows whether Jan's diploma is still waiting, how much of today's
API quota is left, or whether any worker is consuming at all. The database, which is the
record for every process of the fleet, does: `FleetCollector` queries it when Prometheus
scrapes (a handful of aggregate queries, no rows fetched), so every exporter of a fleet
reports the same numbers and one of them is enough.

What it exports (names follow celery-exporter where it has one: `celery_worker_up`,
`celery_task_succeeded_total`, `celery_task_failed_total`):

- jobs: `yfdocs_jobs{state,tenant}` (every state for each tenant); the age of the oldest
  undelivered job, `yfdocs_oldest_waiting_job_age_seconds{priority="live|backfill"}` (0
  when none waits); `yfdocs_ticket_processing_seconds`, a histogram of delivered tickets
  from the upload to the poll that saw `Complete`;
- steps, from the job history: `yfdocs_uploads_total{outcome}` (uploaded, retried,
  deferred, failed) and `yfdocs_polls_total{outcome}` (complete, failed, expired,
  in_progress, check_failed, deferred), and the same steps as celery-exporter counts
  their tasks, `celery_task_succeeded_total{name}` and `celery_task_failed_total{name}`
  (a step whose job ended `failed` or `expired` ends its task as FAILURE). Counted from
  the record, they hold for the whole fleet and survive restarts, but carry no
  `hostname` label; a duplicated message that finds its job moved on records nothing
  and is not counted;
- the ledger: `yfdocs_api_calls_total{kind,status}` (completed calls; status 2xx, 4xx,
  429, 5xx, ..., or none when no answer came), `yfdocs_api_rate_limited_total{limit}`
  (spike, parallel, quota, unnamed);
- budgets: `yfdocs_api_quota_limit`, `_used`, `_remaining` and
  `yfdocs_api_quota_resets_timestamp_seconds`; `yfdocs_token_requests_used`,
  `yfdocs_token_requests_budget`, `yfdocs_token_budget_elapsed_ratio` (the share of the
  token budget window that has passed); the governor's `yfdocs_api_backoff_active` and
  `yfdocs_api_learned_spacing_seconds`;
- the dispatcher and its token pacer, as `yfdocs status --fleet` shows them
  (`scheduling.usage.delivery_outlook`): `yfdocs_token_requests_left` (the budget less
  the requests made and granted), `yfdocs_token_grants_pending` (granted, not yet
  fetched), `yfdocs_token_requests_allowance` (what the pacer lets the window have
  requested by now: its even line plus its burst), `yfdocs_token_requests_reserve`,
  `yfdocs_token_pace_per_day`; `yfdocs_delivery_windows_open` (tenants holding a token
  now) and `yfdocs_backlog_jobs{class="poll|live|backfill_or_retry"}` (the work waiting,
  in the dispatcher's order);
- workers, from their heartbeats: `celery_worker_up{hostname}` (1 while fresh),
  `yfdocs_workers_consuming`, `yfdocs_worker_last_seen_seconds` (since any worker's
  last beat; absent before the first);
- the scrape: `yfdocs_database_up` (0, and nothing else, when the database did not
  answer) and `yfdocs_metrics_scrape_duration_seconds`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from config import Settings
from messaging import POLL_TASK, UPLOAD_TASK
from models import Priority, utcnow
from models import jobs as job_table
from models import workers as worker_table
from scheduling import ledger
from scheduling.policy.windows import budget_window
from scheduling.token_windows import outstanding_grants, token_pace
from scheduling.usage import delivery_outlook, fleet_usage

__all__ = ["TICKET_BUCKETS", "FleetCollector", "status_class"]

log = logging.getLogger(__name__)

# Seconds from upload to `Complete`: the API says up to hours, most take a minute or two.
TICKET_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
RATE_LIMITS = ("spike", "parallel", "quota")

# The step outcomes that end the task as FAILURE (the job ended `failed` or `expired`);
# every other recorded outcome ends it as SUCCESS (`worker.task_results.report`).
STEP_TASKS = {"upload": UPLOAD_TASK, "poll": POLL_TASK}
FAILED_TASK_OUTCOMES = frozenset({("upload", "failed"), ("poll", "failed"), ("poll", "expired")})


def status_class(status_code: int | None) -> str:
    """The status label of a call: 429 on its own, else its class; `none` without answer."""
    if status_code is None:
        return "none"
    if status_code == 429:
        return "429"
    return f"{status_code // 100}xx"


class FleetCollector(Collector):
    """A Prometheus collector that reads the fleet's numbers from the database per scrape."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock

    def describe(self) -> list[Metric]:
        """Nothing: registering the collector must not query the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        try:
            families = list(self._families(self._clock()))
            up = 1.0
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer: %s", exc)
            families, up = [], 0.0
        yield from families
        yield GaugeMetricFamily(
            "yfdocs_database_up", "1 if the database answered this scrape's queries", value=up
        )
        yield GaugeMetricFamily(
            "yfdocs_metrics_scrape_duration_seconds",
            "How long this scrape's database queries took",
            value=time.monotonic() - started,
        )

    def _families(self, now: datetime) -> Iterator[Metric]:
        yield self._jobs()
        yield from self._steps()
        yield self._ticket_times()
        yield self._oldest_waiting(now)
        yield from self._api_calls()
        yield from self._budgets(now)
        yield from self._dispatch(now)
        yield from self._workers(now)

    def _jobs(self) -> Metric:
        family = GaugeMetricFamily(
            "yfdocs_jobs", "Jobs by state and tenant", labels=["state", "tenant"]
        )
        for (state, tenant), count in sorted(
            job_table.counts_by_state_and_tenant(self._engine).items()
        ):
            family.add_metric([state, tenant], count)
        return family

    def _steps(self) -> Iterator[Metric]:
        families = {
            "upload": CounterMetricFamily(
                "yfdocs_uploads",
                "Upload steps by outcome, from the job history",
                labels=["outcome"],
            ),
            "poll": CounterMetricFamily(
                "yfdocs_polls",
                "Poll steps by outcome, from the job history",
                labels=["outcome"],
            ),
        }
        tasks = {
            False: CounterMetricFamily(
                "celery_task_succeeded",
                "Upload and poll tasks that ended SUCCESS, from the job history",
                labels=["name"],
            ),
            True: CounterMetricFamily(
                "celery_task_failed",
                "Upload and poll tasks that ended FAILURE (the job failed or expired), "
                "from the job history",
                labels=["name"],
            ),
        }
        by_task: dict[tuple[bool, str], int] = {
            (failed, task): 0 for failed in (False, True) for task in STEP_TASKS.values()
        }
        for (step, outcome), count in job_table.step_outcome_counts(self._engine).items():
            families[step].add_metric([outcome], count)
            by_task[((step, outcome) in FAILED_TASK_OUTCOMES, STEP_TASKS[step])] += count
        for (failed, task), count in by_task.items():
            tasks[failed].add_metric([task], count)
        yield from families.values()
        yield from tasks.values()

    def _ticket_times(self) -> Metric:
        histogram = job_table.ticket_duration_histogram(self._engine, TICKET_BUCKETS)
        buckets = [
            (f"{bound:g}", count)
            for bound, count in zip(histogram.bounds, histogram.cumulative, strict=True)
        ]
        buckets.append(("+Inf", histogram.count))
        return HistogramMetricFamily(
            "yfdocs_ticket_processing_seconds",
            "How long delivered tickets took, from the upload to the poll that saw Complete",
            buckets=buckets,
            sum_value=histogram.total_seconds,
        )

    def _oldest_waiting(self, now: datetime) -> Metric:
        family = GaugeMetricFamily(
            "yfdocs_oldest_waiting_job_age_seconds",
            "Age of the oldest undelivered job (queued, uploading or polling) by priority, "
            "since it was handed over or last retried; 0 when none waits",
            labels=["priority"],
        )
        waiting = job_table.oldest_waiting_since(self._engine)
        for priority in Priority:
            since = waiting.get(int(priority))
            age = max(0.0, (now - since).total_seconds()) if since is not None else 0.0
            family.add_metric([priority.name.lower()], age)
        return family

    def _api_calls(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "yfdocs_api_calls",
            "Completed Youforce API calls in the ledger, by kind and answer",
            labels=["kind", "status"],
        )
        by_class: dict[tuple[str, str], int] = {}
        for (kind, status_code), count in ledger.completed_call_counts(self._engine).items():
            key = (kind, status_class(status_code))
            by_class[key] = by_class.get(key, 0) + count
        for (kind, status), count in sorted(by_class.items()):
            calls.add_metric([kind, status], count)
        yield calls
        refused = CounterMetricFamily(
            "yfdocs_api_rate_limited",
            "API calls refused with a 429, by the limit the API named",
            labels=["limit"],
        )
        counts = ledger.rate_limited_counts(self._engine)
        for limit in RATE_LIMITS:
            refused.add_metric([limit], counts.get(limit, 0))
        refused.add_metric(
            ["unnamed"], sum(n for name, n in counts.items() if name not in RATE_LIMITS)
        )
        yield refused

    def _budgets(self, now: datetime) -> Iterator[Metric]:
        settings = self._settings
        usage = fleet_usage(
            self._engine,
            daily_quota=settings.daily_quota,
            token_monthly_budget=settings.token_monthly_budget,
            now=now,
            quota_timezone=settings.quota_timezone,
            quota_window_seconds=settings.quota_window,
            token_budget_window=settings.token_budget_window,
        )
        yield _gauge(
            "yfdocs_api_quota_limit", "API calls the quota allows a day", usage.daily_quota
        )
        yield _gauge("yfdocs_api_quota_used", "API calls counted today", usage.calls_today)
        yield _gauge("yfdocs_api_quota_remaining", "API calls left today", usage.quota_left)
        yield _gauge(
            "yfdocs_api_quota_resets_timestamp_seconds",
            "When today's quota window ends (Unix time)",
            usage.quota_resets_at.timestamp(),
        )
        yield _gauge(
            "yfdocs_api_backoff_active",
            "1 while the fleet waits out a 429",
            1.0 if usage.backoff_until is not None else 0.0,
        )
        yield _gauge(
            "yfdocs_api_learned_spacing_seconds",
            "What spike-arrest 429s added to the interval between calls",
            usage.learned_spacing_s,
        )
        yield _gauge(
            "yfdocs_token_requests_used",
            "Token requests made in this token budget window",
            usage.token_requests_this_month,
        )
        yield _gauge(
            "yfdocs_token_requests_budget",
            "Token requests the budget window allows",
            usage.token_monthly_budget,
        )
        start, end = budget_window(now, settings.quota_timezone, settings.token_budget_window)
        elapsed = (now - start).total_seconds() / max(1.0, (end - start).total_seconds())
        yield _gauge(
            "yfdocs_token_budget_elapsed_ratio",
            "How much of the token budget window has passed (0 to 1)",
            min(1.0, max(0.0, elapsed)),
        )

    def _dispatch(self, now: datetime) -> Iterator[Metric]:
        settings = self._settings
        with self._engine.connect() as connection:
            pace = token_pace(connection, settings, now)  # its `used` counts grants too
            pending = len(outstanding_grants(connection, now))
        outlook = delivery_outlook(self._engine, settings, now)
        yield _gauge(
            "yfdocs_token_requests_left",
            "Token requests left in the budget window, less those granted and not yet made",
            max(0, pace.budget - pace.used),
        )
        yield _gauge(
            "yfdocs_token_grants_pending",
            "Token requests the pacer granted that no worker has made yet",
            pending,
        )
        yield _gauge(
            "yfdocs_token_requests_allowance",
            "Token requests the pacer allows the budget window to have had by now "
            "(its even line plus its burst; live work may spend the reserve in the last day)",
            pace.line + pace.burst,
        )
        yield _gauge(
            "yfdocs_token_requests_reserve",
            "Token requests the pacer keeps back for refused credentials and revoked tokens",
            pace.reserve,
        )
        yield _gauge(
            "yfdocs_token_pace_per_day",
            "The pacer's pace from now on: tokens a day it may grant to the window's end",
            round(pace.per_day(), 4),
        )
        yield _gauge(
            "yfdocs_delivery_windows_open",
            "Tenants whose token is valid now: their work may run",
            sum(1 for window in outlook.windows if window.open_until is not None),
        )
        backlog = GaugeMetricFamily(
            "yfdocs_backlog_jobs",
            "Jobs waiting for the dispatcher, by class in its order: polls, live uploads, "
            "backfill and retries",
            labels=["class"],
        )
        for name, count in outlook.backlog_by_class.items():
            backlog.add_metric([name], count)
        yield backlog

    def _workers(self, now: datetime) -> Iterator[Metric]:
        rows = worker_table.heartbeats(self._engine)
        up = GaugeMetricFamily(
            "celery_worker_up",
            "1 while the worker's heartbeat in the database is fresh",
            labels=["hostname"],
        )
        consuming = 0
        for row in rows:
            alive = worker_table.is_consuming(row, now)
            consuming += alive
            up.add_metric([row.hostname], 1.0 if alive else 0.0)
        yield up
        yield _gauge("yfdocs_workers_consuming", "Workers whose heartbeat is fresh", consuming)
        if rows:
            newest = max(row.last_seen_at for row in rows)
            yield _gauge(
                "yfdocs_worker_last_seen_seconds",
                "Seconds since any worker last recorded its heartbeat",
                max(0.0, (now - newest).total_seconds()),
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
