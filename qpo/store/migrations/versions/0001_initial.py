"""initial schema: advisors, portfolios, holdings, transactions, optimization runs, risk metrics

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "advisors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("role in ('advisor', 'researcher', 'admin')", name="ck_advisor_role"),
    )
    op.create_table(
        "portfolios",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("client_name", sa.String(255), nullable=False),
        sa.Column("advisor_id", sa.Integer, sa.ForeignKey("advisors.id"), nullable=False),
        sa.Column("base_currency", sa.String(3), nullable=False),
        sa.Column("benchmark", sa.String(64)),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "holdings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.UniqueConstraint("portfolio_id", "ticker", name="uq_holding_ticker"),
        sa.CheckConstraint("quantity > 0", name="ck_holding_quantity_positive"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
        sa.Column("trade_date", sa.Date, nullable=False),
        sa.Column("ticker", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("fees", sa.Float, nullable=False),
        sa.CheckConstraint("quantity <> 0", name="ck_transaction_quantity_nonzero"),
        sa.CheckConstraint("price > 0", name="ck_transaction_price_positive"),
        sa.CheckConstraint("fees >= 0", name="ck_transaction_fees_nonnegative"),
    )
    op.create_table(
        "optimization_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("objective", sa.String(64), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("solver", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("expected_return", sa.Float),
        sa.Column("volatility", sa.Float),
        sa.Column("sharpe", sa.Float),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("fallback_reason", sa.Text),
        sa.Column("mlflow_run_id", sa.String(64)),
    )
    op.create_table(
        "risk_metrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("mlflow_run_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("portfolio_id", "as_of", "metric", "mlflow_run_id", name="uq_risk_metric"),
    )
    op.create_index("ix_risk_metrics_portfolio_as_of", "risk_metrics", ["portfolio_id", "as_of"])


def downgrade() -> None:
    op.drop_index("ix_risk_metrics_portfolio_as_of", table_name="risk_metrics")
    for table in ("risk_metrics", "optimization_runs", "transactions", "holdings", "portfolios", "advisors"):
        op.drop_table(table)
