"""The ledger is the truth (issue 17): holdings and cash are derived from the transactions, on
SQLite and on the real PostgreSQL.

- random valid sequences of buys, sells, deposits, withdrawals, dividends, fees and transfers
  (hypothesis) give the holdings and cash of a plain-Python fold written here from the design's
  cash rules, at the end and at a date in between; the database's own sums (list_portfolios'
  n_holdings and cash) agree with position();
- selling more than is held and spending cash the portfolio lacks are refused with the numbers,
  also when the entry is dated in the past and would break a balance the ledger already had;
- an import is all or nothing.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import threading

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from qpo.errors import StoreError
from qpo.store import (
    Actor,
    LedgerError,
    OptimizationRun,
    accept_proposal,
    add_transaction,
    create_portfolio,
    delete_portfolio,
    get_proposal,
    import_transactions,
    last_accepted_target,
    list_portfolios,
    list_proposals,
    list_transactions,
    position,
    reject_proposal,
    save_proposal,
    session_scope,
)
from tests.test_store import book_stores
from tests.test_store.book_stores import (
    ADMIN,
    ANA,
    ANA_CASH,
    ANA_PF,
    ANA_SHARES,
    BEN,
    BEN_PF,
    OPENED,
    minimal_record,
    table_dump,
    trade,
)

store_url, engine, book = book_stores.store_url, book_stores.engine, book_stores.book
SYSTEM = Actor.system("test")
TICKERS = ("AAPL", "MSFT", "KO", "JNJ", "XOM")
START = dt.date(2023, 1, 2)


# -- an independent fold ---------------------------------------------------------------------------
def fold(entries: list[dict], as_of: dt.date | None = None) -> tuple[dict[str, float], float]:
    """Shares and cash after ``entries`` (already in the order they were written; dates never go
    back), from the design's rules: buy -(q p + fees), sell +(q p - fees), deposit and dividend
    +amount, withdrawal and fee -amount, transfers move shares only."""
    shares: dict[str, float] = {}
    cash = 0.0
    for e in entries:
        if as_of is not None and e["trade_date"] > as_of:
            continue
        k = e["kind"]
        if k in ("buy", "transfer_in"):
            shares[e["ticker"]] = shares.get(e["ticker"], 0.0) + e["quantity"]
        elif k in ("sell", "transfer_out"):
            shares[e["ticker"]] = shares.get(e["ticker"], 0.0) - e["quantity"]
        if k == "buy":
            cash -= e["quantity"] * e["price"] + e.get("fees", 0.0)
        elif k == "sell":
            cash += e["quantity"] * e["price"] - e.get("fees", 0.0)
        elif k in ("deposit", "dividend"):
            cash += e["amount"]
        elif k in ("withdrawal", "fee"):
            cash -= e["amount"]
    return {t: q for t, q in shares.items() if abs(q) > 1e-9}, cash


def _cents(x: float) -> float:
    return math.floor(x * 100) / 100


@st.composite
def ledgers(draw) -> list[dict]:
    """A valid ledger, opening with a deposit: each step draws a kind and fractions, and the step is
    sized from the balances so far so that it never oversells or overdraws."""
    day = START
    first = float(draw(st.integers(100, 50_000)))
    entries = [dict(kind="deposit", trade_date=day, amount=first)]
    shares, cash = {}, first
    for _ in range(draw(st.integers(0, 14))):
        day = day + dt.timedelta(days=draw(st.integers(0, 3)))
        kind = draw(st.sampled_from(["buy", "buy", "sell", "sell", "deposit", "withdrawal", "dividend", "fee",
                                     "transfer_in", "transfer_out"]))
        frac = draw(st.floats(0.05, 1.0))
        ticker = draw(st.sampled_from(TICKERS))
        price = draw(st.integers(100, 50_000)) / 100
        fees = draw(st.sampled_from([0.0, 0.0, 1.0, 4.95]))
        held = sorted(shares)
        e = None
        if kind == "buy" and cash > fees + price:
            qty = math.floor((cash - fees) / price * frac)
            if qty >= 1:
                e = dict(kind="buy", ticker=ticker, quantity=float(qty), price=price, fees=fees)
        elif kind in ("sell", "transfer_out") and held:
            ticker = draw(st.sampled_from(held))
            qty = shares[ticker] if draw(st.booleans()) else max(1.0, math.floor(shares[ticker] * frac))
            qty = min(qty, shares[ticker])
            if kind == "sell" and qty * price + cash >= fees:
                e = dict(kind="sell", ticker=ticker, quantity=qty, price=price, fees=fees)
            elif kind == "transfer_out":
                e = dict(kind="transfer_out", ticker=ticker, quantity=qty)
        elif kind == "deposit":
            e = dict(kind="deposit", amount=float(draw(st.integers(1, 20_000))))
        elif kind == "dividend" and (ever := sorted({x["ticker"] for x in entries if x["kind"] in ("buy", "transfer_in")})):
            # paid on a name held now or before (a sale between the ex-date and the payment is fine)
            e = dict(kind="dividend", ticker=draw(st.sampled_from(ever)), amount=draw(st.integers(1, 50_000)) / 100)
        elif kind in ("withdrawal", "fee") and _cents(cash * frac) >= 0.01:
            e = dict(kind=kind, amount=_cents(cash * frac))
        elif kind == "transfer_in":
            qty = draw(st.sampled_from([1.0, 7.0, 25.0, 0.5, 12.25]))
            e = dict(kind="transfer_in", ticker=ticker, quantity=qty)
            if draw(st.booleans()):
                e["price"] = price
        if e is None:
            continue
        e["trade_date"] = day
        entries.append(e)
        shares, cash = fold(entries)
        assert cash >= -1e-6 and all(q > 0 for q in shares.values())
    return entries


_names = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=ledgers(), chunks=st.integers(1, 3), data=st.data())
def test_holdings_and_cash_are_the_fold_of_the_ledger(book, entries, chunks, data):
    engine = book.engine
    name = f"Fold {next(_names)}"
    opening, rest = entries[0], entries[1:]
    with session_scope(engine) as s:
        create_portfolio(s, SYSTEM, name, "Client F", ANA, cash=opening["amount"], trade_date=opening["trade_date"])
    # the rest written in one to three parts: one entry by add_transaction, more by import
    size = max(1, math.ceil(len(rest) / chunks))
    for part in (rest[i:i + size] for i in range(0, len(rest), size)):
        with session_scope(engine) as s:
            if len(part) == 1:
                add_transaction(s, ANA, name, **part[0])
            else:
                import_transactions(s, ANA, name, part)
    shares, cash = fold(entries)
    with session_scope(engine) as s:
        pos = position(s, ANA, name)
        ledger = list_transactions(s, ANA, name)
        listed = list_portfolios(s, SYSTEM).set_index("name")
        assert pos.shares.to_dict() == pytest.approx(shares, abs=1e-9)
        assert sorted(pos.shares.index) == sorted(shares)
        assert pos.cash == pytest.approx(cash, abs=1e-6)
        assert pos.cash >= 0
        assert pos.n_transactions == len(entries) == len(ledger)
        assert pos.last_transaction_id == ledger["id"].max()
        assert ledger["cash_after"].iloc[-1] == pytest.approx(cash, abs=1e-6)
        # the database's own sums agree with the replay, for every portfolio of the store
        assert len(listed) >= 3
        for other in listed.index:
            p = position(s, SYSTEM, other)
            assert listed.loc[other, "n_holdings"] == len(p.shares), other
            assert listed.loc[other, "cash"] == pytest.approx(p.cash, abs=1e-6), other
        # and the position at a date in between is the fold of the entries up to that date
        mid = data.draw(st.sampled_from([e["trade_date"] for e in entries]))
        shares_mid, cash_mid = fold(entries, mid)
        pos_mid = position(s, ANA, name, as_of=mid)
        assert pos_mid.shares.to_dict() == pytest.approx(shares_mid, abs=1e-9)
        assert pos_mid.cash == pytest.approx(cash_mid, abs=1e-6)


def test_the_books_opening_position(book):
    with session_scope(book.engine) as s:
        pos = position(s, ANA, ANA_PF)
        assert pos.shares.to_dict() == ANA_SHARES and pos.cash == ANA_CASH
        ledger = list_transactions(s, ANA, ANA_PF)
        assert sorted(ledger["kind"]) == ["deposit", "transfer_in", "transfer_in"]
        assert set(ledger["trade_date"]) == {OPENED}
        assert position(s, ANA, ANA_PF, as_of=OPENED - dt.timedelta(days=1)).shares.empty


def test_fees_on_any_entry_count_alike_in_python_and_in_sql(book):
    """Costs on a deposit or a transfer (the ledger takes them on every kind) are counted the same
    by the replay and by list_portfolios' SQL sums; fractional shares that add up to zero are gone
    in both."""
    day = dt.date(2024, 2, 1)
    rows = [dict(kind="deposit", trade_date=day, amount=100.0, fees=2.5),
            dict(kind="transfer_in", trade_date=day, ticker="PG", quantity=0.1, fees=1.0),
            dict(kind="transfer_in", trade_date=day, ticker="PG", quantity=0.2),
            dict(kind="transfer_out", trade_date=day, ticker="PG", quantity=0.3),
            dict(kind="buy", trade_date=day, ticker="KO", quantity=0.1, price=60.0),
            dict(kind="buy", trade_date=day, ticker="KO", quantity=0.2, price=60.0),
            dict(kind="sell", trade_date=day, ticker="KO", quantity=0.3, price=61.0, fees=0.5)]
    with session_scope(book.engine) as s:
        import_transactions(s, ANA, ANA_PF, rows)
    with session_scope(book.engine) as s:
        pos = position(s, ANA, ANA_PF)
        row = list_portfolios(s, ANA).set_index("name").loc[ANA_PF]
    assert "PG" not in pos.shares and "KO" not in pos.shares
    assert pos.cash == pytest.approx(ANA_CASH + 100.0 - 2.5 - 1.0 - 0.1 * 60 - 0.2 * 60 + 0.3 * 61 - 0.5)
    assert row["n_holdings"] == len(pos.shares) == 2
    assert row["cash"] == pytest.approx(pos.cash, abs=1e-6)


# -- refusals with the numbers ---------------------------------------------------------------------
def _refused(book, call, *numbers: str) -> str:
    before = table_dump(book.engine)
    with session_scope(book.engine) as s:
        with pytest.raises(LedgerError) as info:
            call(s)
    message = str(info.value)
    assert len(message) < 300
    for n in numbers:
        assert n in message, (n, message)
    assert "nothing written" in message
    assert table_dump(book.engine) == before
    return message


def test_selling_more_than_held_is_refused_with_the_numbers(book):
    day = dt.date(2024, 3, 28)
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "sell", trade_date=day, ticker="AAPL", quantity=120,
                                             price=190.0), "sell 120 AAPL", "2024-03-28", "holds 100 AAPL")
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "transfer_out", trade_date=day, ticker="MSFT",
                                             quantity=50.5), "transfer_out 50.5 MSFT", "holds 50 MSFT")
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "sell", trade_date=day, ticker="KO", quantity=1,
                                             price=60.0), "sell 1 KO", "holds 0 KO")
    # before the shares came in, they were not there to sell
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "sell", trade_date="2023-12-29", ticker="AAPL",
                                             quantity=10, price=190.0), "2023-12-29", "holds 0 AAPL")
    with session_scope(book.engine) as s:  # all of it is fine
        add_transaction(s, ANA, ANA_PF, "sell", trade_date=day, ticker="AAPL", quantity=100, price=190.0)
        assert "AAPL" not in position(s, ANA, ANA_PF).shares


def test_a_dividend_needs_a_name_held_now_or_before(book):
    day = dt.date(2024, 3, 28)
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "dividend", trade_date=day, ticker="KO", amount=50.0),
             "dividend", "KO", "held no KO")
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "dividend", trade_date="2023-12-29", ticker="AAPL",
                                             amount=24.0), "2023-12-29", "held no AAPL")  # before the shares came
    with session_scope(book.engine) as s:  # sold before the payment date: the dividend is still the client's
        add_transaction(s, ANA, ANA_PF, "sell", trade_date=day, ticker="AAPL", quantity=100, price=190.0)
        cash = position(s, ANA, ANA_PF).cash
        add_transaction(s, ANA, ANA_PF, "dividend", trade_date=day + dt.timedelta(days=5), ticker="AAPL", amount=24.0)
        assert position(s, ANA, ANA_PF).cash == pytest.approx(cash + 24.0, abs=1e-9)
    later = day + dt.timedelta(days=7)  # one import: the dividend listed before the buy of its name, same date
    with session_scope(book.engine) as s:
        cash = position(s, ANA, ANA_PF).cash
        import_transactions(s, ANA, ANA_PF, [dict(kind="dividend", trade_date=later, ticker="KO", amount=5.0),
                                             dict(kind="buy", trade_date=later, ticker="KO", quantity=10.0, price=60.0)])
        assert position(s, ANA, ANA_PF).cash == pytest.approx(cash + 5.0 - 600.0, abs=1e-9)


def test_spending_cash_the_portfolio_lacks_is_refused_with_the_numbers(book):
    day = dt.date(2024, 3, 28)
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "buy", trade_date=day, ticker="MSFT", quantity=100,
                                             price=400.0), "buy 100 MSFT", "40,000.00", "10,000.00")
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "buy", trade_date=day, ticker="MSFT", quantity=25,
                                             price=400.0, fees=0.01), "10,000.01", "10,000.00")
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "withdrawal", trade_date=day, amount=10_000.5),
             "withdrawal of 10,000.50", "10,000.00")
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "fee", trade_date=day, amount=12_345.0),
             "12,345.00", "10,000.00")
    with session_scope(book.engine) as s:  # exactly what there is: fine
        add_transaction(s, ANA, ANA_PF, "buy", trade_date=day, ticker="MSFT", quantity=25, price=400.0)
        assert position(s, ANA, ANA_PF).cash == 0.0


def test_a_back_dated_entry_may_not_break_a_balance_the_ledger_had(book):
    with session_scope(book.engine) as s:
        add_transaction(s, ANA, ANA_PF, "withdrawal", trade_date="2024-03-01", amount=9_000.0)
        add_transaction(s, ANA, ANA_PF, "sell", trade_date="2024-03-01", ticker="AAPL", quantity=100, price=180.0)
    # before the opening deposit there was no cash
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "withdrawal", trade_date="2024-01-01", amount=50.0),
             "withdrawal of 50.00", "2024-01-01", "has 0.00")
    # a buy in February is affordable then, but leaves too little for March's withdrawal
    message = _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "buy", trade_date="2024-02-01", ticker="AAPL",
                                                       quantity=10, price=150.0), "9,000.00", "8,500.00")
    assert "2024-03-01" in message
    # a sale in February leaves too few shares for March's sale
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "sell", trade_date="2024-02-01", ticker="AAPL",
                                             quantity=10, price=150.0), "sell 100 AAPL", "holds 90 AAPL")
    with session_scope(book.engine) as s:
        pos = position(s, ANA, ANA_PF)
        assert pos.cash == pytest.approx(1_000.0 + 18_000.0) and "AAPL" not in pos.shares


def test_an_entry_dated_in_the_future_or_before_1900_is_refused(book):
    """A typo such as 2099 would count cash and shares today that do not exist yet (and lock the
    portfolio's proposals out): an entry records what happened."""
    ahead = dt.date.today() + dt.timedelta(days=40)

    def _refused(book, call, *parts):
        before = table_dump(book.engine)
        with session_scope(book.engine) as s:
            with pytest.raises(StoreError) as info:
                call(s)
        assert all(p in str(info.value) for p in parts), str(info.value)
        assert len(str(info.value)) < 300 and table_dump(book.engine) == before

    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "deposit", trade_date=ahead, amount=100.0),
             f"trade date {ahead.isoformat()} is outside 1900-01-01 to today")
    _refused(book, lambda s: add_transaction(s, ANA, ANA_PF, "deposit", trade_date="1800-01-02", amount=100.0),
             "1800-01-02 is outside")
    _refused(book, lambda s: create_portfolio(s, ANA, "Later", "Client Later", ANA, cash=100.0,
                                              trade_date="2099-01-01"), "2099-01-01 is outside")
    _refused(book, lambda s: create_portfolio(s, ANA, "Later", "Client Later", ANA, holdings=pd.DataFrame(
        {"ticker": ["AAPL"], "shares": [1.0], "date": [pd.Timestamp("2099-01-01")]})), "AAPL date 2099-01-01")
    with session_scope(book.engine) as s:  # today is fine
        add_transaction(s, ANA, ANA_PF, "deposit", trade_date=dt.date.today(), amount=100.0)
        assert position(s, ANA, ANA_PF).cash == pytest.approx(ANA_CASH + 100.0)


def test_an_entry_takes_the_fields_of_its_kind(book):
    day = dt.date(2024, 3, 28)
    bad = [dict(kind="buy", ticker="AAPL", quantity=1),  # no price
           dict(kind="deposit", amount=10.0, ticker="AAPL", price=3.0),  # a deposit has no price
           dict(kind="sell", ticker="AAPL", quantity=-1, price=10.0),
           dict(kind="deposit", amount=0.0),
           dict(kind="deposit", amount=float("nan")),
           dict(kind="buy", ticker="AAPL", quantity=1, price=10.0, fees=-1.0),
           dict(kind="gift", amount=10.0),
           dict(kind="buy", ticker="NOPE", quantity=1, price=10.0)]
    for fields in bad:
        before = table_dump(book.engine)
        with session_scope(book.engine) as s:
            with pytest.raises(StoreError) as info:
                add_transaction(s, ANA, ANA_PF, trade_date=day, **fields)
        assert len(str(info.value)) < 300
        assert table_dump(book.engine) == before


# -- an import: all or nothing ---------------------------------------------------------------------
def _import_refused(book, rows, *needles) -> str:
    before = table_dump(book.engine)
    with session_scope(book.engine) as s:
        with pytest.raises(StoreError) as info:
            import_transactions(s, ANA, ANA_PF, rows)
    message = str(info.value)
    assert len(message) < 300
    for n in needles:
        assert n in message, (n, message)
    assert table_dump(book.engine) == before
    return message


def test_an_import_is_all_or_nothing(book):
    day = "2024-03-28"
    good = [dict(kind="deposit", trade_date=day, amount=1_000.0),
            dict(kind="buy", trade_date=day, ticker="KO", quantity=10, price=60.0, fees=1.0)]
    # the third row oversells: the first two are not written either
    _import_refused(book, good + [dict(kind="sell", trade_date=day, ticker="JNJ", quantity=1, price=150.0)],
                    "sell 1 JNJ", "holds 0 JNJ")
    # the third row spends what the first two left, and more
    _import_refused(book, good + [dict(kind="withdrawal", trade_date=day, amount=10_400.0)], "10,400.00", "10,399.00")
    # rows that cannot be read are named, every one of them
    _import_refused(book, good + [dict(kind="buy", trade_date=day, ticker="ZZZZ", quantity=1, price=1.0),
                                  dict(kind="gift", trade_date=day, amount=5.0)], "row 3", "ZZZZ", "row 4", "gift")
    _import_refused(book, good + [dict(kind="deposit", trade_date="not a date", amount=1.0)], "row 3", "trade date")
    _import_refused(book, good + [dict(kind="deposit", trade_date=day, amount=1.0, colour="red")], "row 3", "colour")
    _import_refused(book, [], "no transactions")
    # all good: all written, in order, and the cash is what it should be
    frame = pd.DataFrame(good + [dict(kind="dividend", trade_date=day, ticker="KO", amount=3.5)])
    with session_scope(book.engine) as s:
        written = import_transactions(s, ANA, ANA_PF, frame)
        assert [t.kind for t in written] == ["deposit", "buy", "dividend"]
    with session_scope(book.engine) as s:
        pos = position(s, ANA, ANA_PF)
        assert pos.shares["KO"] == 10
        assert pos.cash == pytest.approx(ANA_CASH + 1_000.0 - 601.0 + 3.5)
        assert len(list_transactions(s, ANA, ANA_PF)) == 3 + 3


# -- proposals: accepted into the ledger in one transaction ------------------------------------------
def _save(book, trades, name=ANA_PF, **kw) -> int:
    record = minimal_record(book.engine, name, trades, **kw)
    with session_scope(book.engine) as s:
        return save_proposal(s, SYSTEM, name, record).id


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_accepting_writes_the_trades_the_run_and_the_trail_together(book):
    day = dt.date(2024, 3, 28)
    pid = _save(book, [trade("buy", "KO", 10.0, 60.0, cost=1.5), trade("sell", "AAPL", 20.0, 190.0, cost=2.0)],
                prices_as_of=day, weights={"AAPL": 0.4, "MSFT": 0.3, "KO": 0.3})
    runs, audits = _count(book.engine, "optimization_runs"), _count(book.engine, "audit_log")
    with session_scope(book.engine) as s:
        accepted = accept_proposal(s, ANA, pid, latest_price_date=day)
        assert accepted.status == "accepted" and accepted.decided_by == ANA and accepted.optimization_run_id
    with session_scope(book.engine) as s:
        ledger = list_transactions(s, ANA, ANA_PF)
        new = ledger[ledger["proposal_id"] == pid]
        assert list(new["kind"]) == ["sell", "buy"]  # sells first: their cash pays for the buys
        assert list(new["ticker"]) == ["AAPL", "KO"] and list(new["quantity"]) == [20.0, 10.0]
        assert list(new["fees"]) == [2.0, 1.5] and set(new["trade_date"]) == {day}
        assert set(new["created_by"]) == {ANA}
        pos = position(s, ANA, ANA_PF)
        assert pos.shares.to_dict() == {"AAPL": 80.0, "KO": 10.0, "MSFT": 50.0}
        assert pos.cash == pytest.approx(ANA_CASH + 20 * 190.0 - 2.0 - 10 * 60.0 - 1.5)
        run = s.get(OptimizationRun, accepted.optimization_run_id)
        assert run.weights == {"AAPL": 0.4, "MSFT": 0.3, "KO": 0.3} and run.objective == "min_variance"
        assert run.parameters["proposal_id"] == pid and run.parameters["lookback"] == 756
        assert run.portfolio_id == get_proposal(s, ANA, pid).portfolio_id
        assert last_accepted_target(s, ANA, ANA_PF).to_dict() == {"AAPL": 0.4, "MSFT": 0.3, "KO": 0.3}
    assert _count(book.engine, "optimization_runs") == runs + 1
    assert _count(book.engine, "audit_log") > audits


def test_a_trade_date_can_be_given(book):
    pid = _save(book, [trade("sell", "MSFT", 5.0, 400.0)])
    with session_scope(book.engine) as s:
        accept_proposal(s, ANA, pid, latest_price_date="2024-03-28", trade_date="2024-04-02")
        assert set(list_transactions(s, ANA, ANA_PF).query("proposal_id == @pid")["trade_date"]) == {
            dt.date(2024, 4, 2)}


def _accept_fails(book, pid, error=StoreError, *needles, **kw) -> str:
    before = table_dump(book.engine)
    with pytest.raises(error) as info:
        with session_scope(book.engine) as s:
            accept_proposal(s, ANA, pid, latest_price_date=kw.pop("latest", "2024-03-28"), **kw)
    message = str(info.value)
    for n in needles:
        assert n in message, (n, message)
    assert table_dump(book.engine) == before
    with session_scope(book.engine) as s:
        assert get_proposal(s, ANA, pid).status in ("open", "accepted", "rejected")
    return message


def test_a_failure_mid_way_writes_nothing_at_all(book):
    # the second trade oversells: refused before anything is written
    pid = _save(book, [trade("buy", "KO", 10.0, 60.0), trade("sell", "AAPL", 500.0, 190.0)])
    _accept_fails(book, pid, LedgerError, "sell 500 AAPL", "holds 100 AAPL")
    # a record whose run the store could not write is refused when saved, not half-accepted later
    with pytest.raises(StoreError, match="weights"):
        _save(book, [trade("sell", "AAPL", 10.0, 190.0)], weights={"AAPL": "all of it"})
    with session_scope(book.engine) as s:
        assert get_proposal(s, ANA, pid).status == "open"
        assert len(list_proposals(s, ANA)) == 1
        assert list_transactions(s, ANA, ANA_PF)["proposal_id"].isna().all()
        assert position(s, ANA, ANA_PF).shares["AAPL"] == 100.0
        assert last_accepted_target(s, ANA, ANA_PF) is None


def test_a_record_the_store_cannot_accept_is_refused_when_saved(book, request):
    record = minimal_record(book.engine, ANA_PF, [trade("sell", "AAPL", 1.0, 190.0)])
    del record["result"]["objective"]
    try:
        with session_scope(book.engine) as s:
            pid = save_proposal(s, SYSTEM, ANA_PF, record).id
    except StoreError as exc:
        assert "objective" in str(exc)
        return
    _accept_fails(book, pid, StoreError, "objective")


def test_a_proposal_is_decided_once(book):
    pid = _save(book, [trade("sell", "AAPL", 10.0, 190.0)])
    with session_scope(book.engine) as s:
        accept_proposal(s, ANA, pid, latest_price_date="2024-03-28")
    message = _accept_fails(book, pid, StoreError, f"proposal {pid}", "accepted", ANA, "cannot be accepted")
    assert len(message) < 300
    with pytest.raises(StoreError, match="accepted"):
        with session_scope(book.engine) as s:
            reject_proposal(s, ANA, pid, "too late")
    other = _save(book, [trade("sell", "MSFT", 1.0, 400.0)])
    with session_scope(book.engine) as s:
        reject_proposal(s, ANA, other, "the client said no")
    _accept_fails(book, other, StoreError, f"proposal {other}", "rejected")
    with session_scope(book.engine) as s:
        assert get_proposal(s, ANA, other).reason == "the client said no"
        assert list(list_proposals(s, ANA, status="accepted")["id"]) == [pid]
        assert list(list_proposals(s, ANA, status="rejected")["id"]) == [other]
        assert len(list_transactions(s, ANA, ANA_PF).query("proposal_id == @pid")) == 1


def test_a_rejection_needs_a_reason(book):
    pid = _save(book, [trade("sell", "AAPL", 10.0, 190.0)])
    for reason in ("", "   \n\t", None, 42):
        before = table_dump(book.engine)
        with pytest.raises(StoreError) as info:
            with session_scope(book.engine) as s:
                reject_proposal(s, ANA, pid, reason)
        assert "reason" in str(info.value)
        assert table_dump(book.engine) == before
    with session_scope(book.engine) as s:
        assert get_proposal(s, ANA, pid).status == "open"


def test_stale_prices_are_refused(book):
    pid = _save(book, [trade("sell", "AAPL", 10.0, 190.0)], prices_as_of=dt.date(2024, 3, 27))
    message = _accept_fails(book, pid, StoreError, "2024-03-27", "2024-03-28", "rebuild", latest="2024-03-28")
    assert len(message) < 300
    with session_scope(book.engine) as s:  # prices of the day it was built on: fine
        accept_proposal(s, ANA, pid, latest_price_date=dt.date(2024, 3, 27))


def test_a_ledger_changed_since_the_proposal_is_refused(book):
    pid = _save(book, [trade("sell", "AAPL", 10.0, 190.0)])
    with session_scope(book.engine) as s:
        version = position(s, ANA, ANA_PF).last_transaction_id
        add_transaction(s, ANA, ANA_PF, "dividend", trade_date="2024-03-01", ticker="AAPL", amount=24.0)
        now = position(s, ANA, ANA_PF).last_transaction_id
    assert now > version
    _accept_fails(book, pid, StoreError, "changed since", f"entry {version}", f"it is at {now}")
    # another portfolio's entries do not count
    pid2 = _save(book, [trade("sell", "AAPL", 10.0, 190.0)])
    with session_scope(book.engine) as s:
        add_transaction(s, BEN, BEN_PF, "deposit", trade_date="2024-03-01", amount=1.0)
    with session_scope(book.engine) as s:
        accept_proposal(s, ANA, pid2, latest_price_date="2024-03-28")


def test_a_portfolio_with_open_proposals_is_deleted_only_with_force(book):
    pid = _save(book, [trade("sell", "AAPL", 10.0, 190.0)])
    before = table_dump(book.engine)
    with pytest.raises(StoreError) as info:
        with session_scope(book.engine) as s:
            delete_portfolio(s, ANA, ANA_PF)
    assert f"open proposals ({pid})" in str(info.value) and "--force" in str(info.value)
    assert table_dump(book.engine) == before
    with session_scope(book.engine) as s:
        reject_proposal(s, ANA, pid, "no")
        pid2 = save_proposal(s, ANA, ANA_PF,
                             minimal_record(book.engine, ANA_PF, [trade("sell", "MSFT", 1.0, 400.0)])).id
    with session_scope(book.engine) as s:
        gone = delete_portfolio(s, ANA, ANA_PF, force=True)
    assert gone["open_proposals"] == [pid2]
    assert _count(book.engine, "proposals") == 0
    with session_scope(book.engine) as s:  # Ben's portfolio (no proposals) goes without force
        delete_portfolio(s, BEN, BEN_PF)
        assert list_portfolios(s, ADMIN).empty
    assert _count(book.engine, "transactions") == 0


# -- two writers at once ---------------------------------------------------------------------------------
def _race(book, first, second):
    """``first`` writes in a transaction left open while ``second`` runs in another thread (its own
    connection); then the first commits, and the second is given time to finish."""
    outcome: dict = {}

    def run_second():
        try:
            with session_scope(book.engine) as s2:
                second(s2)
            outcome["second"] = "committed"
        except Exception as exc:  # noqa: BLE001 - what the second writer met is the result
            outcome["second"] = exc

    with session_scope(book.engine) as s1:
        first(s1)
        thread = threading.Thread(target=run_second, daemon=True)
        thread.start()
        # without a lock the second one is done well before this (it waits on nothing); with one, it
        # waits for this transaction, which commits when the time is up
        thread.join(1.0)
    thread.join(30.0)
    assert not thread.is_alive()
    return outcome["second"]


def test_two_sales_at_once_cannot_oversell(book, request):
    sell = dict(trade_date="2024-03-28", ticker="AAPL", quantity=100, price=190.0)
    second = _race(book, lambda s: add_transaction(s, ANA, ANA_PF, "sell", **sell),
                   lambda s: add_transaction(s, ANA, ANA_PF, "sell", **sell))
    assert isinstance(second, StoreError), second
    with session_scope(book.engine) as s:
        assert "AAPL" not in position(s, ANA, ANA_PF).shares


def test_a_proposal_accepted_twice_at_once_is_written_once(book, request):
    pid = _save(book, [trade("sell", "AAPL", 10.0, 190.0)])
    second = _race(book, lambda s: accept_proposal(s, ANA, pid, latest_price_date="2024-03-28"),
                   lambda s: accept_proposal(s, ADMIN, pid, latest_price_date="2024-03-28"))
    assert isinstance(second, StoreError), second
    with session_scope(book.engine) as s:
        assert len(list_transactions(s, ANA, ANA_PF).query("proposal_id == @pid")) == 1
        assert position(s, ANA, ANA_PF).shares["AAPL"] == 90.0
        assert get_proposal(s, ANA, pid).decided_by == ANA


def test_a_proposal_is_found_by_the_id_list_proposals_gives(book, request):
    pid = _save(book, [trade("sell", "AAPL", 1.0, 190.0)])
    with session_scope(book.engine) as s:
        listed = list_proposals(s, ANA)["id"].iloc[0]
        assert get_proposal(s, ANA, listed).id == pid


def test_a_proposal_id_is_a_whole_number(book):
    _save(book, [trade("sell", "AAPL", 1.0, 190.0)])
    for bad in (0, -1, "1", True, 1.5, None):
        with pytest.raises(StoreError) as info:
            with session_scope(book.engine) as s:
                get_proposal(s, ANA, bad)
        assert len(str(info.value)) < 300
    with pytest.raises(StoreError, match="no proposal 99"):
        with session_scope(book.engine) as s:
            get_proposal(s, ANA, 99)


def test_a_proposal_id_beyond_the_columns_range_is_refused_as_such(book, request):
    for bad in (2**31, 10**30):
        with pytest.raises(StoreError) as info:
            with session_scope(book.engine) as s:
                get_proposal(s, ANA, bad)
        assert "proposal" in str(info.value)


def test_amounts_beyond_a_trillion_are_refused_before_cash_overflows(book):
    """A deposit of 1e308 was accepted, and the next one overflowed the cash to inf."""
    before = table_dump(book.engine)
    for kw in ({"kind": "deposit", "amount": 1e308}, {"kind": "deposit", "amount": 2e12},
               {"kind": "buy", "ticker": "KO", "quantity": 1e13, "price": 1.0}):
        kind = kw.pop("kind")
        with pytest.raises(StoreError, match="is beyond 1,000,000,000,000") as info:
            with session_scope(book.engine) as s:
                add_transaction(s, ANA, ANA_PF, kind, trade_date="2024-03-28", **kw)
        assert len(str(info.value)) < 300
    assert table_dump(book.engine) == before
    with session_scope(book.engine) as s:  # a trillion itself is fine
        add_transaction(s, ANA, ANA_PF, "deposit", trade_date="2024-03-28", amount=1e12)


def test_a_refusal_for_huge_numbers_stays_short(book, request):
    before = table_dump(book.engine)
    with pytest.raises(StoreError) as info:
        with session_scope(book.engine) as s:
            add_transaction(s, ANA, ANA_PF, "buy", trade_date="2024-03-28", ticker="KO", quantity=1e200, price=1e200)
    assert table_dump(book.engine) == before
    assert len(str(info.value)) < 300, len(str(info.value))
