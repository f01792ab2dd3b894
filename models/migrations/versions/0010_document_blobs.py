"""Stored PDFs in the database (the postgres document store) and the fleet's choice of store.

- `document_blobs`: one row per stored PDF, by storage key. On PostgreSQL the content
  column is stored EXTERNAL (out of line, uncompressed: PDFs are compressed already), so
  that reading a slice with `substr` fetches only that slice's TOAST chunks.
- `document_store_state`: the one row naming the store the fleet uses. A database that
  already holds jobs whose PDFs were not deleted gets the row `filesystem` here: before
  this revision every PDF was stored in the data dir, and a default that now says
  `postgres` must not send the fleet looking for them in the database
  (`yfdocs documents move` takes them there).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_blobs",
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("storage_key"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE document_blobs ALTER COLUMN content SET STORAGE EXTERNAL")
    state = op.create_table(
        "document_store_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("active", sa.String(length=1024), nullable=False),
        sa.Column("move_source", sa.String(length=1024), nullable=True),
        sa.Column("move_target", sa.String(length=1024), nullable=True),
        sa.Column("changed_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    stored_before = op.get_bind().execute(
        sa.text("SELECT 1 FROM upload_jobs WHERE document_deleted_at IS NULL LIMIT 1")
    )
    if stored_before.first() is not None:
        op.bulk_insert(
            state,
            [
                {
                    "id": 1,
                    "active": "filesystem",
                    "changed_at": models.types.utcnow(),
                    "reason": "schema revision 0010: PDFs stored before it are in the data dir",
                }
            ],
        )


def downgrade() -> None:
    op.drop_table("document_store_state")
    op.drop_table("document_blobs")
