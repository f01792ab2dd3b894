"""Workers write a heartbeat into the database, so that the fleet's metrics can tell that
no worker is consuming, whatever the broker and whether or not Flower runs.

- `worker_heartbeats`: one row per Celery node name, with its pid, when it started, when
  it was last seen consuming and, after a clean shutdown, when it stopped.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:30:00.000000
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
