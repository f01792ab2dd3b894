"""The token pacer's grants, and the dispatcher's lease (one dispatcher acts at a time).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_grants",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("granted_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("grant_until", models.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "dispatcher_lease",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_until", models.types.UTCDateTime(), nullable=True),
        sa.Column("fair_share", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("dispatcher_lease")
    op.drop_table("token_grants")
