"""API calls name their job; jobs count uploads that may have arrived; storage keys indexed.

- `api_calls.job_id`: the job a call was made for, so that the history can say whether an
  upload call had started when a worker was lost, and the sweeper stops claiming "the
  document arrives twice" when no call was ever made.
- `upload_jobs.uncertain_deliveries`: attempts whose upload may have reached Youforce
  although no ticket came back (a read timeout or a 5xx after the body was sent).
- an index on `upload_jobs.storage_key`, for retention's "does another job still need it?".

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_api_calls_job_id", ["job_id"], unique=False)
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "uncertain_deliveries", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
        batch_op.create_index("ix_upload_jobs_storage_key", ["storage_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_upload_jobs_storage_key")
        batch_op.drop_column("uncertain_deliveries")
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_api_calls_job_id")
        batch_op.drop_column("job_id")
