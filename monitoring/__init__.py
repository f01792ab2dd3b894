"""How the service reports on itself: one logging setup, and the fleet's metrics.

- `logs`: the logging every `yfdocs` command and every worker process uses: plain text,
  or JSON lines with `YFDOCS_LOG_FORMAT=json`; known secrets and bearer tokens masked.
- the domain metrics Flower lacks, computed from the database on every scrape, so that
  they are right for a whole fleet (`collector`), their exposition (`exposition`), the
  small HTTP server of `yfdocs metrics` (`server`), and the counters other processes
  increment for themselves (`process_metrics`: the HTTP intake's requests).

May import: `scheduling`, `messaging`, `models`, `config`, and prometheus_client. Never the
intake, the worker or the command, and no broker library: everything here reads the
database, which is the record.
"""

from __future__ import annotations
