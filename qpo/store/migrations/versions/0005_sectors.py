"""the sector map of the book's universe: one sector per ticker (``sectors``), loaded with
``qpo data sectors FILE``; the nightly risk run, proposals and the dashboard group names by it (the
bundled map of the 20 bundled tickers where the store names none).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sectors",
        sa.Column("ticker", sa.String(32), primary_key=True),
        sa.Column("sector", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False, server_default="file"),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sectors")
