"""The book valued at once (issue 19): qpo.book.valuation on SQLite and the real PostgreSQL.

- a hand-made ledger (a buy, a deposit dated on a weekend, a dividend, a withdrawal and a fee, a
  second name bought later) gives the market values and time-weighted returns computed here by
  hand, as fractions (money in from the start of its day, money out from its end);
- a client who sells everything at a loss and withdraws the proceeds the same day lost that loss;
- shares delivered in kind are a flow at the previous close (in) or the day's close (out); a name without any price makes the
  portfolio 'unpriced' (market value None, never 0); a name whose last price is older is 'stale';
  a portfolio with nothing on the date is 'empty';
- on a synthetic book, the same numbers as a slow, straightforward loop over the dates that replays
  each ledger with qpo.store.ledger.replay;
- book_weights gives each portfolio exactly the daily report's weights (ledger_weights);
- an advisor values only their own clients' portfolios.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from qpo.book.synthetic import seed_book
from qpo.book.valuation import VALUATION_COLUMNS, book_weights, value_book
from qpo.errors import AccessDenied, DataError, StoreError
from qpo.store import (
    Actor,
    ClientPortfolio,
    Transaction,
    add_user,
    create_portfolio,
    import_transactions,
    session_scope,
)
from qpo.store import ledger as ledger_mod
from tests.test_store import book_stores

store_url, engine = book_stores.store_url, book_stores.engine

SYSTEM = Actor.system("test")
ANA, BEN, RITA = "ana@val.test", "ben@val.test", "rita@val.test"
D = pd.Timestamp
DATES = pd.DatetimeIndex(["2023-12-28", "2023-12-29", "2024-01-02", "2024-01-03", "2024-01-04", "2024-02-01",
                          "2024-02-02"], name="date")
PRICES = pd.DataFrame({
    "A": [50.0, 55.0, 60.0, 57.0, 59.0, 60.0, 62.0],
    "B": [np.nan, np.nan, 18.0, 19.0, 19.5, 20.0, 22.0],
    "D": [10.0, 10.0, 10.0, 10.0, 11.0, 12.0, np.nan],  # no price on the last date: stale then
}, index=DATES)
AS_OF = dt.date(2024, 2, 2)
KNOWN = {"A", "B", "C", "D"}


def _rows(*entries):
    return [dict(zip(("kind", "trade_date", "ticker", "quantity", "price", "fees", "amount"), e, strict=False))
            for e in entries]


def hand_book(engine) -> dict[str, int]:
    """Five portfolios; their ids by name."""
    with session_scope(engine) as s:
        add_user(s, SYSTEM, ANA, "Ana", "advisor")
        add_user(s, SYSTEM, BEN, "Ben", "advisor")
        add_user(s, SYSTEM, RITA, "Rita", "researcher")
        # X: deposit 1000, buy 10 A at 50; a deposit of 500 on Saturday 30 Dec (counts on 2 Jan); a dividend of 20
        # on 3 Jan; a withdrawal of 300 and a fee of 10 on 4 Jan; 5 B at 20 (cost 1) on 1 Feb
        create_portfolio(s, SYSTEM, "X", "Client X", ANA, cash=1000.0, trade_date="2023-12-28", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "X", _rows(
            ("buy", "2023-12-28", "A", 10, 50.0, 0.0),
            ("deposit", "2023-12-30", None, None, None, 0.0, 500.0),
            ("dividend", "2024-01-03", "A", None, None, 0.0, 20.0),
            ("withdrawal", "2024-01-04", None, None, None, 0.0, 300.0),
            ("fee", "2024-01-04", None, None, None, 0.0, 10.0),
            ("buy", "2024-02-01", "B", 5, 20.0, 1.0)), known_tickers=KNOWN)
        # T: 10 A delivered in kind on 3 Jan (a flow at the previous close, 60)
        create_portfolio(s, SYSTEM, "T", "Client T", ANA, holdings={"A": 10.0}, trade_date="2024-01-03",
                         known_tickers=KNOWN)
        # U: holds C, which has no price at all
        create_portfolio(s, SYSTEM, "U", "Client U", BEN, cash=100.0, trade_date="2024-01-02", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "U", _rows(("buy", "2024-01-02", "C", 1, 10.0, 0.0),
                                                  ("buy", "2024-01-02", "A", 1, 60.0, 0.0)), known_tickers=KNOWN)
        # S: holds D, whose last price (1 Feb) is before the date
        create_portfolio(s, SYSTEM, "S", "Client S", BEN, cash=100.0, trade_date="2024-01-03", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "S", _rows(("buy", "2024-01-03", "D", 2, 10.0, 0.0)), known_tickers=KNOWN)
        # E: opens after the date
        create_portfolio(s, SYSTEM, "E", "Client E", BEN, cash=100.0, trade_date="2024-03-01", known_tickers=KNOWN)
        return {p.name: p.id for p in s.query(ClientPortfolio).all()}


def by_name(frame: pd.DataFrame, ids: dict[str, int]) -> dict[str, dict]:
    names = {v: k for k, v in ids.items()}
    return {names[r["portfolio_id"]]: r for r in frame.to_dict("records")}


def test_hand_computed_ledger(engine):
    ids = hand_book(engine)
    frame = value_book(engine, AS_OF, PRICES, actor=SYSTEM)
    assert list(frame.columns) == VALUATION_COLUMNS
    assert sorted(frame["portfolio_id"]) == sorted(ids.values())
    rows = by_name(frame, ids)

    x = rows["X"]
    # values at the closes: 28 Dec 1000 (500 cash + 10 x 50), 29 Dec 1050, 2 Jan 1600 (after the 500 deposit),
    # 3 Jan 1590 (dividend 20), 4 Jan 1300 (after -310: the withdrawal of 300 leaves at the end of the day, so
    # the day's growth is (1300 + 300) / 1590), 1 Feb 1309 (5 B bought at 20 for 101), 2 Feb 1339
    assert x["status"] == "valued" and x["unpriced"] == [] and x["stale"] == []
    assert x["cash"] == pytest.approx(609.0, abs=1e-9)
    assert x["holdings_value"] == pytest.approx(620.0 + 110.0, abs=1e-9)
    assert x["market_value"] == pytest.approx(1339.0, abs=1e-9)
    assert x["daily_return"] == pytest.approx(1339 / 1309 - 1, abs=1e-12)
    assert x["mtd_return"] == pytest.approx(1339 / 1300 - 1, abs=1e-12)  # 1309/1300 x 1339/1309
    ytd = (1600 / 1550) * (1590 / 1600) * (1600 / 1590) * (1309 / 1300) * (1339 / 1309) - 1
    assert x["ytd_return"] == pytest.approx(ytd, abs=1e-12)
    assert x["ytd_return"] == pytest.approx((1600 / 1550) * (1339 / 1300) - 1, abs=1e-12)
    assert x["inception_return"] == pytest.approx(1.05 * (ytd + 1) - 1, abs=1e-12)  # 28 Dec: 0; 29 Dec: +5 %
    # a simple (money-weighted-ish) gain would be (1339 - 1000 - 500 + 300) / 1000 = 13.9 %: TWR is not that
    assert abs(x["inception_return"] - 0.139) > 0.01

    t = rows["T"]  # 600 delivered at 60 (2 Jan's close), 570 on 3 Jan, 590, 600, 620
    assert t["market_value"] == pytest.approx(620.0) and t["cash"] == 0.0
    assert t["inception_return"] == pytest.approx(620 / 600 - 1, abs=1e-12)
    assert t["ytd_return"] == pytest.approx(620 / 600 - 1, abs=1e-12)
    assert t["mtd_return"] == pytest.approx(620 / 590 - 1, abs=1e-12)

    u = rows["U"]  # holds C: never valued at zero
    assert u["status"] == "unpriced" and u["unpriced"] == ["C"]
    assert u["market_value"] is None and u["holdings_value"] is None
    assert u["cash"] == pytest.approx(30.0)
    assert all(u[c] is None for c in ("daily_return", "mtd_return", "ytd_return", "inception_return"))

    s = rows["S"]  # D at 1 Feb's 12: stale, still valued
    assert s["status"] == "valued" and s["stale"] == ["D"] and s["unpriced"] == []
    assert s["market_value"] == pytest.approx(80.0 + 24.0)
    assert s["daily_return"] == pytest.approx(0.0, abs=1e-15)
    assert s["inception_return"] == pytest.approx(104 / 100 - 1, abs=1e-12)

    e = rows["E"]
    assert e["status"] == "empty" and e["market_value"] == 0.0 and e["cash"] == 0.0 and e["daily_return"] is None


def test_a_portfolio_is_valued_the_same_alone_or_with_others(engine):
    """Shares delivered in on a portfolio's first day are valued at their previous close whichever
    portfolios share its chunk: valued alone (the grid starting on that day), T's first day was 0 %
    and its since-inception return 620/570 - 1 for 620/600 - 1."""
    ids = hand_book(engine)
    together = by_name(value_book(engine, AS_OF, PRICES, actor=SYSTEM), ids)
    for name in ("T", "X", "S"):
        alone = value_book(engine, AS_OF, PRICES, actor=SYSTEM, portfolio_ids=[ids[name]]).iloc[0].to_dict()
        for column in ("market_value", "daily_return", "mtd_return", "ytd_return", "inception_return"):
            assert alone[column] == pytest.approx(together[name][column], abs=1e-12), (name, column)
    alone_t = value_book(engine, AS_OF, PRICES, actor=SYSTEM, portfolio_ids=[ids["T"]]).iloc[0]
    assert alone_t["inception_return"] == pytest.approx(620 / 600 - 1, abs=1e-12)


def test_money_out_leaves_at_the_end_of_its_day(engine):
    """Selling to pay a withdrawal the same day is that day's market move, not a loss of most of the
    portfolio (``V_t / (V_{t-1} + F_t)`` said -83 % for a 5 % fall, and NULL returns on a rise)."""
    px = pd.DataFrame({"A": [100.0, 95.0, 97.0, 98.0, 110.0]},
                      index=pd.DatetimeIndex(["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]))
    with session_scope(engine) as s:
        add_user(s, SYSTEM, ANA, "Ana", "advisor")
        # L: 10 A at 100; on 4 Mar (A at 95) all sold and 940 of the 950 withdrawn
        create_portfolio(s, SYSTEM, "L", "Client L", ANA, cash=1000.0, trade_date="2024-03-01", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "L", _rows(
            ("buy", "2024-03-01", "A", 10, 100.0, 0.0),
            ("sell", "2024-03-04", "A", 10, 95.0, 0.0),
            ("withdrawal", "2024-03-04", None, None, None, 0.0, 940.0)), known_tickers=KNOWN)
        # H: 10 A; on 7 Mar (A up 98 -> 110) half sold and the proceeds withdrawn
        create_portfolio(s, SYSTEM, "H", "Client H", ANA, cash=1000.0, trade_date="2024-03-01", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "H", _rows(
            ("buy", "2024-03-01", "A", 10, 100.0, 0.0),
            ("sell", "2024-03-07", "A", 5, 110.0, 0.0),
            ("withdrawal", "2024-03-07", None, None, None, 0.0, 550.0)), known_tickers=KNOWN)
        # O: 10 A delivered out in kind on 5 Mar (at that day's close, 97), 5 kept
        create_portfolio(s, SYSTEM, "O", "Client O", ANA, holdings={"A": 15.0}, trade_date="2024-03-01",
                         known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "O", _rows(("transfer_out", "2024-03-05", "A", 10, None, 0.0)),
                            known_tickers=KNOWN)
        ids = {p.name: p.id for p in s.query(ClientPortfolio).all()}
    rows = by_name(value_book(engine, "2024-03-07", px, actor=SYSTEM), ids)
    assert rows["L"]["market_value"] == pytest.approx(10.0)
    assert rows["L"]["inception_return"] == pytest.approx(-0.05, abs=1e-12)  # (10 + 940) / 1000, then cash
    assert rows["L"]["daily_return"] == pytest.approx(0.0, abs=1e-15)
    h = rows["H"]
    assert h["market_value"] == pytest.approx(550.0) and h["daily_return"] == pytest.approx(110 / 98 - 1, abs=1e-12)
    assert h["inception_return"] == pytest.approx(0.10, abs=1e-12)  # held through 100 -> 110
    o = rows["O"]  # 15 A throughout 100 -> 110: the 10 sent out on 5 Mar count until that day's close
    assert o["inception_return"] == pytest.approx(0.10, abs=1e-12)
    assert o["market_value"] == pytest.approx(550.0)


def test_dates_between_and_after_prices(engine):
    ids = hand_book(engine)
    # 30 Dec, a Saturday: the 500 deposited that day is in the cash; prices of the 29th, every name stale
    rows = by_name(value_book(engine, "2023-12-30", PRICES, actor=SYSTEM), ids)
    x = rows["X"]
    assert x["market_value"] == pytest.approx(1550.0) and x["stale"] == ["A"]
    assert x["daily_return"] == pytest.approx(0.0, abs=1e-15)  # 1550 / (1050 + 500)
    assert x["mtd_return"] == pytest.approx(0.05, abs=1e-12)
    assert rows["T"]["status"] == "empty"
    # the first day: a deposit spent at the close returns nothing (no costs)
    first = by_name(value_book(engine, "2023-12-28", PRICES, actor=SYSTEM), ids)["X"]
    assert first["daily_return"] == 0.0 and first["inception_return"] == 0.0 and first["market_value"] == 1000.0
    with pytest.raises(DataError, match="no prices on or before 2023-01-01"):
        value_book(engine, "2023-01-01", PRICES, actor=SYSTEM)
    with pytest.raises(DataError, match="not a date"):
        value_book(engine, "someday", PRICES, actor=SYSTEM)


def test_access_and_ids(engine):
    ids = hand_book(engine)
    mine = value_book(engine, AS_OF, PRICES, actor=ANA)
    assert set(mine["portfolio_id"]) == {ids["X"], ids["T"]}
    assert len(value_book(engine, AS_OF, PRICES, actor=RITA)) == 5
    with pytest.raises(AccessDenied, match="'U'"):
        value_book(engine, AS_OF, PRICES, actor=ANA, portfolio_ids=[ids["X"], ids["U"]])
    one = value_book(engine, AS_OF, PRICES, actor=SYSTEM, portfolio_ids=[ids["T"]])
    assert one["portfolio_id"].tolist() == [ids["T"]]
    with pytest.raises(StoreError, match="no portfolio with id"):
        value_book(engine, AS_OF, PRICES, actor=SYSTEM, portfolio_ids=[999_999])
    with pytest.raises(AccessDenied):
        value_book(engine, AS_OF, PRICES, actor="nobody@val.test")


def slow_valuation(engine, prices: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The same numbers the plain way: for every date of the panel, each ledger replayed up to it,
    valued at the last prices, deposits at the start of the day and withdrawals at its end, returns
    chained in a loop."""
    with session_scope(engine) as s:
        txs = s.query(Transaction).order_by(Transaction.portfolio_id, Transaction.trade_date, Transaction.id).all()
        entries: dict[int, list] = {}
        for t in txs:
            entries.setdefault(t.portfolio_id, []).append(ledger_mod.Entry(
                t.kind, t.trade_date, t.ticker, t.quantity, t.price, t.fees, t.amount, t.id))
    px = prices.loc[:as_of].ffill()
    out = []
    for pid, es in entries.items():
        first = min(e.trade_date for e in es)
        prev_value, prev_day = 0.0, None
        daily = {}
        for day in px.index:
            if day.date() < first:  # nothing held yet
                continue
            pos = ledger_mod.replay(es, as_of=day.date())
            value = float(sum(q * px.loc[day, t] for t, q in pos.shares.items())) + pos.cash
            today = [e for e in es if (prev_day is None or e.trade_date > prev_day.date())
                     and e.trade_date <= day.date()]
            inflow = sum(e.amount for e in today if e.kind == "deposit")
            outflow = sum(e.amount for e in today if e.kind == "withdrawal")
            daily[day] = (value + outflow) / (prev_value + inflow) - 1
            prev_value, prev_day = value, day

        def chain(start, daily=daily):
            g = 1.0
            for d, r in daily.items():
                if d >= start:
                    g *= 1 + r
            return g - 1

        out.append({"portfolio_id": pid, "market_value": prev_value, "daily_return": daily[px.index[-1]],
                    "mtd_return": chain(as_of.replace(day=1)), "ytd_return": chain(as_of.replace(month=1, day=1)),
                    "inception_return": chain(pd.Timestamp("1900-01-01"))})
    return pd.DataFrame(out).set_index("portfolio_id").sort_index()


def test_synthetic_book_equals_a_slow_loop(engine, sp500):
    prices = sp500.iloc[-160:]  # the book opens within the window's first 100-odd days
    seed_book(engine, 40, seed=3, prices=prices)
    as_of = prices.index[-1]
    fast = value_book(engine, as_of, prices, actor=SYSTEM).set_index("portfolio_id").sort_index()
    slow = slow_valuation(engine, prices, as_of)
    assert (fast["status"] == "valued").all()
    assert fast.index.tolist() == slow.index.tolist()
    for col in ("market_value", "daily_return", "mtd_return", "ytd_return", "inception_return"):
        np.testing.assert_allclose(fast[col].astype(float), slow[col], rtol=1e-10, atol=1e-12, err_msg=col)
    # returns differ across the book (not a constant), and the opening costs show on a 1-day-old portfolio
    assert fast["inception_return"].astype(float).std() > 1e-3


def test_book_weights_are_the_daily_reports(engine, sp500):
    from qpo.reporting.daily import ledger_weights

    prices = sp500.iloc[-400:]
    seed_book(engine, 12, seed=5, prices=prices)
    ids = hand_book(engine)
    as_of = prices.index[-1]
    weights, info = book_weights(engine, as_of, prices, actor=SYSTEM)
    assert weights.index.name == "portfolio_id" and (weights >= 0).all().all()
    with session_scope(engine) as s:
        names = {p.id: p.name for p in s.query(ClientPortfolio).all()}
        for pid in list(weights.index[:6]):
            w, cash = ledger_weights(s, SYSTEM, names[pid], prices, as_of)
            got = weights.loc[pid]
            assert set(got[got != 0].index) == set(w.index)
            np.testing.assert_allclose(got[w.index].to_numpy(), w.to_numpy(), rtol=1e-13, atol=0)
            assert info[pid]["cash"] == pytest.approx(cash, rel=1e-13, abs=1e-9)
            assert info[pid]["name"] == names[pid] and info[pid]["advisor_email"].endswith("@book.example.com")
            assert info[pid]["limits"] is not None and info[pid]["skipped"] is None
    # the hand-made book against its own little panel: ledger_weights where it reports, skipped where it refuses
    weights, info = book_weights(engine, AS_OF, PRICES, actor=SYSTEM, portfolio_ids=list(ids.values()))
    with session_scope(engine) as s:
        for name in ("X", "T", "S"):
            w, _ = ledger_weights(s, SYSTEM, name, PRICES, AS_OF)
            np.testing.assert_allclose(weights.loc[ids[name], w.index].to_numpy(), w.to_numpy(), rtol=1e-13)
    # S holds D, unpriced on 2 Feb: the daily report takes 1 Feb's prices for it, and so does book_weights
    assert info[ids["S"]]["prices_as_of"] == dt.date(2024, 2, 1)
    assert info[ids["X"]]["prices_as_of"] == AS_OF
    assert "which the price data lacks" in info[ids["U"]]["skipped"]
    assert info[ids["E"]]["skipped"] == "holds no shares on 2024-02-02"
    assert ids["U"] not in weights.index and ids["E"] not in weights.index
    x = weights.loc[ids["X"]]
    assert x["A"] == pytest.approx(620 / 1339) and x["B"] == pytest.approx(110 / 1339)


def test_the_book_total_is_unknown_while_a_portfolio_is_unpriced(engine):
    """The valuation report summed the market values with an unpriced portfolio's left out (NULL)
    and its cash kept: a book total that looked complete and was not."""
    from qpo.book.valuation import book_totals

    ids = hand_book(engine)
    frame = value_book(engine, AS_OF, PRICES, actor=SYSTEM)
    totals = book_totals(frame)
    rows = by_name(frame, ids)
    assert totals["unpriced"] == 1 and totals["market_value_complete"] is None  # U holds C, which has no price
    assert totals["market_value_priced"] == pytest.approx(sum(rows[n]["market_value"] for n in "XTSE"), abs=1e-9)
    assert totals["cash_priced"] == pytest.approx(sum(rows[n]["cash"] for n in "XTSE"), abs=1e-9)
    priced = book_totals(frame[frame["portfolio_id"] != ids["U"]])
    assert priced["market_value_complete"] == pytest.approx(totals["market_value_priced"], abs=1e-9)


def test_a_name_past_the_staleness_cap_is_unpriced_after_its_last_bar_only(engine):
    """The nightly run emptied a capped name's whole column: a portfolio that had sold it long
    before lost its month-to-date, year-to-date and since-inception returns (NULL for good)."""
    ids = hand_book(engine)
    with session_scope(engine) as s:  # V: 3 D bought on 2 Jan and sold on 4 Jan, then cash only
        create_portfolio(s, SYSTEM, "V", "Client V", ANA, cash=100.0, trade_date="2024-01-02", known_tickers=KNOWN)
        import_transactions(s, SYSTEM, "V", _rows(("buy", "2024-01-02", "D", 3, 10.0, 0.0),
                                                  ("sell", "2024-01-04", "D", 3, 11.0, 0.0)), known_tickers=KNOWN)
        ids["V"] = s.query(ClientPortfolio).filter_by(name="V").one().id
    carried = by_name(value_book(engine, AS_OF, PRICES, actor=SYSTEM), ids)
    capped = by_name(value_book(engine, AS_OF, PRICES, actor=SYSTEM, carry_until={"D": D("2024-02-01")}), ids)
    v = capped["V"]
    assert v["status"] == "valued" and v["market_value"] == pytest.approx(103.0)
    assert v["inception_return"] == pytest.approx(103 / 100 - 1, abs=1e-12)  # 30 -> 33 on D, then cash
    for column in ("daily_return", "mtd_return", "ytd_return", "inception_return"):
        assert v[column] == pytest.approx(carried["V"][column], abs=1e-12), column
    s_ = capped["S"]  # still holds D, whose last bar (1 Feb) is past the cap: unpriced, not stale
    assert s_["status"] == "unpriced" and s_["unpriced"] == ["D"] and s_["stale"] == [] and s_["market_value"] is None
    assert carried["S"]["status"] == "valued" and carried["S"]["stale"] == ["D"]
