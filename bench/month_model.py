"""The engines behind `bench.month`: one month of deliveries on a simulated clock.

Two engines share one workload (`Workload`) and one record (`RunRecord`):

- `YfdocsFleet` drives the service's real policy functions: `choose_work`, `room_in_broker`,
  `TokenPace`, `most_urgent`, `upload_wait` and the poll planner's `PollPlan` fed by
  `TicketDurationModel.fit`, the way `scheduling.dispatcher`, `scheduling.quota_policy`,
  `scheduling.poll_planner` and the worker's steps combine them (the few lines of those
  modules that are not pure functions are mirrored here: which tenants have a window, how
  long one has waited, the quota check before a grant, the live documents still to come
  today, the first-poll delay that closes a window to uploads). `paced=False` is the
  service before the pacer: a token is
  fetched whenever work waits for a tenant whose token is gone, and work runs in the order
  of its priority field;
- `NaiveLoop` is the plain loop of `bench.baseline_loop`: three threads take documents in
  arrival order, each uploads one and polls it every 10 s until it is done.

`bench.month` explains the model and turns records into figures.
"""

from __future__ import annotations

import bisect
import heapq
import inspect
import itertools
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from config import Settings
from scheduling.policy.dispatch import Candidate, WorkClass, choose_work, room_in_broker
from scheduling.policy.pacing import TenantDemand, TokenPace, most_urgent
from scheduling.policy.poll_plan import DurationObservation, PollPlan, TicketDurationModel
from scheduling.policy.quota import CALLS_PER_LIVE_DOCUMENT, upload_wait
from scheduling.policy.retry import PollSchedule
from scheduling.poll_planner import COLD_START_REFRESH_SECONDS, PollPlanner
from scheduling.token_windows import GRANT_SECONDS

__all__ = [
    "DAY",
    "ApiLimits",
    "Document",
    "NaiveLoop",
    "RunRecord",
    "ServiceKnobs",
    "Workload",
    "YfdocsFleet",
    "make_workload",
]

DAY = 86_400.0
BASE = datetime(2025, 6, 1, tzinfo=UTC)  # a 30-day calendar month, so both windows agree
NEVER = -math.inf
NAIVE_POLL_EVERY = 10.0
NAIVE_THREADS = 3


def at(seconds: float) -> datetime:
    """The simulated clock's `seconds` as the aware datetime the policy functions take."""
    return BASE + timedelta(seconds=seconds)


def seconds_of(moment: datetime) -> float:
    return (moment - BASE).total_seconds()


def _setting(name: str) -> object:
    return Settings.model_fields[name].default


def _planner_default(name: str) -> object:
    return inspect.signature(PollPlanner.__init__).parameters[name].default


@dataclass(frozen=True)
class ApiLimits:
    """The API's budgets for one app, all tenants together."""

    daily_quota: int = 6000
    call_spacing: float = 0.6  # one call every 0.6 s is the 100 a minute
    token_budget: int = 400
    budget_window_days: float = 30.0
    token_lifetime: float = 3600.0

    @property
    def budget_window(self) -> float:
        return self.budget_window_days * DAY


@dataclass(frozen=True)
class ServiceKnobs:
    """The service's settings that shape a month, read from `config.Settings` and
    `scheduling.poll_planner` so that the simulation follows their defaults."""

    max_concurrency: int = field(default_factory=lambda: int(_setting("max_concurrency")))
    ready_factor: float = field(default_factory=lambda: float(_setting("dispatch_ready_factor")))
    token_reserve: float = field(default_factory=lambda: float(_setting("token_reserve")))
    refresh_margin: float = field(default_factory=lambda: float(_setting("token_refresh_margin")))
    poll_first_delay: float = field(default_factory=lambda: float(_setting("poll_first_delay")))
    poll_max_delay: float = field(default_factory=lambda: float(_setting("poll_max_delay")))
    poll_deadline: float = field(default_factory=lambda: float(_setting("poll_deadline")))
    planner_window: int = field(default_factory=lambda: int(_planner_default("window")))
    min_observations: int = field(default_factory=lambda: int(_planner_default("min_observations")))
    refresh_seconds: float = field(
        default_factory=lambda: float(_planner_default("refresh_seconds"))
    )
    cold_refresh_seconds: float = COLD_START_REFRESH_SECONDS
    grant_seconds: float = GRANT_SECONDS
    refit_after: int = 200  # see `TenantPlanner.model_for`
    tenant_weights: dict[str, float] = field(default_factory=dict)


# -- the workload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What arrives in a month: live documents (time, tenant, ticket duration) and the
    backfill (tenant, start, durations). The same for every policy, so they compare."""

    tenants: int  # the founding tenants and, if any, the newcomer (the last)
    live: tuple[tuple[float, int, float], ...]
    newcomer: int | None
    backfill_tenant: int
    backfill_start: float
    backfill_durations: tuple[float, ...]
    days: float

    @property
    def month_end(self) -> float:
        return self.days * DAY


def tenant_shares(tenants: int, skew: float) -> list[float]:
    """Each tenant's share of the arrivals: equal, or falling as 1 / rank**skew."""
    weights = [1.0 / (rank + 1) ** skew for rank in range(tenants)]
    total = sum(weights)
    return [w / total for w in weights]


def make_workload(
    *,
    tenants: int,
    docs_per_day: float,
    days: float,
    skew: float,
    median: float,
    sigma: float,
    backfill_docs: int,
    backfill_day: float,
    newcomer_docs: int,
    newcomer_day: float,
    seed: int,
) -> Workload:
    """Poisson arrivals over the month, tenants drawn by share; lognormal ticket times;
    and a newcomer, one more tenant whose `newcomer_docs` documents arrive at random
    times during `newcomer_day` (0-based), when the fleet has a history.

    Arrivals and durations come from streams seeded by the scenario alone, so the run
    with a backfill sees the very same live documents as the run without it.
    """
    arrivals = random.Random(f"arrivals-{seed}-{tenants}-{docs_per_day}-{skew}")
    durations = random.Random(f"durations-{seed}-{tenants}-{docs_per_day}-{skew}")
    shares = list(itertools.accumulate(tenant_shares(tenants, skew)))
    mu = math.log(median)
    live = []
    now = 0.0
    rate = docs_per_day / DAY
    while True:
        now += arrivals.expovariate(rate)
        if now >= days * DAY:
            break
        tenant = min(tenants - 1, _bisect(shares, arrivals.random()))
        live.append((now, tenant, durations.lognormvariate(mu, sigma)))
    newcomer = random.Random(f"newcomer-{seed}-{median}-{sigma}")
    live += [
        ((newcomer_day + newcomer.random()) * DAY, tenants, newcomer.lognormvariate(mu, sigma))
        for _ in range(newcomer_docs)
    ]
    live.sort()
    backfill = random.Random(f"backfill-{seed}-{median}-{sigma}")
    return Workload(
        tenants=tenants + (1 if newcomer_docs else 0),
        live=tuple(live),
        newcomer=tenants if newcomer_docs else None,
        backfill_tenant=0,
        backfill_start=backfill_day * DAY,
        backfill_durations=tuple(backfill.lognormvariate(mu, sigma) for _ in range(backfill_docs)),
        days=days,
    )


def _bisect(cumulative: list[float], value: float) -> int:
    low, high = 0, len(cumulative)
    while low < high:
        middle = (low + high) // 2
        if cumulative[middle] <= value:
            low = middle + 1
        else:
            high = middle
    return low


# -- what a run leaves -----------------------------------------------------------------------


class Document:
    """One document's life: the fields the figures read, and the engine's bookkeeping."""

    __slots__ = (
        "arrived",
        "calls",
        "candidate",
        "done_at",
        "duration",
        "index",
        "last_running_at",
        "live",
        "polls",
        "tenant",
        "upload_rank",
        "uploaded",
        "waiting_since",
    )

    def __init__(self, index: int, tenant: int, live: bool, arrived: float, duration: float):
        self.index = index
        self.tenant = tenant
        self.live = live
        self.arrived = arrived
        self.duration = duration
        self.waiting_since = arrived  # when its next step became due
        self.uploaded: float | None = None
        self.polls = 0
        self.last_running_at: float | None = None
        self.done_at: float | None = None
        self.calls = 0
        self.upload_rank = -1  # its place among its tenant's uploads (0 for the first)
        self.candidate: Candidate | None = None


@dataclass
class RunRecord:
    """What one policy did in one scenario, for `bench.month` to reduce to figures."""

    documents: list[Document]
    calls_by_day: list[int]
    tokens_by_window: list[int]
    tokens_refused: int = 0
    budget_spent_at: float | None = None
    tokens_without_quota: int = 0  # fetched when the day's quota was already spent
    expired: int = 0
    ended_at: float = 0.0


def _documents(workload: Workload) -> tuple[list[Document], list[Document]]:
    live = [
        Document(index, tenant, True, arrived, duration)
        for index, (arrived, tenant, duration) in enumerate(workload.live)
    ]
    start = workload.backfill_start
    backfill = [
        Document(len(live) + n, workload.backfill_tenant, False, start, duration)
        for n, duration in enumerate(workload.backfill_durations)
    ]
    return live, backfill


class _Budgets:
    """The API's counters: calls per quota day, spacing, tokens per budget window."""

    def __init__(self, limits: ApiLimits, horizon: float) -> None:
        self.limits = limits
        self.calls_by_day = [0] * (int(horizon // DAY) + 2)
        self.tokens_by_window = [0] * (int(horizon // limits.budget_window) + 2)
        self.next_slot = 0.0
        self.refused = 0
        self.spent_at: float | None = None
        self.without_quota = 0

    def record(self, documents: list[Document], *, ended_at: float, expired: int = 0) -> RunRecord:
        """What the run spent, with its documents, for `bench.month` to reduce."""
        return RunRecord(
            documents=documents,
            calls_by_day=self.calls_by_day,
            tokens_by_window=self.tokens_by_window,
            tokens_refused=self.refused,
            budget_spent_at=self.spent_at,
            tokens_without_quota=self.without_quota,
            expired=expired,
            ended_at=ended_at,
        )

    def day_end(self, now: float) -> float:
        return (math.floor(now / DAY) + 1) * DAY

    def quota_left(self, now: float) -> int:
        return max(0, self.limits.daily_quota - self.calls_by_day[int(now // DAY)])

    def spend_call(self, now: float) -> None:
        self.calls_by_day[int(now // DAY)] += 1
        self.next_slot = now + self.limits.call_spacing

    def window_of(self, now: float) -> tuple[float, float]:
        length = self.limits.budget_window
        start = math.floor(now / length) * length
        return start, start + length

    def tokens_used(self, now: float) -> int:
        return self.tokens_by_window[int(now // self.limits.budget_window)]

    def request_token(self, now: float) -> bool:
        """One token request: True if granted, False if the month's budget is spent."""
        index = int(now // self.limits.budget_window)
        if self.tokens_by_window[index] >= self.limits.token_budget:
            self.refused += 1
            if self.spent_at is None:
                self.spent_at = now
            return False
        self.tokens_by_window[index] += 1
        if self.quota_left(now) == 0:
            self.without_quota += 1
        return True


# -- the poll planner per tenant -------------------------------------------------------------


class _CentreCachingPlan(PollPlan):
    """`PollPlan` with the first poll's centre computed once per fitted model.

    The centre is a pure function of the model, found by a 50-step bisection that costs
    about a millisecond; the simulation asks for it at every upload.
    """

    def first_poll_centre(self, model: TicketDurationModel) -> float:
        cached = _CENTRES.get(id(model))
        if cached is not None and cached[0] is model:
            return cached[1]
        if len(_CENTRES) > 4096:
            _CENTRES.clear()
        centre = super().first_poll_centre(model)
        _CENTRES[id(model)] = (model, centre)
        return centre


_CENTRES: dict[int, tuple[TicketDurationModel, float]] = {}


def service_plan(knobs: ServiceKnobs) -> PollPlan:
    """The plan as `PollPlanner.__init__` builds it from the settings."""
    base = _CentreCachingPlan()
    return replace(
        base,
        fallback=PollSchedule(
            first_delay=knobs.poll_first_delay,
            multiplier=base.fallback.multiplier,
            max_delay=knobs.poll_max_delay,
        ),
        min_observations=knobs.min_observations,
    )


class FleetOutcomes:
    """The fleet's last delivered tickets, the prior of a tenant that is still learning."""

    def __init__(self, window: int) -> None:
        self.recent: deque[DurationObservation] = deque(maxlen=window)
        self.total = 0

    def add(self, observation: DurationObservation) -> None:
        self.recent.append(observation)
        self.total += 1


class TenantPlanner:
    """`PollPlanner.model_for` for one tenant, on the simulated clock."""

    def __init__(self, knobs: ServiceKnobs, fleet: FleetOutcomes) -> None:
        self.knobs = knobs
        self.fleet = fleet
        self.own: deque[DurationObservation] = deque(maxlen=knobs.planner_window)
        self.own_total = 0
        self.model: TicketDurationModel | None = None
        self.fitted_at = NEVER
        self.refresh = 0.0
        self.cold = True
        self.fit_mark = -1
        self.fits = 0

    def add(self, observation: DurationObservation) -> None:
        self.own.append(observation)
        self.own_total += 1
        self.fleet.add(observation)

    def model_for(self, now: float) -> TicketDurationModel:
        """The tenant's model, reloaded when older than its refresh, as the planner does:
        its own last outcomes, or the fleet's pooled while it has fewer than
        `min_observations` of its own (reloaded every 5 s then).

        One shortcut, for speed: a model is refitted only when what it would be fitted on
        has changed, and a learned tenant's only after `refit_after` new outcomes (the
        planner refits every 60 s; a fit of 200 outcomes costs 10-60 ms here, and in a
        steady month a stale window moves calls per document by hundredths). Every fit is
        the real `TicketDurationModel.fit`.
        """
        model = self.model
        if model is not None and now - self.fitted_at < self.refresh:
            return model
        cold = len(self.own) < self.knobs.min_observations
        mark = self.fleet.total if cold else self.own_total
        unchanged = model is not None and cold == self.cold and mark == self.fit_mark
        nearly = (
            model is not None
            and not cold
            and not self.cold
            and mark - self.fit_mark < self.knobs.refit_after
        )
        if model is None or not (unchanged or nearly):
            observations = self.fleet.recent if cold else self.own
            model = TicketDurationModel.fit(observations)
            self.model = model
            self.cold = cold
            self.fit_mark = mark
            self.fits += 1
        self.fitted_at = now
        refresh = self.knobs.refresh_seconds
        self.refresh = min(refresh, self.knobs.cold_refresh_seconds) if cold else refresh
        return model


# -- yfdocs: the dispatcher, the steps and the budgets ---------------------------------------


class _Tenant:
    """One tenant's queues, token and planner."""

    __slots__ = (
        "backfill_polls",
        "backfill_uploads",
        "blocked_until",
        "grant_until",
        "index",
        "live_polls",
        "live_uploads",
        "name",
        "planner",
        "token_expires",
        "uploads",
    )

    def __init__(self, index: int, planner: TenantPlanner) -> None:
        self.index = index
        self.name = f"tenant-{index:02d}"
        self.live_uploads: deque[Document] = deque()
        self.backfill_uploads: deque[Document] = deque()
        self.live_polls: deque[Document] = deque()
        self.backfill_polls: deque[Document] = deque()
        self.token_expires = NEVER
        self.grant_until = NEVER
        self.blocked_until = NEVER  # today's policy: the budget refused it until then
        self.planner = planner
        self.uploads = 0

    def has_due(self) -> bool:
        return bool(
            self.live_polls or self.live_uploads or self.backfill_polls or self.backfill_uploads
        )

    def has_live_due(self) -> bool:
        return bool(self.live_polls or self.live_uploads)

    def queue_of(self, document: Document) -> deque[Document]:
        if document.uploaded is None:
            return self.live_uploads if document.live else self.backfill_uploads
        return self.live_polls if document.live else self.backfill_polls


class YfdocsFleet:
    """The service over one month: `paced` is the pacer's dispatcher, else today's."""

    def __init__(
        self,
        workload: Workload,
        *,
        paced: bool,
        limits: ApiLimits,
        knobs: ServiceKnobs,
        drain_days: float,
        seed: int,
    ) -> None:
        self.workload = workload
        self.paced = paced
        self.limits = limits
        self.knobs = knobs
        self.plan = service_plan(knobs)
        self.rng = random.Random(f"planner-{seed}")
        self.month_end = workload.month_end
        self.horizon = self.month_end + drain_days * DAY
        self.budgets = _Budgets(limits, self.horizon)
        self.fleet = FleetOutcomes(knobs.planner_window)
        self.tenants = [
            _Tenant(n, TenantPlanner(knobs, self.fleet)) for n in range(workload.tenants)
        ]
        self.live_docs, self.backfill_docs = _documents(workload)
        self.documents = self.live_docs + self.backfill_docs
        self.live_arrivals = [document.arrived for document in self.live_docs]
        self.next_arrival = 0
        self.backfill_injected = not self.backfill_docs
        self.timed_polls: list[tuple[float, int, Document]] = []
        self.deferred_uploads: list[Document] = []
        self.broker: deque[Document] = deque()
        self.polling = 0  # uploaded tickets still waiting for a status call that finds them done
        self.live_queued = 0  # live jobs not yet uploaded (the quota rule's waiting_before)
        self.live_pending = len(self.live_docs)
        self.expired = 0
        self.unmet_demand = False
        self.unmet_live = False
        self.grants_wait_for_quota = False  # no grant: the day's quota pays for no document
        self.windows_closing: list[float] = []  # when a window closed to uploads ends

    # -- the clock ---------------------------------------------------------------------------

    def run(self) -> RunRecord:
        now = 0.0
        while now < self.horizon:
            if now >= self.month_end and self.live_pending == 0:
                break
            if self.broker:
                now = max(now, self.budgets.next_slot)
                self._advance(now)
                self._execute(self.broker.popleft(), now)
                continue
            self._advance(now)
            if self._dispatch(now):
                continue
            now = self._next_wake(now)
        return self.budgets.record(
            self.documents, ended_at=min(now, self.horizon), expired=self.expired
        )

    def _advance(self, now: float) -> None:
        """Everything that became due by `now`: arrivals, the backfill, polls, the new day."""
        live = self.live_docs
        while self.next_arrival < len(live) and live[self.next_arrival].arrived <= now:
            document = live[self.next_arrival]
            self.tenants[document.tenant].live_uploads.append(document)
            self.live_queued += 1
            self.next_arrival += 1
        if not self.backfill_injected and self.workload.backfill_start <= now:
            self.tenants[self.workload.backfill_tenant].backfill_uploads.extend(self.backfill_docs)
            self.backfill_injected = True
        if self.deferred_uploads and self.deferred_uploads[0].waiting_since <= now:
            self._release_deferred_uploads()
        timed = self.timed_polls
        while timed and timed[0][0] <= now:
            due, _, document = heapq.heappop(timed)
            document.waiting_since = due
            document.candidate = None
            self.tenants[document.tenant].queue_of(document).append(document)

    def _release_deferred_uploads(self) -> None:
        """A new quota day: the uploads the quota rule held back are due again, due since
        the reset, each queue in the order `jobs.due_work` ranks uploads (created first)."""
        returning: dict[int, tuple[deque[Document], list[Document]]] = {}
        for document in self.deferred_uploads:
            document.candidate = None
            queue = self.tenants[document.tenant].queue_of(document)
            returning.setdefault(id(queue), (queue, []))[1].append(document)
        for queue, documents in returning.values():
            merged = sorted(itertools.chain(queue, documents), key=lambda d: d.index)
            queue.clear()
            queue.extend(merged)
        self.deferred_uploads = []

    def _next_wake(self, now: float) -> float:
        """The next moment a pass could decide differently."""
        moments = []
        if self.next_arrival < len(self.live_docs):
            moments.append(self.live_docs[self.next_arrival].arrived)
        if not self.backfill_injected:
            moments.append(self.workload.backfill_start)
        if self.timed_polls:
            moments.append(self.timed_polls[0][0])
        if self.deferred_uploads:
            moments.append(self.deferred_uploads[0].waiting_since)
        waiting = any(tenant.has_due() for tenant in self.tenants)
        if waiting:
            moments.append(self.budgets.window_of(now)[1])  # a new token budget
            if self.paced and self.unmet_demand:
                moments += self._pacer_moments(now)
            if self.paced and self.grants_wait_for_quota:
                moments.append(self.budgets.day_end(now))
            if self.paced:
                moments += self.windows_closing
            if not self.paced:
                moments += [t.blocked_until for t in self.tenants if t.has_due()]
        future = [moment for moment in moments if moment > now]
        return min(future) if future else self.horizon

    def _pacer_moments(self, now: float) -> list[float]:
        pace = self._pace(now)
        moments = [seconds_of(pace.next_allowed_at())]
        if self.unmet_live:
            moments.append(
                self.budgets.window_of(now)[1] - min(DAY, self.limits.budget_window / 30)
            )
        moments += [t.grant_until for t in self.tenants if t.grant_until > now]
        if moments[0] <= now:
            moments[0] = now + 1.0  # the dispatcher's next pass
        return moments

    # -- the dispatcher ----------------------------------------------------------------------

    def _pace(self, now: float) -> TokenPace:
        """The pacer's view, as `token_windows.token_pace` builds it: tokens requested in
        this budget window plus grants not yet taken."""
        start, end = self.budgets.window_of(now)
        pending = sum(1 for tenant in self.tenants if tenant.grant_until > now)
        return TokenPace(
            budget=self.limits.token_budget,
            used=self.budgets.tokens_used(now) + pending,
            reserve_fraction=self.knobs.token_reserve,
            window_start=at(start),
            window_end=at(end),
            now=at(now),
        )

    def _dispatch(self, now: float) -> bool:
        """One pass; True if it put work in the broker."""
        room = room_in_broker(
            fleet_concurrency=self.knobs.max_concurrency,
            ready_factor=self.knobs.ready_factor,
            in_broker=len(self.broker),
        )
        if room == 0:
            return False
        chosen = self._plan_paced(now, room) if self.paced else self._plan_today(now, room)
        for document in chosen:
            self.tenants[document.tenant].queue_of(document).remove(document)
            self.broker.append(document)
        return bool(chosen)

    def _plan_paced(self, now: float, room: int) -> list[Document]:
        """`scheduling.dispatcher.plan_dispatch`: windows, grants for the most urgent
        tenants (none while the day's quota cannot pay for a document), then `choose_work`
        among the tenants with a window (polls only where the window ends before a ticket
        uploaded now would be polled)."""
        self.unmet_demand = self.unmet_live = self.grants_wait_for_quota = False
        self.windows_closing = []
        due = [tenant for tenant in self.tenants if tenant.has_due()]
        if not due:
            return []
        margin = self.knobs.refresh_margin
        windows = {
            t.index for t in self.tenants if t.token_expires > now + margin or t.grant_until > now
        }
        closing = {t.index for t in due if self._closing_for_uploads(t, now)}
        self.windows_closing = [self.tenants[n].token_expires - margin for n in closing]
        needing = [tenant for tenant in due if tenant.index not in windows]
        pace = self._pace(now)
        if needing and self.budgets.quota_left(now) < CALLS_PER_LIVE_DOCUMENT:
            # `_calls_left_for_a_window`: a window now would spend a token on calls the
            # quota cannot pay; the next chance is the new quota day.
            self.grants_wait_for_quota = True
        elif needing and not pace.allows(live=True):
            # Nobody can have a grant now (other work is allowed less than live work):
            # every `grant_window` of the pass would say no.
            self.unmet_demand = True
            self.unmet_live = any(tenant.has_live_due() for tenant in needing)
        elif needing:
            by_name = {tenant.name: tenant for tenant in needing}
            demands = [
                TenantDemand(t.name, live=t.has_live_due(), waiting_since=self._arrival(t, room))
                for t in needing
            ]
            verdicts: dict[bool, bool] = {}  # one pace answers alike for alike demands
            for demand in most_urgent(demands):
                if demand.live not in verdicts:
                    verdicts[demand.live] = pace.allows(live=demand.live)
                if not verdicts[demand.live]:
                    self.unmet_demand = True
                    self.unmet_live = self.unmet_live or demand.live
                    continue
                tenant = by_name[demand.tenant_id]
                tenant.grant_until = now + self.knobs.grant_seconds
                windows.add(tenant.index)
                pace = self._pace(now)
                verdicts.clear()
        candidates: list[Candidate] = []
        for tenant in due:
            if tenant.index in windows:
                uploads = tenant.index not in closing
                candidates += [
                    self._candidate(document, work, tenant)
                    for document, work in self._due_documents(tenant, room)
                    if uploads or work is WorkClass.POLL
                ]
        chosen = choose_work(candidates, room, self.knobs.tenant_weights)
        return [self.documents[int(candidate.job_id)] for candidate in chosen]

    def _closing_for_uploads(self, tenant: _Tenant, now: float) -> bool:
        """`_windows_closing_for_uploads`: the tenant's open window (a valid token) ends,
        after the refresh margin, before a ticket uploaded now would be polled
        (`DispatcherLoop._first_poll_delay`). Asked only of a tenant with uploads due, the
        only one it changes anything for (the planner's cache is shared with the steps)."""
        if not (tenant.live_uploads or tenant.backfill_uploads):
            return False
        left = tenant.token_expires - self.knobs.refresh_margin - now
        if left <= 0 or left >= max(self.knobs.poll_max_delay, self.knobs.poll_first_delay):
            return False  # no open window, or one that outlasts any first delay
        model = tenant.planner.model_for(now)
        return left < self.plan.delay(model, 0, 0.0, draw=0.5)

    def _due_documents(self, tenant: _Tenant, room: int) -> list[tuple[Document, WorkClass]]:
        """What `jobs.due_work` returns for a tenant: its `room` oldest due polls, and its
        `room` oldest queued uploads of each priority."""
        polls = sorted(
            itertools.chain(
                itertools.islice(tenant.live_polls, room),
                itertools.islice(tenant.backfill_polls, room),
            ),
            key=lambda d: d.waiting_since,
        )[:room]
        found = [(d, WorkClass.POLL) for d in polls]
        found += [(d, WorkClass.LIVE_UPLOAD) for d in itertools.islice(tenant.live_uploads, room)]
        found += [
            (d, WorkClass.BACKFILL_OR_RETRY)
            for d in itertools.islice(tenant.backfill_uploads, room)
        ]
        return found

    def _arrival(self, tenant: _Tenant, room: int) -> datetime:
        """The tenant's place in line (`TenantDemand.waiting_since`): the arrival of the
        oldest document among its due work, not the due time a quota wait moved."""
        return at(min(document.arrived for document, _ in self._due_documents(tenant, room)))

    @staticmethod
    def _candidate(document: Document, work: WorkClass, tenant: _Tenant) -> Candidate:
        if document.candidate is None:
            document.candidate = Candidate(
                str(document.index), tenant.name, work, at(document.waiting_since)
            )
        return document.candidate

    def _plan_today(self, now: float, room: int) -> list[Document]:
        """Before the pacer: every tenant's due work (a tenant whose token request the
        budget refused waits its retry), live before backfill, oldest first."""
        found: list[tuple[int, float, int, Document]] = []
        for tenant in self.tenants:
            if tenant.blocked_until > now:
                continue
            for queue in (
                tenant.live_polls,
                tenant.live_uploads,
                tenant.backfill_polls,
                tenant.backfill_uploads,
            ):
                found += [
                    (0 if d.live else 1, d.waiting_since, d.index, d)
                    for d in itertools.islice(queue, room)
                ]
        found.sort(key=lambda item: item[:3])
        return [item[3] for item in found[:room]]

    # -- the steps ---------------------------------------------------------------------------

    def _execute(self, document: Document, now: float) -> None:
        if document.uploaded is None:
            self._upload(document, now)
        else:
            self._poll(document, now)

    def _token_ready(self, tenant: _Tenant, now: float) -> bool:
        """The token cache: the cached token if it outlives the margin, else one fetch:
        against the pacer's grant (paced), or whenever needed (today's)."""
        if tenant.token_expires > now + self.knobs.refresh_margin:
            return True
        if self.paced:
            if tenant.grant_until <= now:
                return False  # TokenWindowClosed: the job waits for the next window
            tenant.grant_until = NEVER
        elif tenant.blocked_until > now:
            return False
        if not self.budgets.request_token(now):
            end = self.budgets.window_of(now)[1]
            tenant.blocked_until = min(now + self.limits.token_lifetime, end)
            return False
        tenant.token_expires = now + self.limits.token_lifetime
        return True

    def _back_to_queue(self, document: Document) -> None:
        """Return work that could not start to its place: uploads in the order they were
        created, polls in the order they fell due (it was near the front)."""
        queue = self.tenants[document.tenant].queue_of(document)
        if document.uploaded is None:
            key = document.index
            place = next((n for n, d in enumerate(queue) if d.index > key), len(queue))
        else:
            due = document.waiting_since
            place = next((n for n, d in enumerate(queue) if d.waiting_since > due), len(queue))
        queue.insert(place, document)

    def _upload(self, document: Document, now: float) -> None:
        tenant = self.tenants[document.tenant]
        resets_at = self.budgets.day_end(now)
        wait = upload_wait(
            priority=0 if document.live else 1,
            quota_left=self.budgets.quota_left(now),
            polling_tickets=self.polling,
            waiting_before=0 if document.live else self.live_queued,
            resets_at=at(resets_at),
            live_expected_later=0.0 if document.live else self._live_expected_later(now),
        )
        if wait is not None:
            self._defer_upload(document, seconds_of(wait.until))
            if not self.paced:
                self._defer_queued_alike(document.live, seconds_of(wait.until))
            return
        if not self._token_ready(tenant, now):
            self._back_to_queue(document)
            return
        self.budgets.spend_call(now)
        document.calls = 1
        document.uploaded = now
        document.upload_rank = tenant.uploads
        tenant.uploads += 1
        self.polling += 1
        if document.live:
            self.live_queued -= 1
        model = tenant.planner.model_for(now)
        delay = self.plan.delay(model, 0, 0.0, draw=self.rng.random())
        self._schedule_poll(document, now + delay)

    def _live_expected_later(self, now: float) -> float:
        """`quota_policy.upload_must_wait`: the live documents created in the last quota
        window (a day here), times the share of the current one still to come."""
        since = bisect.bisect_left(self.live_arrivals, now - DAY)
        arrived = self.next_arrival - since
        return arrived * max(0.0, (self.budgets.day_end(now) - now) / DAY)

    def _defer_upload(self, document: Document, until: float) -> None:
        document.waiting_since = until
        document.candidate = None
        self.deferred_uploads.append(document)

    def _defer_queued_alike(self, live: bool, until: float) -> None:
        """Defer at once every queued upload the quota rule would defer today when its
        turn came: once a live upload must wait, quota left minus uploaded tickets only
        shrinks until the reset (a poll that finds its ticket done lowers both), so every
        live and backfill upload waits too. Once a backfill upload must wait, so does every
        queued backfill upload: a step that spends no call takes no time here, so they
        would all be tried within a few calls' time, while the calls kept for live work
        (those waiting, and those still to come today, which fall as the day goes by) move
        by less than a call. Only for today's policy, which asks no grants: the order of
        the deferrals changes nothing there, and it spares a step per queued job."""
        for tenant in self.tenants:
            queues = [tenant.live_uploads, tenant.backfill_uploads] if live else []
            queues = queues or [tenant.backfill_uploads]
            for queue in queues:
                while queue:
                    self._defer_upload(queue.popleft(), until)

    def _schedule_poll(self, document: Document, due: float) -> None:
        heapq.heappush(self.timed_polls, (due, document.index, document))

    def _poll(self, document: Document, now: float) -> None:
        tenant = self.tenants[document.tenant]
        if not self._token_ready(tenant, now):
            self._back_to_queue(document)
            return
        if self.budgets.quota_left(now) <= 0:
            self._schedule_poll(document, self.budgets.day_end(now))  # the governor defers
            return
        assert document.uploaded is not None
        self.budgets.spend_call(now)
        document.calls += 1
        document.polls += 1
        since = now - document.uploaded
        if since >= document.duration:
            lower = document.last_running_at
            tenant.planner.add(
                DurationObservation(0.0 if lower is None else lower - document.uploaded, since)
            )
            self._finish(document, now)
            return
        deadline = document.uploaded + self.knobs.poll_deadline
        if now >= deadline:
            self.expired += 1
            self._finish(document, now, delivered=False)
            return
        document.last_running_at = now
        model = tenant.planner.model_for(now)
        delay = self.plan.delay(model, document.polls, since, draw=self.rng.random())
        self._schedule_poll(document, min(now + delay, deadline))

    def _finish(self, document: Document, now: float, *, delivered: bool = True) -> None:
        self.polling -= 1
        if delivered:
            document.done_at = now
        if document.live:
            self.live_pending -= 1


# -- the naive loop --------------------------------------------------------------------------


class NaiveLoop:
    """Three threads, one shared FIFO of documents; each thread uploads a document and
    polls it every 10 s until it is done. A tenant's token is fetched when the cached one
    has expired. A 429 (quota spent) is waited out until the API's day resets."""

    def __init__(
        self, workload: Workload, *, limits: ApiLimits, drain_days: float, seed: int
    ) -> None:
        del seed  # nothing random in the loop itself
        self.workload = workload
        self.limits = limits
        self.month_end = workload.month_end
        self.horizon = self.month_end + drain_days * DAY
        self.budgets = _Budgets(limits, self.horizon)
        self.live_docs, self.backfill_docs = _documents(workload)
        self.documents = self.live_docs + self.backfill_docs
        self.token_expires = [NEVER] * workload.tenants
        self.blocked_until = [NEVER] * workload.tenants
        self.uploads = [0] * workload.tenants

    def run(self) -> RunRecord:
        queue: deque[Document] = deque()
        working: list[Document | None] = [None] * NAIVE_THREADS
        idle = list(range(NAIVE_THREADS))
        wakes: list[tuple[float, int]] = []
        arrivals = iter(self.live_docs)
        upcoming = next(arrivals, None)
        backfill_at = self.workload.backfill_start if self.backfill_docs else math.inf
        live_pending = len(self.live_docs)
        now = 0.0
        while True:
            moments = [wakes[0][0] if wakes else math.inf, backfill_at]
            moments.append(upcoming.arrived if upcoming is not None else math.inf)
            now = min(moments)
            if now >= self.horizon or (now >= self.month_end and live_pending == 0):
                break
            if upcoming is not None and upcoming.arrived == now:
                queue.append(upcoming)
                upcoming = next(arrivals, None)
                if idle:
                    heapq.heappush(wakes, (now, idle.pop()))
                continue
            if backfill_at == now:
                queue.extend(self.backfill_docs)
                backfill_at = math.inf
                while idle:
                    heapq.heappush(wakes, (now, idle.pop()))
                continue
            _, thread = heapq.heappop(wakes)
            if working[thread] is None:
                if not queue:
                    idle.append(thread)
                    continue
                working[thread] = queue.popleft()
            document = working[thread]
            assert document is not None
            wake, finished = self._step(document, now)
            if finished:
                working[thread] = None
                if document.live:
                    live_pending -= 1
            heapq.heappush(wakes, (wake, thread))
        return self.budgets.record(self.documents, ended_at=min(now, self.horizon))

    def _step(self, document: Document, now: float) -> tuple[float, bool]:
        """The thread's next call for its document: (when it acts next, whether done)."""
        tenant = document.tenant
        if self.token_expires[tenant] <= now:
            if self.blocked_until[tenant] > now:
                return self.blocked_until[tenant], False
            if not self.budgets.request_token(now):
                end = self.budgets.window_of(now)[1]
                self.blocked_until[tenant] = min(now + self.limits.token_lifetime, end)
                return self.blocked_until[tenant], False
            self.token_expires[tenant] = now + self.limits.token_lifetime
        call_at = max(now, self.budgets.next_slot)
        if self.budgets.quota_left(call_at) <= 0:
            return self.budgets.day_end(call_at), False
        self.budgets.spend_call(call_at)
        document.calls += 1
        if document.uploaded is None:
            document.uploaded = call_at
            document.upload_rank = self.uploads[tenant]
            self.uploads[tenant] += 1
            return call_at + NAIVE_POLL_EVERY, False
        document.polls += 1
        if call_at - document.uploaded >= document.duration:
            document.done_at = call_at
            return call_at, True
        return call_at + NAIVE_POLL_EVERY, False


def live_latencies(record: RunRecord) -> dict[int, tuple[float, bool]]:
    """Each live document's delivery latency, and whether it is only a lower bound (not
    delivered when the run ended)."""
    found = {}
    for document in record.documents:
        if not document.live:
            continue
        if document.done_at is not None:
            found[document.index] = (document.done_at - document.arrived, False)
        else:
            found[document.index] = (record.ended_at - document.arrived, True)
    return found


def delivered(documents: Iterable[Document], by: float) -> int:
    return sum(1 for d in documents if d.done_at is not None and d.done_at < by)
