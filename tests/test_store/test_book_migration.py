"""An existing store from before the client book (revision 0001: a ``holdings`` table, signed
transactions) upgrades in place with its portfolios kept (issue 17): on SQLite from a copy of the
old file, on the real PostgreSQL in its own schema.

The old store is built the way the old code wrote it: holdings rows from ``create_portfolio``, and
(the demo seed's pattern) buy transactions at the closes with no cash deposited; also a ledger that
sold before it bought, holdings the transactions do not explain, a portfolio with holdings and no
transactions, and one with neither. After the upgrade every portfolio keeps its name, client,
advisor, benchmark and description; its holdings, derived now from the ledger, equal the old
holdings table; its cash is never negative; the old entries are kept as buys and sells.
"""
from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text

from qpo.store import (
    Actor,
    add_transaction,
    audit_trail,
    connect,
    list_portfolios,
    list_transactions,
    list_users,
    position,
    session_scope,
)
from qpo.store.db import current_revision, head_revision, upgrade
from tests.conftest import database_urls
from tests.test_store.book_stores import fresh_store_url

SYSTEM = Actor.system("test")
NOTE = "carried over by migration 0002"

ADVISORS = [("alice@wealth.test", "Alice Old", "advisor"), ("bob@wealth.test", "Bob O'Neil", "advisor"),
            ("root@wealth.test", "Root", "admin")]
# name, client, advisor, benchmark, description, holdings, transactions (date, ticker, signed quantity, price, fees)
OLD = [
    ("Demo Growth", "Jane Doe", "alice@wealth.test", "SP500", "demo portfolio, $100,000 at the closes of 2024-03-28",
     {"AAPL": 120.5, "MSFT": 80.25},
     [("2024-03-28", "AAPL", 120.5, 171.48, 0.0), ("2024-03-28", "MSFT", 80.25, 420.72, 0.0)]),
    ("Traded", "John \"JJ\" Smith", "alice@wealth.test", None, None,
     {"XOM": 60.0, "PG": 10.0},
     [("2024-01-02", "XOM", 100.0, 100.0, 1.0), ("2024-02-01", "XOM", -40.0, 110.0, 1.0),
      ("2024-03-01", "PG", 10.0, 160.0, 2.5)]),
    ("Mismatch 🚀 O'Brien", "Zoë Ü", "bob@wealth.test", "SP500", "'; DROP TABLE holdings; --",
     {"AAPL": 15.0, "KO": 10.0, "NVDA": 3.0},
     [("2024-01-05", "AAPL", -5.0, 180.0, 0.0), ("2024-01-10", "KO", 20.0, 60.0, 0.0),
      ("2024-01-12", "AAPL", 12.0, 185.0, 0.0)]),
    ("Holdings Only", "Mary Major", "bob@wealth.test", None, "created in Python, never traded",
     {"KO": 100.0, "JNJ": 50.0}, []),
    ("Empty", "Nobody Yet", "root@wealth.test", None, None, {}, []),
]


def _build_old_store(url: str) -> None:
    """Revision 0001, filled with raw SQL as the old code left it."""
    engine = create_engine(url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            ids = {}
            for email, name, role in ADVISORS:
                ids[email] = conn.execute(text("INSERT INTO advisors (email, name, role) VALUES (:e, :n, :r) "
                                               "RETURNING id"), {"e": email, "n": name, "r": role}).scalar_one()
            for name, client, advisor, bench, desc, holdings, txs in OLD:
                pid = conn.execute(text("INSERT INTO portfolios (name, client_name, advisor_id, base_currency, benchmark, "
                                        "description) VALUES (:n, :c, :a, 'USD', :b, :d) RETURNING id"),
                                   {"n": name, "c": client, "a": ids[advisor], "b": bench, "d": desc}).scalar_one()
                for ticker, qty in holdings.items():
                    conn.execute(text("INSERT INTO holdings (portfolio_id, ticker, quantity) VALUES (:p, :t, :q)"),
                                 {"p": pid, "t": ticker, "q": qty})
                for day, ticker, qty, price, fees in txs:
                    conn.execute(text("INSERT INTO transactions (portfolio_id, trade_date, ticker, quantity, price, fees) "
                                      "VALUES (:p, :d, :t, :q, :x, :f)"),
                                 {"p": pid, "d": dt.date.fromisoformat(day), "t": ticker, "q": qty, "x": price, "f": fees})
                conn.execute(text("INSERT INTO risk_metrics (portfolio_id, as_of, metric, value) "
                                  "VALUES (:p, :d, 'volatility', 0.18)"), {"p": pid, "d": dt.date(2024, 3, 28)})
            conn.execute(text("INSERT INTO optimization_runs (portfolio_id, objective, method, solver, status, weights, "
                              "parameters) VALUES (NULL, 'min_variance', 'convex', 'CLARABEL', 'optimal', "
                              "'{\"AAPL\": 1.0}', '{}')"))
        assert current_revision(engine) == "0001"
    finally:
        engine.dispose()


def _old_rows(url: str) -> dict:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                "portfolios": sorted(conn.execute(text(
                    "SELECT p.name, p.client_name, a.email, p.benchmark, p.description FROM portfolios p "
                    "JOIN advisors a ON a.id = p.advisor_id")).all()),
                "holdings": {n: dict(conn.execute(text(
                    "SELECT h.ticker, h.quantity FROM holdings h JOIN portfolios p ON p.id = h.portfolio_id "
                    "WHERE p.name = :n"), {"n": n}).all()) for n, *_ in OLD},
                "n_transactions": conn.execute(text("SELECT COUNT(*) FROM transactions")).scalar_one(),
                "risk_metrics": conn.execute(text("SELECT COUNT(*) FROM risk_metrics")).scalar_one(),
                "optimization_runs": conn.execute(text("SELECT COUNT(*) FROM optimization_runs")).scalar_one(),
            }
    finally:
        engine.dispose()


@pytest.fixture(params=database_urls())
def upgraded(request, tmp_path):
    """(the old store's rows, an engine on the same store upgraded in place). On SQLite the old
    file is kept and a copy of it upgraded; PostgreSQL upgrades the schema itself."""
    with fresh_store_url(request.param, tmp_path) as url:
        _build_old_store(url)
        old = _old_rows(url)
        if request.param == "sqlite":
            copy = tmp_path / "copy.db"
            shutil.copy(tmp_path / "store.db", copy)
            url = f"sqlite:///{copy}"
        engine = connect(url)
        yield old, engine
        if request.param == "sqlite":
            assert _old_rows(f"sqlite:///{tmp_path / 'store.db'}") == old  # the original was left alone
            engine.dispose()


def test_an_old_store_upgrades_in_place_with_its_portfolios_kept(upgraded):
    old, engine = upgraded
    assert current_revision(engine) == head_revision()
    names = {"holdings"} & set(inspect(engine).get_table_names())
    assert names == set()  # the holdings table is gone: the ledger is the truth
    with session_scope(engine) as s:
        book = list_portfolios(s, SYSTEM)
        cols = ["name", "client", "advisor_email", "benchmark", "description"]
        kept = sorted(tuple(None if pd.isna(v) else v for v in r) for r in book[cols].itertuples(index=False))
        assert kept == old["portfolios"]
        assert list_users(s, SYSTEM)[["email", "role"]].values.tolist() == sorted([e, r] for e, _, r in ADVISORS)
        for name, *_ in OLD:
            pos = position(s, SYSTEM, name)  # the replay refuses any ledger that oversells or overdraws
            assert pos.shares.to_dict() == old["holdings"][name], name
            assert pos.cash >= 0, name
            row = book.set_index("name").loc[name]
            assert row["n_holdings"] == len(old["holdings"][name]) and row["cash"] == pytest.approx(pos.cash)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM risk_metrics")).scalar_one() == old["risk_metrics"]
        assert conn.execute(text("SELECT COUNT(*) FROM optimization_runs")).scalar_one() == old["optimization_runs"]


def test_the_old_entries_become_buys_and_sells_and_the_gaps_are_carried_over(upgraded):
    _, engine = upgraded
    with session_scope(engine) as s:
        traded = list_transactions(s, SYSTEM, "Traded")
        old = traded[traded["note"].isna()]
        assert list(old["kind"]) == ["buy", "sell", "buy"]
        assert list(old["quantity"]) == [100.0, 40.0, 10.0] and list(old["price"]) == [100.0, 110.0, 160.0]
        assert list(old["fees"]) == [1.0, 1.0, 2.5] and set(old["created_by"]) == {"system:migration"}
        # bought without cash deposited: exactly the cash the buys needed was there already
        carried = traded[traded["note"] == NOTE]
        assert list(carried["kind"]) == ["deposit"]
        assert carried["amount"].iloc[0] == pytest.approx(10_001.0)  # the lowest the cash went: the first buy
        assert carried["trade_date"].iloc[0] < dt.date(2024, 1, 2)
        assert position(s, SYSTEM, "Traded").cash == pytest.approx(10_001.0 - 10_001.0 + 4_399.0 - 1_602.5)

        # sold before it was bought: the shares were there already; holdings beyond the ledger arrive in kind
        mismatch = list_transactions(s, SYSTEM, "Mismatch 🚀 O'Brien")
        carried = mismatch[mismatch["note"] == NOTE]
        shares = carried[carried["ticker"].notna()]
        assert sorted(shares[["kind", "ticker", "quantity", "trade_date"]].itertuples(index=False, name=None)) == [
            ("transfer_in", "AAPL", 3.0, dt.date(2024, 1, 12)),  # 15 held, 12 explained after the sale
            ("transfer_in", "AAPL", 5.0, dt.date(2024, 1, 4)),  # sold on 2024-01-05 before any buy
            ("transfer_in", "NVDA", 3.0, dt.date(2024, 1, 12)),
            ("transfer_out", "KO", 10.0, dt.date(2024, 1, 12))]  # 20 bought, 10 held
        deposit = carried[carried["kind"] == "deposit"]
        assert list(deposit["amount"]) == [pytest.approx(-(900.0 - 1_200.0 - 2_220.0))]
        assert position(s, SYSTEM, "Mismatch 🚀 O'Brien").cash == pytest.approx(0.0, abs=1e-6)

        # holdings written without a transaction arrive in kind, nothing else
        only = list_transactions(s, SYSTEM, "Holdings Only")
        assert set(only["kind"]) == {"transfer_in"} and set(only["note"]) == {NOTE}
        assert dict(zip(only["ticker"], only["quantity"], strict=True)) == {"KO": 100.0, "JNJ": 50.0}
        assert list_transactions(s, SYSTEM, "Empty").empty


def test_the_upgraded_store_is_a_working_book(upgraded):
    _, engine = upgraded
    with session_scope(engine) as s:
        # its tickers (NVDA is not in the bundled panel) and its people work as before
        add_transaction(s, "bob@wealth.test", "Mismatch 🚀 O'Brien", "sell", trade_date="2024-04-02", ticker="NVDA",
                        quantity=3, price=900.0)
        assert list(list_portfolios(s, "alice@wealth.test")["name"]) == ["Demo Growth", "Traded"]
        assert len(audit_trail(s, "root@wealth.test")) == 1
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        else:
            triggers = set(conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass "
                                             "AND NOT tgisinternal")).scalars())
            assert triggers == {"audit_log_append_only", "audit_log_no_truncate"}
    assert connect(str(engine.url.render_as_string(hide_password=False))) is not None  # a second open: no-op
    assert current_revision(engine) == head_revision()


def test_the_upgraded_schema_is_the_one_the_models_describe(upgraded):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from qpo.store import Base

    _, engine = upgraded
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
