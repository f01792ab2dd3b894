"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 06:39:41.518791
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", models.types.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_calls_at"), ["at"], unique=False)
        batch_op.create_index("ix_api_calls_kind_at", ["kind", "at"], unique=False)

    op.create_table(
        "token_cache",
        sa.Column("cache_key", sa.String(length=255), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("token_type", sa.String(length=32), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("expires_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("fetched_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("fetching_until", models.types.UTCDateTime(), nullable=True),
        sa.Column("fetcher", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("cache_key"),
    )
    op.create_table(
        "upload_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("person_code", sa.String(length=64), nullable=False),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("original_file_name", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("poll_count", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_correlation_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("uploaded_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("not_before", models.types.UTCDateTime(), nullable=True),
        sa.Column("next_poll_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("published_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("document_deleted_at", models.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_upload_jobs_retention", ["document_deleted_at", "finished_at"], unique=False
        )
        batch_op.create_index(
            "ix_upload_jobs_state_created_at", ["state", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_upload_jobs_state_lease_expires_at", ["state", "lease_expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_upload_jobs_state_next_poll_at", ["state", "next_poll_at"], unique=False
        )
        batch_op.create_index(
            "ix_upload_jobs_state_published_at", ["state", "published_at"], unique=False
        )
        batch_op.create_index(
            "ix_upload_jobs_tenant_person", ["tenant_id", "person_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_upload_jobs_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("at", models.types.UTCDateTime(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("correlation_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["upload_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_events_job_id"), ["job_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_events_job_id"))

    op.drop_table("job_events")
    with op.batch_alter_table("upload_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_jobs_ticket_id"))
        batch_op.drop_index("ix_upload_jobs_tenant_person")
        batch_op.drop_index("ix_upload_jobs_state_published_at")
        batch_op.drop_index("ix_upload_jobs_state_next_poll_at")
        batch_op.drop_index("ix_upload_jobs_state_lease_expires_at")
        batch_op.drop_index("ix_upload_jobs_state_created_at")
        batch_op.drop_index("ix_upload_jobs_retention")

    op.drop_table("upload_jobs")
    op.drop_table("token_cache")
    with op.batch_alter_table("api_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_api_calls_kind_at")
        batch_op.drop_index(batch_op.f("ix_api_calls_at"))

    op.drop_table("api_calls")
