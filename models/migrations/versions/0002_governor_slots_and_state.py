"""governor slots and state

The fleet-wide rate governor's tables. No rows are seeded: slot rows are created on demand
up to the configured concurrency (which may change between deployments), and the single
state row (id 1) is created by the first process that needs it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 07:10:43.640811
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "governor_slots",
        sa.Column("slot_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("acquired_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("lease_expires_at", models.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("slot_no"),
    )
    op.create_table(
        "governor_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_call_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("backoff_until", models.types.UTCDateTime(), nullable=True),
        sa.Column("backoff_reason", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:

    op.drop_table("governor_state")
    op.drop_table("governor_slots")
