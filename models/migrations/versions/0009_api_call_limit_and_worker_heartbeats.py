"""The monitoring's record: the limit a 429 named, and the workers' heartbeats.

- `api_calls.limit_name`: "spike", "parallel" or "quota" when the API refused the call
  with a 429 that said which of its limits was hit; NULL for every other call and for a
  429 that named none. The metrics count refusals by it (`yfdocs_api_rate_limited_total`).
- an index on `(status_code, limit_name)`, so that counting the 429s reads the index, not
  the whole ledger.
- `worker_heartbeats`: one row per Celery node name, with its pid, when it started, when
  it was last seen consuming and, after a clean shutdown, when it stopped; the fleet's
  metrics tell from it that no worker is consuming, whatever the broker and whether or not
  Flower runs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("limit_name", sa.String(length=16), nullable=True))
        batch_op.create_index(
            "ix_api_calls_status_code_limit_name", ["status_code", "limit_name"], unique=False
        )
    op.create_table(
        "worker_heartbeats",
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", models.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("hostname"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_api_calls_status_code_limit_name")
        batch_op.drop_column("limit_name")
