"""Two writers of the book at once, on SQLite and the real PostgreSQL: the second one meets the
first's committed rows and gets the same clear refusal as if it had come later, never the
database's own unique-key error."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from qpo.errors import StoreError
from qpo.store import ClientPortfolio, User, add_user, create_portfolio, session_scope, update_portfolio
from tests.test_store import book_stores
from tests.test_store.book_stores import ADMIN, ANA, ANA_PF, BEN, BEN_PF
from tests.test_store.test_book_ledger import _race

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book


def _count(engine, model, **where) -> int:
    with engine.connect() as conn:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return conn.execute(q).scalar_one()


def test_two_portfolios_created_under_one_name_at_once(book):
    def make(s):
        create_portfolio(s, ADMIN, "Twin", "Client T", ANA, cash=1_000.0, trade_date="2024-03-28")

    second = _race(book, make, make)
    assert isinstance(second, StoreError), second
    assert "a portfolio named 'Twin' exists already" in str(second), second
    assert _count(book.engine, ClientPortfolio, name="Twin") == 1


def test_two_portfolios_renamed_to_one_name_at_once(book):
    second = _race(book, lambda s: update_portfolio(s, ADMIN, ANA_PF, name="Merged"),
                   lambda s: update_portfolio(s, ADMIN, BEN_PF, name="Merged"))
    assert isinstance(second, StoreError), second
    assert "a portfolio named 'Merged' exists already" in str(second), second
    assert _count(book.engine, ClientPortfolio, name="Merged") == 1


def test_two_people_added_under_one_email_at_once(book):
    def add(s):
        add_user(s, ADMIN, "new.person@example.com", "New Person", "advisor")

    second = _race(book, add, add)
    assert isinstance(second, StoreError), second
    assert "new.person@example.com" in str(second) and "UniqueViolation" not in str(second), second
    assert _count(book.engine, User, email="new.person@example.com") == 1


def test_a_proposal_accepted_and_rejected_at_once_is_one_of_them(book):
    from qpo.store import accept_proposal, get_proposal, list_transactions, reject_proposal
    from tests.test_store.test_book_ledger import _save, trade

    pid = _save(book, [trade("sell", "AAPL", 10.0, 190.0)])
    second = _race(book, lambda s: accept_proposal(s, ANA, pid, latest_price_date="2024-03-28"),
                   lambda s: reject_proposal(s, ADMIN, pid, "not now"))
    assert isinstance(second, StoreError), second
    with session_scope(book.engine) as s:
        assert get_proposal(s, ANA, pid).status == "accepted"
        assert len(list_transactions(s, ANA, ANA_PF).query("proposal_id == @pid")) == 1


def test_a_portfolio_deleted_while_a_transaction_is_added(book):
    from qpo.store import add_transaction, delete_portfolio

    second = _race(book, lambda s: delete_portfolio(s, ADMIN, BEN_PF, force=True),
                   lambda s: add_transaction(s, BEN, BEN_PF, "deposit", trade_date="2024-03-28", amount=100.0))
    assert isinstance(second, StoreError), second
    assert "Ben Income" in str(second) and "ForeignKey" not in str(second), second
    assert _count(book.engine, ClientPortfolio, name=BEN_PF) == 0


@pytest.mark.parametrize("change", ["update", "delete"])
def test_a_portfolio_deleted_while_it_is_changed_or_deleted_again(book, change):
    from qpo.store import delete_portfolio

    def second_change(s):
        if change == "update":
            update_portfolio(s, ADMIN, BEN_PF, description="new words")
        else:
            delete_portfolio(s, ADMIN, BEN_PF, force=True)

    second = _race(book, lambda s: delete_portfolio(s, ADMIN, BEN_PF, force=True), second_change)
    assert isinstance(second, StoreError), second
    assert "'Ben Income'" in str(second) and "matched" not in str(second), second
    assert _count(book.engine, ClientPortfolio, name=BEN_PF) == 0


def test_two_changes_of_one_portfolio_at_once_each_audit_what_the_other_left(book):
    from qpo.store import audit_trail

    second = _race(book, lambda s: update_portfolio(s, ADMIN, BEN_PF, description="first words"),
                   lambda s: update_portfolio(s, ADMIN, BEN_PF, account="ACC-2"))
    assert second == "committed", second
    with session_scope(book.engine) as s:
        trail = audit_trail(s, ADMIN, portfolio=BEN_PF)
    updates = trail[trail["action"] == "update"]
    last = updates.iloc[-1] if updates["id"].is_monotonic_increasing else updates.iloc[0]
    assert last["before"]["description"] == "first words", last["before"]  # not the value read before waiting
    assert last["after"]["description"] == "first words" and last["after"]["account"] == "ACC-2"
