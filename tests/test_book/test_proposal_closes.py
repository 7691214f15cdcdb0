"""A proposal is valued, and its trades priced, at the closes shares traded at (on SQLite and the
real PostgreSQL). Before a later split or dividend, a vendor's adjusted close is not what a share
cost that day: a proposal as of such a day priced AAA at half its close, valued the 40 shares held
at half, and its accepted trades booked cash at those prices."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qpo.book.proposals import accept_rebalance, propose_rebalance
from qpo.store import Actor, add_user, create_portfolio, import_transactions, position, session_scope
from qpo.store.market_data import upsert_bars
from tests.test_store import book_stores

store_url, engine = book_stores.store_url, book_stores.engine

SYSTEM = Actor.system("test")
ANA = "ana@closes.test"
DATES = pd.bdate_range("2024-01-02", periods=90)
SPLIT_AT = 70  # AAA splits 2-for-1 on DATES[70]: its adjusted closes before are half the actual ones


def _bars() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for k, ticker in enumerate(["AAA", "BBB", "CCC"]):
        close = (100.0 + 20 * k) * np.exp(np.cumsum(rng.normal(0.0005, 0.012, len(DATES))))
        split = np.ones(len(DATES))
        adjusted = close.copy()
        if ticker == "AAA":
            close[SPLIT_AT:] /= 2.0
            split[SPLIT_AT] = 2.0
            adjusted = close.copy()
            adjusted[:SPLIT_AT] /= 2.0
        rows.append(pd.DataFrame({"date": DATES, "ticker": ticker, "open": close, "high": close, "low": close,
                                  "close": close, "adjusted_close": adjusted, "volume": 1e6, "dividend_amount": 0.0,
                                  "split_coefficient": split}))
    return pd.concat(rows, ignore_index=True)


def test_a_proposal_before_a_split_trades_at_the_days_actual_closes(engine):
    bars = _bars()
    upsert_bars(engine, bars, source="vendor")
    actual = bars.pivot(index="date", columns="ticker", values="close")
    known = ["AAA", "BBB", "CCC"]
    with session_scope(engine) as s:
        add_user(s, SYSTEM, ANA, "Ana", "advisor")
        create_portfolio(s, SYSTEM, "P", "Client P", ANA, cash=20_000.0, trade_date=DATES[0].date(), known_tickers=known)
        import_transactions(s, SYSTEM, "P", [{"kind": "buy", "trade_date": DATES[1].date(), "ticker": "AAA",
                                              "quantity": 40, "price": float(actual.iloc[1]["AAA"])}],
                            known_tickers=known)
    day = DATES[60]
    proposal = propose_rebalance("P", as_of=day, actor=ANA, engine=engine, universe=known, max_weight=0.5,
                                 lookback=40)
    paid = actual.loc[day]
    with session_scope(engine, write=False) as s:
        cash = position(s, SYSTEM, "P").cash
    assert proposal.value_before == pytest.approx(cash + 40 * paid["AAA"], rel=1e-12)
    assert proposal.parameters["closes"] == pytest.approx(paid.to_dict(), rel=1e-12)
    for t in proposal.trades.itertuples():
        assert t.price == pytest.approx(paid[t.ticker], rel=1e-12)
    assert proposal.cash_after >= 0
    # the ticket of a day with newer prices is for reading: accepting it is refused (rebuild it)
    with pytest.raises(Exception, match="rebuild it"):
        accept_rebalance(proposal.id, actor=ANA, engine=engine)
    # on the last day the actual and adjusted closes agree: accepted, the ledger's cash as proposed
    last = propose_rebalance("P", actor=ANA, engine=engine, universe=known, max_weight=0.5, lookback=40)
    assert last.parameters["closes"] == pytest.approx(actual.iloc[-1].to_dict(), rel=1e-12)
    assert accept_rebalance(last.id, actor=ANA, engine=engine).status == "accepted"
    with session_scope(engine, write=False) as s:
        assert position(s, SYSTEM, "P").cash == pytest.approx(last.cash_after, abs=1e-6)
