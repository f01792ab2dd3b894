"""The ledger names the limit a 429 named, so refusals can be counted by limit.

- `api_calls.limit_name`: "spike", "parallel" or "quota" when the API refused the call
  with a 429 that said which of its limits was hit; NULL for every other call and for a
  429 that named none. The metrics count refusals by it (`yfdocs_api_rate_limited_total`).
- an index on `(status_code, limit_name)`, so that counting the 429s reads the index, not
  the whole ledger.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("limit_name", sa.String(length=16), nullable=True))
        batch_op.create_index(
            "ix_api_calls_status_code_limit_name", ["status_code", "limit_name"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_api_calls_status_code_limit_name")
        batch_op.drop_column("limit_name")
