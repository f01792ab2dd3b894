"""What may run when: the API's budgets shared by the whole fleet.

- `policy/`: the pure rules, with no database and no clock of their own: the windows the
  budgets count in, retry backoff, the poll plan learned from ticket times, the quota rule.
- the parts backed by the database: the governor (`governor`: call slots, spacing, 429
  backoff), the call ledger (`ledger`), the fleet's token cache and the hold on refused
  credentials (`token_cache`, `credentials`), the poll planner's loader (`poll_planner`),
  the quota rule over the job table (`quota_policy`), and what `status` reads (`usage`).

May import: `api_client`, `models`, `config`. Never the intake, the worker or the command.
"""

from __future__ import annotations
