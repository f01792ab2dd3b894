"""One member of a test fleet: its own engine, governor and client, run as a subprocess.

`calls` mode uploads a small PDF and asks its ticket's status, over and over, through
`YouforceClient(governor=DatabaseGovernor(...))`, then prints a JSON summary. `hold` mode
takes one governor slot, says HOLDING, and sleeps inside it until it is killed: a worker
that dies mid-call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from api_client import Timeouts, YouforceClient, YouforceError
from api_client.client import DEFAULT_USER_AGENT
from api_client.transport import new_session
from models import make_engine
from scheduling.deferrals import CallDeferred
from scheduling.governor import DatabaseGovernor
from scheduling.token_cache import DatabaseTokenCache
from yfdocs.sample_documents import render_text_pdf

TENANT = "4028868"
PERSON = "191166"
PDF = render_text_pdf("Certificate", ["a fleet member's upload"])


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["calls", "hold"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token-url", required=True)
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--max-concurrency", type=int, default=3)
    parser.add_argument("--min-interval", type=float, default=0.6)
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    parser.add_argument("--max-wait", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, required=True)
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    if os.environ.get("FLEET_MEMBER_DEBUG"):
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(created).3f %(process)d %(message)s")
        logging.getLogger("worker").setLevel(logging.DEBUG)
    owner = f"fleet-member:{os.getpid()}"
    engine = make_engine(args.database_url)
    governor = DatabaseGovernor(
        engine,
        max_concurrency=args.max_concurrency,
        min_interval=args.min_interval,
        rate_per_minute=100,
        daily_quota=6000,
        token_monthly_budget=400,
        lease_seconds=args.lease_seconds,
        owner=owner,
        max_wait=args.max_wait,
        poll_interval=0.01,
        max_sleep=0.05,
    )
    if args.mode == "hold":
        with governor.slot("status", TENANT):
            sys.stdout.write("HOLDING\n")
            sys.stdout.flush()
            time.sleep(3600)
        return 1

    pdf = args.workdir / f"member-{os.getpid()}.pdf"
    pdf.write_bytes(PDF)
    summary = {"uploads": 0, "statuses": 0, "deferred": [], "errors": []}
    # Warm the HTTP stack and the connection on an unlogged, unlimited sandbox page, so the
    # first governed call does not leave tens of milliseconds after its start (a cold
    # process's first request does, which the sped-up sandbox would see as a short gap).
    session = new_session(DEFAULT_USER_AGENT)
    session.get(f"{args.api_url}/_sandbox/stats", timeout=5).raise_for_status()
    client = YouforceClient(
        session=session,
        api_url=args.api_url,
        token_url=args.token_url,
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        token_cache=DatabaseTokenCache(engine, owner=owner),
        governor=governor,
        timeouts=Timeouts(connect=5, read=10),
    )
    with client:
        for number in range(args.documents):
            try:
                receipt = client.upload_document(
                    TENANT, PERSON, "certificate", pdf, description=f"Certificate {number}"
                )
                summary["uploads"] += 1
                client.ticket_status(TENANT, receipt.ticket_id)
                summary["statuses"] += 1
            except CallDeferred as deferred:
                summary["deferred"].append(str(deferred))
            except YouforceError as error:
                summary["errors"].append(f"{type(error).__name__}: {error}")
    session.close()
    sys.stdout.write(json.dumps(summary) + "\n")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
