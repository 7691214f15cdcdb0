"""the nightly book: market data, valuations and risk per portfolio and date, operations runs, alerts

- ``market_data``: daily bars (date, ticker, open, high, low, close, adjusted close, volume,
  dividend, split, source), one row per (ticker, date): an upsert replaces, never duplicates;
- ``ops_runs``: one row per scheduled operations run (valuation or risk of a date), its status
  (RUNNING, FINISHED, FAILED), counts, error and timings;
- ``valuations``: market value, cash and returns (daily, MTD, YTD, since inception, time-weighted)
  of one portfolio on one date; one row per (portfolio, date): a rerun replaces it;
- ``book_risk``: the risk numbers and compliance of one portfolio on one date; one row per
  (portfolio, date);
- ``alerts``: one row per breach of a portfolio's limit while it lasts (state new, acknowledged,
  resolved), not one a day.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_data",
        sa.Column("ticker", sa.String(32), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("open", sa.Float),
        sa.Column("high", sa.Float),
        sa.Column("low", sa.Float),
        sa.Column("close", sa.Float),
        sa.Column("adjusted_close", sa.Float, nullable=False),
        sa.Column("volume", sa.Float),
        sa.Column("dividend", sa.Float, nullable=False, server_default="0"),
        sa.Column("split", sa.Float, nullable=False, server_default="1"),
        sa.Column("source", sa.String(32), nullable=False, server_default="file"),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("adjusted_close > 0", name="ck_market_data_adjusted_close_positive"),
        sa.CheckConstraint("split > 0", name="ck_market_data_split_positive"),
    )
    op.create_index("ix_market_data_date", "market_data", ["date"])

    op.create_table(
        "ops_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("portfolios", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("details", sa.JSON),
        sa.CheckConstraint("status in ('RUNNING', 'FINISHED', 'FAILED')", name="ck_ops_run_status"),
    )
    op.create_index("ix_ops_runs_kind_as_of", "ops_runs", ["kind", "as_of"])

    op.create_table(
        "valuations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("market_value", sa.Float),
        sa.Column("cash", sa.Float, nullable=False),
        sa.Column("holdings_value", sa.Float),
        sa.Column("daily_return", sa.Float),
        sa.Column("mtd_return", sa.Float),
        sa.Column("ytd_return", sa.Float),
        sa.Column("inception_return", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("unpriced", sa.JSON),
        sa.Column("stale", sa.JSON),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("ops_runs.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("portfolio_id", "as_of", name="uq_valuation_portfolio_as_of"),
        sa.CheckConstraint("status in ('valued', 'unpriced', 'empty')", name="ck_valuation_status"),
    )
    op.create_index("ix_valuations_as_of", "valuations", ["as_of"])

    op.create_table(
        "book_risk",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("volatility", sa.Float),
        sa.Column("var_historical", sa.Float),
        sa.Column("cvar_historical", sa.Float),
        sa.Column("var_parametric", sa.Float),
        sa.Column("cvar_parametric", sa.Float),
        sa.Column("beta", sa.Float),
        sa.Column("max_drawdown", sa.Float),
        sa.Column("worst_stress", sa.Float),
        sa.Column("compliant", sa.Boolean),
        sa.Column("breaches", sa.Integer, nullable=False, server_default="0"),
        sa.Column("details", sa.JSON),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("ops_runs.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("portfolio_id", "as_of", name="uq_book_risk_portfolio_as_of"),
    )
    op.create_index("ix_book_risk_as_of", "book_risk", ["as_of"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
        sa.Column("check_name", sa.String(128), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("limit_value", sa.Float),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="new"),
        sa.Column("message", sa.Text),
        sa.Column("first_seen", sa.Date, nullable=False),
        sa.Column("last_seen", sa.Date, nullable=False),
        sa.Column("resolved_on", sa.Date),
        sa.Column("acknowledged_by", sa.String(255)),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("state in ('new', 'acknowledged', 'resolved')", name="ck_alert_state"),
        sa.CheckConstraint("severity in ('info', 'warning', 'critical')", name="ck_alert_severity"),
    )
    op.create_index("ix_alerts_portfolio_check", "alerts", ["portfolio_id", "check_name"])
    op.create_index("ix_alerts_state", "alerts", ["state"])


def downgrade() -> None:
    for index, table in (("ix_alerts_state", "alerts"), ("ix_alerts_portfolio_check", "alerts"),
                         ("ix_book_risk_as_of", "book_risk"), ("ix_valuations_as_of", "valuations"),
                         ("ix_ops_runs_kind_as_of", "ops_runs"), ("ix_market_data_date", "market_data")):
        op.drop_index(index, table_name=table)
    for table in ("alerts", "book_risk", "valuations", "ops_runs", "market_data"):
        op.drop_table(table)
