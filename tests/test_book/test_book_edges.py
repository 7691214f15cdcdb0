"""Edges of the client book found by the issue-17 audit: strategies no universe can hold are
refused when made (so never stored), and a strategy that holds on some universes is kept."""
from __future__ import annotations

import pytest

from qpo.book.strategy import Strategy, StrategyError
from qpo.errors import StoreError


def _strategy(constraints: dict, **extra) -> Strategy:
    return Strategy.from_json({"schema_version": 1, "constraints": constraints, **extra})


@pytest.mark.parametrize("constraints, expected", [
    ({"min_weight": {"AAPL": 0.6, "MSFT": 0.6}},
     "min_weight asks for 120.0% (AAPL 60.0%, MSFT 60.0%), above the budget 100.0%"),
    ({"min_weight": {"AAPL": 0.3, "MSFT": 0.3}, "budget": 0.5},
     "min_weight asks for 60.0% (AAPL 30.0%, MSFT 30.0%), above the budget 50.0%"),
    ({"min_weight": 0.3, "max_weight": {"AAPL": 0.5, "KO": 0.5, "XOM": 0.5, "PG": 0.5}},
     "min_weight 30.0% for each of the 4 tickers the constraints name asks for 120.0%, above the budget 100.0%"),
    ({"groups": {"AAPL": "tech", "KO": "staples"}, "group_min": {"tech": 0.7, "staples": 0.6}},
     "group_min asks for 130.0% over 2 group(s), above the budget 100.0%"),
])
def test_floors_no_universe_can_hold_are_refused_when_made(constraints, expected):
    with pytest.raises(StrategyError, match="strategy constraints: ") as info:
        _strategy(constraints)
    assert expected in str(info.value)
    assert "at most" in str(info.value)  # what is valid


@pytest.mark.parametrize("constraints", [
    {"min_weight": {"AAPL": 0.5, "MSFT": 0.5}},  # exactly the budget
    {"min_weight": 0.25, "max_weight": {"AAPL": 0.5, "KO": 0.5, "XOM": 0.5, "PG": 0.5}},  # 4 x 25 % = 100 %
    {"groups": {"AAPL": "tech", "KO": "staples"}, "group_min": {"tech": 0.4, "staples": 0.6}},
    {"max_weight": 0.01},  # holds on 100 names or more: decided per proposal (or by the command line)
])
def test_floors_that_some_universe_holds_are_kept(constraints):
    assert _strategy(constraints).to_json()["constraints"]


def test_a_stored_impossible_strategy_still_reads_back():
    """Strategies stored before this check read back (proposals then say why they fail)."""
    obj = {"schema_version": 1, "constraints": {"min_weight": {"AAPL": 0.6, "MSFT": 0.6}}}
    assert Strategy.from_json(obj, check_builds=False).constraints.min_weight == {"AAPL": 0.6, "MSFT": 0.6}


def test_the_store_refuses_an_impossible_strategy(tmp_path):
    from qpo.store import add_user, connect, create_portfolio, session_scope, update_portfolio

    engine = connect(f"sqlite:///{tmp_path / 'q.db'}")
    with session_scope(engine) as s:
        add_user(s, None, "a@example.com", "A", "admin")
    with session_scope(engine) as s:
        create_portfolio(s, "a@example.com", "P", "C", "a@example.com", cash=1000, trade_date="2022-12-01")
    bad = {"schema_version": 1, "constraints": {"min_weight": {"AAPL": 0.6, "MSFT": 0.6}}}
    with pytest.raises(StoreError, match="min_weight asks for 120.0%"), session_scope(engine) as s:
        update_portfolio(s, "a@example.com", "P", strategy=bad)
    with session_scope(engine) as s:
        from qpo.store import get_portfolio

        assert get_portfolio(s, "a@example.com", "P").strategy is None
