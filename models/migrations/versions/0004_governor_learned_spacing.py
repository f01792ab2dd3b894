"""Governor: the spacing the fleet learned from spike-arrest 429s.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("governor_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("spacing_extra", sa.Float(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("spacing_raised_at", models.types.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("governor_state", schema=None) as batch_op:
        batch_op.drop_column("spacing_raised_at")
        batch_op.drop_column("spacing_extra")
