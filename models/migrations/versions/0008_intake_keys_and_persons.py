"""The HTTP intake's callers, the persons learner mapping reads, and jobs' learner names.

- `intake_keys`: one row per LMS caller (the key's digest, its tenants, its secrets).
- `persons`, `person_emails`, `person_syncs`: each tenant's persons from Youforce's
  `persons` reader, their e-mail addresses, and the delta sync's watermark.
- `upload_jobs.learner_email`, `upload_jobs.learner_employee_number`: how an LMS named a
  learner whose personCode it did not know, so an `unmatched` job can be matched later.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_keys",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("tenants", sa.Text(), nullable=False),
        sa.Column("fetch_hosts", sa.Text(), nullable=False),
        sa.Column("canvas_accounts", sa.Text(), nullable=False),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
        sa.Column("static_secret_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("key_id"),
    )
    op.create_table(
        "persons",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("person_code", sa.String(length=64), nullable=False),
        sa.Column("changed_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("synced_at", models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "person_id"),
    )
    op.create_index("ix_persons_tenant_person_code", "persons", ["tenant_id", "person_code"])
    op.create_table(
        "person_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_person_emails_tenant_address", "person_emails", ["tenant_id", "address"])
    op.create_index("ix_person_emails_tenant_person", "person_emails", ["tenant_id", "person_id"])
    op.create_table(
        "person_syncs",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("changed_after", models.types.UTCDateTime(), nullable=True),
        sa.Column("synced_at", models.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("learner_email", sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column("learner_employee_number", sa.String(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.drop_column("learner_employee_number")
        batch_op.drop_column("learner_email")
    op.drop_table("person_syncs")
    op.drop_index("ix_person_emails_tenant_person", table_name="person_emails")
    op.drop_index("ix_person_emails_tenant_address", table_name="person_emails")
    op.drop_table("person_emails")
    op.drop_index("ix_persons_tenant_person_code", table_name="persons")
    op.drop_table("persons")
    op.drop_table("intake_keys")
