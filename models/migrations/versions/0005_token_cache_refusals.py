"""Token cache: remember a refusal of the credentials, so the fleet does not ask again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("token_cache", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refused_at", models.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("refused_until", models.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("refused_reason", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("refused_credentials", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("refusals", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("token_cache", schema=None) as batch_op:
        batch_op.drop_column("refusals")
        batch_op.drop_column("refused_credentials")
        batch_op.drop_column("refused_reason")
        batch_op.drop_column("refused_until")
        batch_op.drop_column("refused_at")
