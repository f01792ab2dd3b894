"""Poll learning: when a ticket was last seen in progress, and an index to read outcomes by tenant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 07:29:00.182183
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_in_progress_at", models.types.UTCDateTime(), nullable=True)
        )
        batch_op.create_index(
            "ix_upload_jobs_tenant_state_finished_at",
            ["tenant_id", "state", "finished_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_upload_jobs_tenant_state_finished_at")
        batch_op.drop_column("last_in_progress_at")
