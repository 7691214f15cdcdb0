"""the client book: ledger-derived holdings, strategies, passwords, proposals, the audit trail

- ``transactions`` become a ledger: a ``kind`` (buy, sell, deposit, withdrawal, dividend, fee,
  transfer_in, transfer_out), positive quantities (the old signed ones become buys and sells),
  a cash ``amount``, a note, the proposal an entry came from, who wrote it;
- the ``holdings`` table is dropped: holdings are derived from the ledger. An old store keeps every
  portfolio and its holdings: where its ledger did not explain them (holdings written without a
  transaction, buys without the cash deposited), entries are added that do, marked "carried over
  by migration 0002";
- portfolios keep their ``strategy`` (JSON) and ``account``; users their ``password_hash``;
- ``proposals`` (rebalance proposals) and ``audit_log`` (append-only: on PostgreSQL a trigger
  refuses UPDATE and DELETE on it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KINDS = ("buy", "sell", "deposit", "withdrawal", "dividend", "fee", "transfer_in", "transfer_out")
NOTE = "carried over by migration 0002"


def _day(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value is None:
        return dt.date.today()
    return dt.date.fromisoformat(str(value)[:10])


def _carry_over(conn) -> None:
    """Entries that make each old ledger explain its portfolio's holdings, and never overdraw."""
    portfolios = conn.execute(sa.text("SELECT id, created_at FROM portfolios")).all()
    for pid, created in portfolios:
        held = dict(conn.execute(sa.text("SELECT ticker, quantity FROM holdings WHERE portfolio_id = :p"),
                                 {"p": pid}).all())
        rows = conn.execute(sa.text("SELECT trade_date, kind, ticker, quantity, price, fees FROM transactions "
                                    "WHERE portfolio_id = :p ORDER BY trade_date, id"), {"p": pid}).all()
        first = (_day(rows[0][0]) if rows else _day(created)) - dt.timedelta(days=1)  # before the ledger begins
        last = _day(rows[-1][0]) if rows else _day(created)
        shares: dict[str, float] = {}
        low: dict[str, float] = {}
        cash = low_cash = 0.0
        for _, kind, ticker, qty, price, fees in rows:
            sign = 1.0 if kind == "buy" else -1.0
            shares[ticker] = shares.get(ticker, 0.0) + sign * qty
            low[ticker] = min(low.get(ticker, 0.0), shares[ticker])
            cash += -sign * qty * price - (fees or 0.0)
            low_cash = min(low_cash, cash)
        new = []
        for ticker, lowest in low.items():  # sold before bought: the shares were there already
            if lowest < -1e-9:
                new.append(dict(d=first, k="transfer_in", t=ticker, q=-lowest, a=None))
                shares[ticker] -= lowest
        if low_cash < -1e-6:  # bought without cash deposited: the cash was there already
            new.append(dict(d=first, k="deposit", t=None, q=None, a=-low_cash))
        for ticker in sorted(set(held) | set(shares)):
            diff = float(held.get(ticker, 0.0)) - shares.get(ticker, 0.0)
            if diff > 1e-9:
                new.append(dict(d=last, k="transfer_in", t=ticker, q=diff, a=None))
            elif diff < -1e-9:
                new.append(dict(d=last, k="transfer_out", t=ticker, q=-diff, a=None))
        for e in new:
            conn.execute(sa.text("INSERT INTO transactions (portfolio_id, trade_date, kind, ticker, quantity, fees, "
                                 "amount, note, created_by) VALUES (:p, :d, :k, :t, :q, 0, :a, :n, 'system:migration')"),
                         {"p": pid, "d": e["d"], "k": e["k"], "t": e["t"], "q": e["q"], "a": e["a"], "n": NOTE})


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("advisors") as b:
        b.add_column(sa.Column("password_hash", sa.String(255)))
    # SQLite: AUTOINCREMENT, so an id is never given again after a delete (audit rows name ids)
    with op.batch_alter_table("portfolios", recreate="always" if conn.dialect.name == "sqlite" else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as b:
        b.add_column(sa.Column("account", sa.String(64)))
        b.add_column(sa.Column("strategy", sa.JSON))
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portfolio_id", sa.Integer, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("prices_as_of", sa.Date, nullable=False),
        sa.Column("ledger_version", sa.Integer, nullable=False),
        sa.Column("strategy", sa.JSON, nullable=False),
        sa.Column("trades", sa.JSON, nullable=False),
        sa.Column("target", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("reason", sa.Text),
        sa.Column("optimization_run_id", sa.Integer, sa.ForeignKey("optimization_runs.id", ondelete="SET NULL")),
        sa.CheckConstraint("status in ('open', 'accepted', 'rejected')", name="ck_proposal_status"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_proposals_portfolio_status", "proposals", ["portfolio_id", "status"])

    with op.batch_alter_table("transactions") as b:
        b.add_column(sa.Column("kind", sa.String(16)))
        b.add_column(sa.Column("amount", sa.Float))
        b.add_column(sa.Column("note", sa.Text))
        b.add_column(sa.Column("proposal_id", sa.Integer))
        b.add_column(sa.Column("created_by", sa.String(255)))
        b.add_column(sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()))
    conn.execute(sa.text("UPDATE transactions SET kind = CASE WHEN quantity > 0 THEN 'buy' ELSE 'sell' END, "
                         "quantity = ABS(quantity), created_by = 'system:migration'"))
    conn.execute(sa.text("UPDATE transactions SET created_at = CURRENT_TIMESTAMP WHERE created_at IS NULL"))
    with op.batch_alter_table("transactions", recreate="always" if conn.dialect.name == "sqlite" else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as b:
        b.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False,
                       existing_server_default=sa.func.now())
        b.drop_constraint("ck_transaction_quantity_nonzero", type_="check")
        b.drop_constraint("ck_transaction_price_positive", type_="check")
        b.alter_column("kind", existing_type=sa.String(16), nullable=False)
        b.alter_column("ticker", existing_type=sa.String(16), nullable=True)
        b.alter_column("quantity", existing_type=sa.Float, nullable=True)
        b.alter_column("price", existing_type=sa.Float, nullable=True)
        b.create_foreign_key("fk_transactions_proposal", "proposals", ["proposal_id"], ["id"], ondelete="SET NULL")
        b.create_check_constraint("ck_transaction_kind", "kind in (" + ", ".join(f"'{k}'" for k in KINDS) + ")")
        b.create_check_constraint("ck_transaction_quantity_positive", "quantity IS NULL OR quantity > 0")
        b.create_check_constraint("ck_transaction_price_positive", "price IS NULL OR price > 0")
        b.create_check_constraint("ck_transaction_amount_positive", "amount IS NULL OR amount > 0")
    op.create_index("ix_transactions_portfolio_date", "transactions", ["portfolio_id", "trade_date"])
    _carry_over(conn)
    op.drop_table("holdings")

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64)),
        sa.Column("portfolio_id", sa.Integer),
        sa.Column("portfolio", sa.String(255)),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    op.create_index("ix_audit_portfolio_at", "audit_log", ["portfolio_id", "at"])
    if conn.dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION qpo_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
            END $$""")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION qpo_audit_log_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION qpo_audit_log_append_only()")


def downgrade() -> None:
    raise NotImplementedError("the client book (0002) has no downgrade: the old schema cannot hold its ledger "
                              "kinds, proposals or audit trail; restore a backup of the store instead")
