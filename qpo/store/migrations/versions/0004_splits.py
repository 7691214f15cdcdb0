"""stock splits in the ledger: a ``split`` entry changes the shares held by ``quantity`` (negative
for a reverse split), no cash; booked by the nightly valuation from the market data's split
coefficients, so that a portfolio's shares and the actual closes it is valued at agree.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BEFORE = ("buy", "sell", "deposit", "withdrawal", "dividend", "fee", "transfer_in", "transfer_out")
AFTER = (*BEFORE, "split")


def _constraints(kinds: tuple[str, ...], quantity: str) -> None:
    conn = op.get_bind()
    with op.batch_alter_table("transactions", recreate="always" if conn.dialect.name == "sqlite" else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as b:
        b.drop_constraint("ck_transaction_kind", type_="check")
        b.drop_constraint("ck_transaction_quantity_positive", type_="check")
        b.create_check_constraint("ck_transaction_kind", "kind in (" + ", ".join(f"'{k}'" for k in kinds) + ")")
        b.create_check_constraint("ck_transaction_quantity_positive", quantity)


def upgrade() -> None:
    _constraints(AFTER, "quantity IS NULL OR quantity > 0 OR (kind = 'split' AND quantity <> 0)")
    # one split of a name on a date per portfolio: two valuations at once cannot book it twice
    op.create_index("uq_transactions_split", "transactions", ["portfolio_id", "ticker", "trade_date"], unique=True,
                    sqlite_where=sa.text("kind = 'split'"), postgresql_where=sa.text("kind = 'split'"))


def downgrade() -> None:
    op.drop_index("uq_transactions_split", table_name="transactions")
    op.execute(sa.text("DELETE FROM transactions WHERE kind = 'split'"))
    _constraints(BEFORE, "quantity IS NULL OR quantity > 0")
