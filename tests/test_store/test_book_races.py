"""Two writers of the book at once, on SQLite and the real PostgreSQL: the second one meets the
first's committed rows and gets the same clear refusal as if it had come later, never the
database's own unique-key error."""
from __future__ import annotations

from sqlalchemy import func, select

from qpo.errors import StoreError
from qpo.store import ClientPortfolio, User, add_user, create_portfolio, update_portfolio
from tests.test_store import book_stores
from tests.test_store.book_stores import ADMIN, ANA, ANA_PF, BEN_PF
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
