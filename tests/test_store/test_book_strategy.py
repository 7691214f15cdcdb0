"""A strategy is checked for what it means when it is stored (issue 17, audit gap G3), so a stored
strategy always builds: an unknown objective, a negative cap, a lookback that is not a number, an
unknown key are refused by the store's create and update, the message naming the field, and
nothing is written. The store runs no optimizer: qpo.book registers Strategy's check with it."""
from __future__ import annotations

import subprocess
import sys

import pytest

import qpo.book  # noqa: F401  (registers the strategy check, as every qpo entry point does)
from qpo.book import Strategy
from qpo.errors import StoreError
from qpo.store import create_portfolio, get_portfolio, session_scope, update_portfolio
from tests.test_store import book_stores
from tests.test_store.book_stores import ANA, ANA_PF, table_dump

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book

BAD = [
    ({"schema_version": 1, "objective": "bogus", "constraints": {"max_weight": -5}, "lookback": "x"},
     ["objective", "'bogus'", "min_variance"]),
    ({"schema_version": 1, "constraints": {"max_weight": -5}}, ["max_weight", "-5"]),
    ({"schema_version": 1, "lookback": "x"}, ["lookback", "'x'"]),
    ({"schema_version": 1, "lookback": 3}, ["lookback"]),
    ({"schema_version": 1, "objective": "max_sharpe", "rebalance_band": 0}, ["rebalance_band"]),
    ({"schema_version": 1, "note": "free text"}, ["unknown key 'note'"]),
    ({"schema_version": 1, "constraints": {"min_weight": 0.5, "max_weight": 0.4}}, ["constraints"]),
]


@pytest.mark.parametrize("strategy, needles", BAD)
def test_update_refuses_a_strategy_that_does_not_build(book, strategy, needles):
    before = table_dump(book.engine)
    with pytest.raises(StoreError) as info:
        with session_scope(book.engine) as s:
            update_portfolio(s, ANA, ANA_PF, strategy=strategy)
    message = str(info.value)
    assert message.startswith(f"portfolio '{ANA_PF}'") and "strategy" in message and len(message) < 300
    for needle in needles:
        assert needle in message, (needle, message)
    assert table_dump(book.engine) == before


def test_create_refuses_it_too_and_writes_nothing(book):
    before = table_dump(book.engine)
    strategy, needles = BAD[0]
    with pytest.raises(StoreError, match="objective") as info:
        with session_scope(book.engine) as s:
            create_portfolio(s, ANA, "New One", "Client", ANA, cash=1_000.0, strategy=strategy)
    assert "'bogus'" in str(info.value)
    assert table_dump(book.engine) == before


def test_a_valid_strategy_is_stored_as_given_and_builds(book):
    given = {"schema_version": 1, "objective": "max_utility", "objective_options": {"risk_aversion": 3},
             "constraints": {"max_weight": 0.4}, "lookback": 252}
    with session_scope(book.engine) as s:
        update_portfolio(s, ANA, ANA_PF, strategy=given)
        update_portfolio(s, ANA, ANA_PF, strategy=Strategy(objective="risk_parity"))
    with session_scope(book.engine) as s:
        stored = get_portfolio(s, ANA, ANA_PF).strategy
    assert stored == Strategy(objective="risk_parity").to_json()
    with session_scope(book.engine) as s:
        update_portfolio(s, ANA, ANA_PF, strategy=given)
    with session_scope(book.engine) as s:
        stored = get_portfolio(s, ANA, ANA_PF).strategy
    assert stored == given and Strategy.from_json(stored).lookback == 252


def test_without_qpo_book_loaded_the_store_refuses_rather_than_stores_unchecked(tmp_path):
    code = f"""
import sys
from qpo.store import Actor, add_user, connect, create_portfolio, session_scope
engine = connect("sqlite:///{tmp_path / 'alone.db'}")
with session_scope(engine) as s:
    add_user(s, Actor.system("t"), "a@b.test", "A", "advisor")
try:
    with session_scope(engine) as s:
        create_portfolio(s, Actor.system("t"), "P", "C", "a@b.test", cash=1.0, strategy={{"schema_version": 1}})
except Exception as exc:
    print(type(exc).__name__, exc)
print("qpo.book" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "StoreError" in out and "`import qpo.book` first" in out
    assert out.strip().endswith("False")


def test_one_benchmark_the_portfolios_own_then_its_strategys(book):
    """G6: the portfolio's benchmark column is the source of truth; its strategy's benchmark is the
    default when the column is empty; portfolio_benchmark is the one accessor."""
    from qpo.store.portfolios import portfolio_benchmark

    with session_scope(book.engine) as s:
        assert portfolio_benchmark(get_portfolio(s, ANA, ANA_PF)) == "SP500"  # the book opened it so
        update_portfolio(s, ANA, ANA_PF, strategy=Strategy(benchmark="MSCI World"))
        assert portfolio_benchmark(get_portfolio(s, ANA, ANA_PF)) == "SP500"  # the portfolio's own wins
        update_portfolio(s, ANA, ANA_PF, benchmark=None)
        assert portfolio_benchmark(get_portfolio(s, ANA, ANA_PF)) == "MSCI World"  # the strategy's default
        update_portfolio(s, ANA, ANA_PF, strategy=None)
        assert portfolio_benchmark(get_portfolio(s, ANA, ANA_PF)) is None
