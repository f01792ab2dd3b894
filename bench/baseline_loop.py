"""The baseline: the plain `requests` loop a team without yfdocs would write.

For each document: POST the v1.1 upload (multipart built by requests' `files=`, so the whole
body sits in memory), then GET the ticket status every 10 API seconds until it is no longer
InProgress. One token is fetched up front and again on a 401; `refresh_on_expiry` also
fetches a new one once `expires_in` has passed (what a client that reads `expires_in` does).
A 429 is answered the way such loops usually do: wait one API second and send the same call
again. Several threads take documents from one shared list; with `token_per_thread` each
thread keeps its own token, as separate processes would.

The other benchmarks import `run_baseline`; run alone it is what `bench.worker_memory`
measures (a separate process holding the same files):

    .venv/bin/python -m bench.baseline_loop --api-url URL --time-scale 10 --threads 3 FILE...
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID  # noqa: E402

PERSON_CODE = "191166"
DOCUMENT_TYPE = "certificate"
POLL_EVERY_API_S = 10.0
RETRY_429_API_S = 1.0
TIMEOUT = (5, 60)


@dataclass
class BaselineOutcome:
    """What the loop did: documents by final status, and how it spent its calls."""

    delivered: int = 0
    failed: int = 0
    calls: int = 0
    token_fetches: int = 0
    retries_after_429: int = 0
    first_call: float | None = None
    last_answer: float | None = None
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_call(self, started: float, ended: float) -> None:
        with self.lock:
            self.calls += 1
            self.first_call = started if self.first_call is None else min(self.first_call, started)
            self.last_answer = ended if self.last_answer is None else max(self.last_answer, ended)


class TokenHolder:
    """The token a process holds: fetched when missing, on a 401 and (optionally) on expiry."""

    def __init__(
        self,
        token_url: str,
        tenant_id: str,
        outcome: BaselineOutcome,
        *,
        time_scale: float,
        refresh_on_expiry: bool,
    ) -> None:
        self.token_url = token_url
        self.tenant_id = tenant_id
        self.outcome = outcome
        self.time_scale = time_scale
        self.refresh_on_expiry = refresh_on_expiry
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self, stale: str | None = None) -> str:
        with self._lock:
            expired = self.refresh_on_expiry and time.monotonic() >= self._expires_at
            if self._token is None or self._token == stale or expired:
                answer = requests.post(
                    self.token_url,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": DEFAULT_CLIENT_ID,
                        "client_secret": DEFAULT_CLIENT_SECRET,
                        "tenant_id": self.tenant_id,
                    },
                    headers={"Cache-Control": "no-cache"},
                    timeout=TIMEOUT,
                )
                answer.raise_for_status()
                body = answer.json()
                self._token = str(body["access_token"])
                # The sandbox states expires_in in the client's own seconds.
                self._expires_at = time.monotonic() + float(body["expires_in"])
                with self.outcome.lock:
                    self.outcome.token_fetches += 1
            return self._token


class BaselineClient:
    """Upload one document, then poll every 10 API seconds until it settles."""

    def __init__(
        self, api_url: str, tokens: TokenHolder, outcome: BaselineOutcome, *, time_scale: float
    ) -> None:
        self.api_url = api_url
        self.tokens = tokens
        self.outcome = outcome
        self.time_scale = time_scale
        self.session = requests.Session()

    def _call(self, method: str, url: str, **kwargs: object) -> requests.Response:
        token = self.tokens.get()
        while True:
            headers = {
                "Authorization": f"Bearer {token}",
                "X-Raet-Tenant-Id": self.tokens.tenant_id,
            }
            files = kwargs.get("files")
            if isinstance(files, dict):
                for _name, (_file_name, handle, _type) in files.items():
                    handle.seek(0)
            started = time.monotonic()
            answer = self.session.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]
            self.outcome.note_call(started, time.monotonic())
            if answer.status_code == 401:
                token = self.tokens.get(stale=token)
                continue
            if answer.status_code == 429:
                with self.outcome.lock:
                    self.outcome.retries_after_429 += 1
                time.sleep(RETRY_429_API_S / self.time_scale)
                continue
            answer.raise_for_status()
            return answer

    def deliver(self, path: Path) -> str:
        url = f"{self.api_url}/learning/v1.1/employees/{PERSON_CODE}/documents/{DOCUMENT_TYPE}"
        with path.open("rb") as handle:
            answer = self._call(
                "POST",
                url,
                data={"Description": f"Certificate {path.stem}"},
                files={"file": (path.name, handle, "application/pdf")},
            )
        ticket = answer.json()["ticketId"]
        status_url = f"{self.api_url}/learning/v1.0/employees/documents/{ticket}/status"
        while True:
            time.sleep(POLL_EVERY_API_S / self.time_scale)
            status = str(self._call("GET", status_url).json()["status"])
            if status != "InProgress":
                return status


def run_baseline(
    documents: Sequence[Path],
    *,
    api_url: str,
    token_url: str,
    time_scale: float,
    threads: int = 1,
    budget_s: float | None = None,
    tenant_id: str = DEFAULT_TENANT_ID,
    token_per_thread: bool = False,
    refresh_on_expiry: bool = False,
) -> BaselineOutcome:
    """Deliver `documents` with `threads` loops; none starts a new one after `budget_s` wall."""
    outcome = BaselineOutcome()
    pending = list(documents)
    pending_lock = threading.Lock()
    deadline = None if budget_s is None else time.monotonic() + budget_s

    def holder() -> TokenHolder:
        return TokenHolder(
            token_url,
            tenant_id,
            outcome,
            time_scale=time_scale,
            refresh_on_expiry=refresh_on_expiry,
        )

    shared = holder()

    def loop() -> None:
        client = BaselineClient(
            api_url, holder() if token_per_thread else shared, outcome, time_scale=time_scale
        )
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                return
            with pending_lock:
                if not pending:
                    return
                path = pending.pop(0)
            status = client.deliver(path)
            with outcome.lock:
                outcome.statuses[status] += 1
                if status == "Complete":
                    outcome.delivered += 1
                else:
                    outcome.failed += 1

    workers = [threading.Thread(target=loop, name=f"baseline-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token-url", default=None, help="default: API URL + /connect/token")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    outcome = run_baseline(
        args.files,
        api_url=args.api_url,
        token_url=args.token_url or f"{args.api_url}/connect/token",
        time_scale=args.time_scale,
        threads=args.threads,
    )
    print(
        f"delivered {outcome.delivered}, failed {outcome.failed}, calls {outcome.calls}, "
        f"tokens {outcome.token_fetches}, retries after 429 {outcome.retries_after_429}"
    )
    return 0 if outcome.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
