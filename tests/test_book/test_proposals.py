"""The rebalance services on the store (qpo.book.proposals: propose, accept, reject, check), called
from Python on SQLite and on the real PostgreSQL, with the bundled S&P 500 prices and a real solver.

Every number is checked against one computed here from the ledger (a fold of the transactions
written in this file) and the prices: holdings and cash as of a date, the weights before, the
ledger after an accept, the drift of each portfolio from its last accepted target. Every refusal is
checked to write nothing (every row of every table compared).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.book import Strategy, StrategyError
from qpo.book.proposals import CHECK_COLUMNS, CHECK_STATUSES, accept_rebalance, check_rebalance, propose_rebalance, reject_rebalance
from qpo.errors import AccessDenied, InvalidValueError, StoreError
from qpo.store import (
    Actor,
    OptimizationRun,
    Proposal,
    add_transaction,
    add_user,
    create_portfolio,
    get_portfolio,
    list_transactions,
    session_scope,
    update_portfolio,
)
from tests.test_store import book_stores
from tests.test_store.book_stores import audit_rows_after, last_audit_id, table_counts, table_dump

store_url, engine = book_stores.store_url, book_stores.engine

PANEL = qpo.load_prices("sp500")
D = "2022-06-30"  # the proposals' date (a trading day)
DAY = pd.Timestamp(D)
UPTO = PANEL.loc[:D]  # the prices as they stood on D: an accept on D sees no newer close
LATER = "2022-09-30"
OPENED = dt.date(2021, 1, 4)
ADMIN, ANA, BEN, RITA = "root@qpo.test", "ana@qpo.test", "ben@qpo.test", "rita@qpo.test"
CORE, CASH_PF, INCOME = "Ana Core", "Ana Cash", "Ben Income"
CORE_SHARES = {"AAPL": 100.0, "MSFT": 50.0, "KO": 200.0, "JNJ": 30.0}
CORE_CASH = 20_000.0
CORE_STRATEGY = Strategy(constraints={"max_weight": 0.3}, rebalance_band=0.03)
INCOME_SHARES = {"KO": 300.0, "PG": 100.0, "PEP": 80.0}
INCOME_CASH = 5_000.0
INCOME_STRATEGY = Strategy(rebalance_band=0.10)
CASH_ONLY = 50_000.0
SYSTEM = Actor.system("test")


@pytest.fixture
def desk(engine):
    """Four people and three portfolios opened on 2021-01-04 (inside the prices): Ana's 'Ana Core'
    (four names and cash, max weight 30 %, band 3 %) and 'Ana Cash' (cash only, the default
    strategy: names no ticker, band 5 %), Ben's 'Ben Income' (three names and cash, band 10 %)."""
    with session_scope(engine) as s:
        for email, name, role in ((ADMIN, "Root", "admin"), (ANA, "Ana", "advisor"), (BEN, "Ben", "advisor"),
                                  (RITA, "Rita", "researcher")):
            add_user(s, SYSTEM, email, name, role)
        create_portfolio(s, SYSTEM, CORE, "Client A", ANA, holdings=CORE_SHARES, cash=CORE_CASH, trade_date=OPENED,
                         strategy=CORE_STRATEGY.to_json())
        create_portfolio(s, SYSTEM, CASH_PF, "Client C", ANA, cash=CASH_ONLY, trade_date=OPENED)
        create_portfolio(s, SYSTEM, INCOME, "Client B", BEN, holdings=INCOME_SHARES, cash=INCOME_CASH, trade_date=OPENED,
                         strategy=INCOME_STRATEGY.to_json())
    return engine


# -- independent computations -----------------------------------------------------------------------
def ledger(eng, name: str) -> pd.DataFrame:
    with session_scope(eng) as s:
        return list_transactions(s, ADMIN, name)


def fold(tx: pd.DataFrame, as_of=None) -> tuple[pd.Series, float]:
    """Shares (> 0) and cash after the entries dated up to ``as_of``, by the rules of a ledger:
    buy -(q p + fees), sell +(q p - fees), deposit +(amount - fees), transfers move shares."""
    shares: dict[str, float] = {}
    cash = 0.0
    day = None if as_of is None else pd.Timestamp(as_of).date()
    for e in tx.sort_values(["trade_date", "id"]).itertuples():
        if day is not None and e.trade_date > day:
            continue
        fees = 0.0 if e.fees is None or pd.isna(e.fees) else float(e.fees)
        if e.kind in ("buy", "transfer_in"):
            shares[e.ticker] = shares.get(e.ticker, 0.0) + e.quantity
        elif e.kind in ("sell", "transfer_out"):
            shares[e.ticker] = shares.get(e.ticker, 0.0) - e.quantity
        if e.kind == "buy":
            cash -= e.quantity * e.price + fees
        elif e.kind == "sell":
            cash += e.quantity * e.price - fees
        elif e.kind in ("deposit", "dividend"):
            cash += e.amount - fees
        elif e.kind in ("withdrawal", "fee"):
            cash -= e.amount + fees
        else:
            cash -= fees
    held = pd.Series({k: v for k, v in sorted(shares.items()) if abs(v) > 1e-9}, dtype=float)
    return held, cash


def valued(shares: pd.Series, cash: float, prices: pd.DataFrame, as_of) -> tuple[pd.Series, float]:
    """Weights (of value including cash) and value at the last close on or before ``as_of``."""
    last = prices.loc[:as_of, list(shares.index)].ffill().iloc[-1]
    value = cash + float((shares * last).sum())
    return shares * last / value, value


def drift(weights: pd.Series, target: pd.Series) -> pd.Series:
    names = sorted(set(weights.index) | set(target.index))
    return (weights.reindex(names).fillna(0.0) - target.reindex(names).fillna(0.0)).abs()


def row_of(frame: pd.DataFrame, name: str) -> pd.Series:
    rows = frame[frame["portfolio"] == name]
    assert len(rows) == 1, frame
    return rows.iloc[0]


def stored(eng, proposal_id: int) -> Proposal:
    with session_scope(eng) as s:
        p = s.get(Proposal, proposal_id)
        s.expunge(p)
        return p


def stored_strategy(eng, name: str) -> dict | None:
    with session_scope(eng) as s:
        return get_portfolio(s, ADMIN, name).strategy


def propose(eng, name=CORE, *, actor=ANA, as_of=D, prices=PANEL, **kw):
    return propose_rebalance(name, actor=actor, as_of=as_of, prices=prices, engine=eng, **kw)


def accept(eng, proposal_id, *, actor=ANA, prices=UPTO, **kw):
    return accept_rebalance(proposal_id, actor=actor, prices=prices, engine=eng, **kw)


def check(eng, *, actor=ADMIN, prices=PANEL, as_of=D):
    return check_rebalance(actor=actor, prices=prices, as_of=as_of, engine=eng)


# -- propose ------------------------------------------------------------------------------------------
def test_propose_reads_the_ledger_as_of_its_date_and_the_stored_strategy(desk):
    xom = float(PANEL.loc["2022-09-01", "XOM"])
    with session_scope(desk) as s:  # entries after D: not in a proposal as of D
        add_transaction(s, ANA, CORE, "buy", trade_date="2022-09-01", ticker="XOM", quantity=10, price=xom, fees=1.0)
        add_transaction(s, ANA, CORE, "deposit", trade_date="2022-09-02", amount=5_000.0)
    # stored, a proposal as of D is refused: its trades, dated D, would come before those entries
    before = table_dump(desk)
    with pytest.raises(InvalidValueError, match=r"has entries after 2022-06-30 \(up to 2022-09-02\)"):
        propose(desk)
    assert table_dump(desk) == before
    p = propose(desk, save=False)
    tx = ledger(desk, CORE)
    shares, cash = fold(tx, D)
    assert shares.to_dict() == CORE_SHARES and cash == pytest.approx(CORE_CASH)
    assert p.cash_before == pytest.approx(cash, abs=1e-9)
    assert "XOM" not in p.weights.index and p.parameters["universe"] == sorted(CORE_SHARES)
    weights, value = valued(shares, cash, PANEL, D)
    assert p.value_before == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(p.weights["before"].reindex(weights.index), weights, rtol=1e-12)
    assert p.ledger_version == int(tx["id"].max())  # the ledger's last entry, the deposit of 2022-09-02
    assert p.prices_as_of == DAY and p.as_of == DAY
    # the stored strategy: its 30 % cap binds, its band is kept
    assert p.strategy == CORE_STRATEGY and p.parameters["strategy_source"] == "portfolio" and p.parameters["overrides"] == {}
    assert p.target.max() == pytest.approx(0.3, abs=1e-6) and (p.target <= 0.3 + 1e-6).all()
    assert p.status == "draft" and p.id is None
    # at the prices' last date the later entries count: XOM is held, the cash is what the ledger says
    now = propose(desk, as_of=None, save=False)
    shares_now, cash_now = fold(tx)
    assert cash_now == pytest.approx(CORE_CASH - 10 * xom - 1.0 + 5_000.0)
    assert now.cash_before == pytest.approx(cash_now, abs=1e-9) and now.prices_as_of == PANEL.index[-1]
    w_now, _ = valued(shares_now, cash_now, PANEL, PANEL.index[-1])
    np.testing.assert_allclose(now.weights["before"].reindex(w_now.index), w_now, rtol=1e-12)
    assert w_now["XOM"] > 0


def test_overrides_apply_to_this_proposal_only(desk):
    before = stored_strategy(desk, CORE)
    p = propose(desk, max_weight=0.27, spread_bps=25.0, commission=2.0)
    assert p.strategy.constraints.max_weight == 0.27 and p.strategy.rebalance_band == 0.03
    assert (p.target <= 0.27 + 1e-6).all() and p.target.max() == pytest.approx(0.27, abs=1e-6)
    assert len(p.trades)
    np.testing.assert_allclose(p.trades["cost"], 2.0 + 25e-4 * p.trades["notional"], rtol=1e-12)
    assert p.parameters["overrides"] == {"max_weight": 0.27, "spread_bps": 25.0, "commission": 2.0}
    assert stored(desk, p.id).strategy == p.strategy.to_json()  # the proposal keeps what it was built with
    assert stored_strategy(desk, CORE) == before  # the portfolio's strategy is unchanged
    again = propose(desk, save=False)
    assert again.strategy == CORE_STRATEGY and again.target.max() == pytest.approx(0.3, abs=1e-6)
    assert again.parameters["overrides"] == {}
    given = propose(desk, strategy=Strategy(constraints={"max_weight": 0.5}, limits={}), save=False)
    assert given.parameters["strategy_source"] == "given" and given.strategy.constraints.max_weight == 0.5
    assert given.target.max() > 0.3 + 1e-3  # the given strategy, not the stored one
    dump = table_dump(desk)
    with pytest.raises(StrategyError, match="cannot change 'no_such_field'"):
        propose(desk, no_such_field=1)
    assert table_dump(desk) == dump


def test_an_override_given_as_a_constraints_object_is_stored(desk):
    p = propose(desk, constraints=qpo.Constraints(max_weight=0.27))
    assert p.strategy.constraints.max_weight == 0.27 and (p.target <= 0.27 + 1e-6).all()
    assert stored(desk, p.id).strategy["constraints"]["max_weight"] == 0.27


def test_a_dry_run_stores_nothing_and_is_all_a_researcher_may_do(desk):
    dump = table_dump(desk)
    draft = propose(desk, actor=RITA, save=False)
    assert draft.id is None and draft.status == "draft" and len(draft.trades)
    assert table_dump(desk) == dump
    with pytest.raises(AccessDenied, match="researcher"):
        propose(desk, actor=RITA)
    assert table_dump(desk) == dump
    for save in (True, False):  # another advisor may not even look
        with pytest.raises(AccessDenied, match=f"{BEN} \\(advisor\\) may not"):
            propose(desk, actor=BEN, save=save)
    with pytest.raises(StoreError, match="no portfolio named 'Nope'"):
        propose(desk, "Nope", actor=ADMIN)
    assert table_dump(desk) == dump
    counts = table_counts(desk)
    saved = propose(desk)
    after = table_counts(desk)
    assert after["proposals"] == counts["proposals"] + 1 and after["audit_log"] == counts["audit_log"] + 1
    assert after["transactions"] == counts["transactions"]
    pd.testing.assert_frame_equal(saved.trades, draft.trades)  # the same inputs, the same trades
    pd.testing.assert_frame_equal(saved.weights, draft.weights)


def test_a_cash_only_portfolio_may_buy_every_name_priced_over_its_lookback(desk):
    gappy = UPTO.copy()
    gappy.loc[gappy.index[-300], "AMD"] = np.nan  # a gap inside the 756-return window: not tradable
    gappy.loc[gappy.index[-1], "GE"] = np.nan  # no close on the day: not tradable
    gappy.loc[gappy.index[-2000], "PFE"] = np.nan  # a gap long before the window: tradable
    p = propose(desk, CASH_PF, prices=gappy, save=False)
    expected = sorted(set(PANEL.columns) - {"AMD", "GE"})
    assert p.parameters["universe"] == expected and sorted(p.weights.index) == expected
    assert p.cash_before == CASH_ONLY and p.value_before == pytest.approx(CASH_ONLY)
    assert (p.weights["before"] == 0).all() and set(p.trades["side"]) == {"buy"}
    assert p.target.sum() == pytest.approx(1.0, abs=1e-6)
    assert p.cash_after == pytest.approx(CASH_ONLY - (p.trades["notional"] + p.trades["cost"]).sum(), abs=1e-6)
    assert 0 <= p.cash_after < CASH_ONLY * 0.01
    last = gappy.ffill().iloc[-1]
    np.testing.assert_allclose(p.trades["price"], last[p.trades["ticker"]].to_numpy(), rtol=1e-12)
    chosen = propose(desk, CASH_PF, universe=["PG", "KO", "JNJ", "WMT", "PEP"], save=False)
    assert chosen.parameters["universe"] == ["JNJ", "KO", "PEP", "PG", "WMT"]
    assert set(chosen.trades["ticker"]) <= {"JNJ", "KO", "PEP", "PG", "WMT"}


def test_sectors_given_shape_the_sector_caps_of_the_target(desk):
    sectors = {"KO": "Staples", "JNJ": "Staples", "AAPL": "Tech", "MSFT": "Software"}
    p = propose(desk, sector_max=0.45, limits={"sector_max": 0.5}, sectors=sectors, save=False)
    assert p.target["KO"] + p.target["JNJ"] == pytest.approx(0.45, abs=1e-6)  # binds: 0.6 without it
    # the portfolio's compliance limit (the house's 40 %) is a cap too where it is the tighter
    tight = propose(desk, sector_max=0.45, sectors=sectors, save=False)
    assert tight.target["KO"] + tight.target["JNJ"] == pytest.approx(0.40, abs=1e-6)
    assert tight.parameters["limits_as_caps"] is True and tight.breaches_after() == ["min names 4 < 5"]  # 4 names held
    plain = propose(desk, save=False)
    assert plain.target["KO"] + plain.target["JNJ"] > 0.5
    checks = p.compliance.set_index("check")
    assert checks.loc["sector Staples", "after"] == pytest.approx(p.weights["after"][["KO", "JNJ"]].sum(), abs=1e-12)
    assert checks.loc["sector Staples", "before"] == pytest.approx(p.weights["before"][["KO", "JNJ"]].sum(), abs=1e-12)


def test_a_portfolio_back_in_cash_may_buy_the_names_of_its_last_accepted_target(desk):
    names = ["JNJ", "KO", "PEP", "PG", "WMT"]
    first = propose(desk, CASH_PF, universe=names)
    accept(desk, first.id)
    held, _ = fold(ledger(desk, CASH_PF))
    assert set(held.index) <= set(names) and len(held)
    sold = "2022-08-01"
    with session_scope(desk) as s:
        for ticker, q in held.items():
            add_transaction(s, ANA, CASH_PF, "sell", trade_date=sold, ticker=ticker, quantity=q,
                            price=float(PANEL.loc[sold, ticker]))
    shares, cash = fold(ledger(desk, CASH_PF))
    assert shares.empty and cash > 0
    again = propose(desk, CASH_PF, as_of=LATER, save=False)
    assert again.parameters["universe"] == names and again.cash_before == pytest.approx(cash, abs=1e-9)
    assert set(again.trades["side"]) == {"buy"}


def test_universe_adds_a_name_the_target_may_buy(desk):
    one = propose(desk, universe="XOM", save=False)
    assert one.parameters["universe"] == sorted([*CORE_SHARES, "XOM"])
    assert one.weights.loc["XOM", "before"] == 0.0 and "XOM" in one.target.index
    two = propose(desk, universe=["XOM", "PG"], save=False)
    assert two.parameters["universe"] == sorted([*CORE_SHARES, "XOM", "PG"])
    plain = propose(desk, save=False)
    assert "XOM" not in plain.weights.index and "PG" not in plain.weights.index


# -- accept ---------------------------------------------------------------------------------------------
def test_accept_writes_the_trades_the_run_and_one_audit_row(desk):
    p = propose(desk)
    tx0 = ledger(desk, CORE)
    shares0, cash0 = fold(tx0)
    counts = table_counts(desk)
    last = last_audit_id(desk)
    a = accept(desk, p.id)
    assert (a.id, a.status, a.portfolio, a.ledger_version) == (p.id, "accepted", CORE, p.ledger_version)
    pd.testing.assert_frame_equal(a.trades, p.trades)  # what was accepted is what was proposed
    pd.testing.assert_frame_equal(a.weights, p.weights, check_like=True)
    assert a.strategy == p.strategy and a.cash_after == p.cash_after and a.total_cost == p.total_cost
    tx1 = ledger(desk, CORE)
    new = tx1[tx1["id"] > tx0["id"].max()]
    assert len(new) == len(p.trades) > 0
    assert (new["proposal_id"] == p.id).all() and (new["trade_date"] == DAY.date()).all()
    kinds = list(new.sort_values("id")["kind"])
    assert kinds == sorted(kinds, key=lambda k: k != "sell")  # sells first
    by_ticker = new.set_index("ticker")
    for t in p.trades.itertuples():
        assert by_ticker.loc[t.ticker, "kind"] == t.side
        assert by_ticker.loc[t.ticker, "quantity"] == pytest.approx(t.shares, rel=1e-12)
        assert by_ticker.loc[t.ticker, "price"] == pytest.approx(t.price, rel=1e-12)
        assert by_ticker.loc[t.ticker, "fees"] == pytest.approx(t.cost, rel=1e-12)
    # the ledger after = before + the trades, by hand
    expected = shares0.copy()
    signed = p.trades["shares"].where(p.trades["side"] == "buy", -p.trades["shares"])
    for ticker, q in zip(p.trades["ticker"], signed, strict=True):
        expected[ticker] = expected.get(ticker, 0.0) + q
    expected = expected[expected.abs() > 1e-9].sort_index()
    shares1, cash1 = fold(tx1)
    pd.testing.assert_series_equal(shares1, expected, check_names=False)
    hand_cash = cash0 - float((signed * p.trades["price"]).sum()) - float(p.trades["cost"].sum())
    assert cash1 == pytest.approx(hand_cash, abs=1e-6) and cash1 == pytest.approx(p.cash_after, abs=1e-6)
    # one audit row; one optimization run with the proposal's weights
    assert [(r.action, r.entity, r.entity_id, r.actor) for r in audit_rows_after(desk, last)] == [
        ("accept", "proposal", str(p.id), ANA)]
    after = table_counts(desk)
    assert after["optimization_runs"] == counts["optimization_runs"] + 1
    assert after["transactions"] == counts["transactions"] + len(p.trades)
    assert after["proposals"] == counts["proposals"]
    row = stored(desk, p.id)
    assert (row.status, row.decided_by) == ("accepted", ANA) and row.decided_at is not None
    with session_scope(desk) as s:
        run = s.get(OptimizationRun, row.optimization_run_id)
        pid = get_portfolio(s, ADMIN, CORE).id
        assert run.portfolio_id == pid and run.parameters["proposal_id"] == p.id
        assert (run.objective, run.solver, run.status) == (p.result.objective, p.result.solver, p.result.status)
        assert run.weights == pytest.approx({k: float(v) for k, v in p.result.weights.items()}, abs=1e-12)


def test_accept_is_refused_when_newer_prices_of_its_names_exist(desk):
    p = propose(desk)
    dump = table_dump(desk)
    next_day = pd.Timestamp("2022-07-01")
    newer = pd.concat([UPTO, pd.DataFrame({"AAPL": [float(UPTO["AAPL"].iloc[-1]) * 1.01]}, index=[next_day])])
    with pytest.raises(StoreError, match=f"built on prices of {D}; prices up to 2022-07-01 exist: rebuild it"):
        accept(desk, p.id, prices=newer)
    with pytest.raises(StoreError, match="rebuild it"):
        accept(desk, p.id, prices=PANEL)
    assert table_dump(desk) == dump
    assert stored(desk, p.id).status == "open"
    # a newer close of a name the proposal neither holds nor trades is no reason to rebuild it
    other = pd.concat([UPTO, pd.DataFrame({"XOM": [float(UPTO["XOM"].iloc[-1])]}, index=[next_day])])
    assert "XOM" not in p.weights.index
    assert accept(desk, p.id, prices=other).status == "accepted"


def test_accept_is_refused_when_a_close_it_was_built_on_was_corrected(desk):
    """A corrected bar on the proposal's own price date (no newer date) changes what its trades and
    holdings are worth: accepting it would book the old price, so it is refused, naming the close."""
    p = propose(desk)
    assert p.parameters["closes"] == pytest.approx(UPTO.iloc[-1][list(p.weights.index)].to_dict(), rel=1e-15)
    traded = str(p.trades["ticker"].iloc[0])
    untraded = [t for t in p.weights.index if t not in set(p.trades["ticker"])]
    dump = table_dump(desk)
    for name in [traded] + untraded[:1]:
        fixed = UPTO.copy()
        fixed.loc[fixed.index[-1], name] = float(UPTO[name].iloc[-1]) * 0.97
        with pytest.raises(StoreError, match=f"closes of {D} that have changed since \\({name} "):
            accept(desk, p.id, prices=fixed)
    # a correction of an older bar of the window leaves the closes it trades at: accepted
    older = UPTO.copy()
    older.loc[older.index[-5], traded] = float(UPTO[traded].iloc[-5]) * 0.97
    assert table_dump(desk) == dump and stored(desk, p.id).status == "open"
    assert accept(desk, p.id, prices=older).status == "accepted"


def test_accept_is_refused_once_the_ledger_moved(desk):
    p = propose(desk)
    with session_scope(desk) as s:
        add_transaction(s, ANA, CORE, "deposit", trade_date=D, amount=1_000.0)
    dump = table_dump(desk)
    with pytest.raises(StoreError, match="changed since proposal"):
        accept(desk, p.id)
    assert table_dump(desk) == dump


def test_a_proposal_is_decided_once_and_only_by_who_may_change_the_portfolio(desk):
    p = propose(desk)
    dump = table_dump(desk)
    with pytest.raises(AccessDenied, match=f"{BEN} \\(advisor\\) may not see"):
        accept(desk, p.id, actor=BEN)
    with pytest.raises(AccessDenied, match="researcher"):
        accept(desk, p.id, actor=RITA)
    with pytest.raises(AccessDenied):
        reject_rebalance(p.id, "not mine", actor=BEN, engine=desk)
    assert table_dump(desk) == dump
    accept(desk, p.id, actor=ADMIN)
    assert stored(desk, p.id).decided_by == ADMIN
    dump = table_dump(desk)
    with pytest.raises(StoreError, match=f"proposal {p.id} was accepted on .* cannot be accepted or rejected again"):
        accept(desk, p.id)
    with pytest.raises(StoreError, match="cannot be accepted or rejected again"):
        reject_rebalance(p.id, "too late", actor=ANA, engine=desk)
    assert table_dump(desk) == dump


# -- reject ---------------------------------------------------------------------------------------------
REASON = "client said 'no' 🙅 — \"wait\"; DROP TABLE proposals;--\n\ttabs and  two spaces " + "because " * 1250


def test_reject_keeps_the_reason_verbatim_and_the_proposal_cannot_be_accepted(desk):
    p = propose(desk)
    blank = propose(desk)
    dump = table_dump(desk)
    for reason in ("", "   "):
        with pytest.raises(StoreError, match="needs a reason"):
            reject_rebalance(blank.id, reason, actor=ANA, engine=desk)
    assert table_dump(desk) == dump
    last = last_audit_id(desk)
    r = reject_rebalance(p.id, REASON, actor=ANA, engine=desk)
    assert (r.id, r.status) == (p.id, "rejected")
    row = stored(desk, p.id)
    assert (row.status, row.reason, row.decided_by) == ("rejected", REASON, ANA)
    rows = audit_rows_after(desk, last)
    assert [(e.action, e.entity, e.entity_id) for e in rows] == [("reject", "proposal", str(p.id))]
    assert rows[0].after["reason"] == REASON
    dump = table_dump(desk)
    with pytest.raises(StoreError, match=f"proposal {p.id} was rejected on .* by {ANA}"):
        accept(desk, p.id)
    assert table_dump(desk) == dump
    # a rejected proposal sets no target
    assert row_of(check(desk), CORE)["status"] == "no_target"


# -- check ----------------------------------------------------------------------------------------------
def expected_check(eng, name, target: pd.Series, prices, as_of) -> dict:
    shares, cash = fold(ledger(eng, name), as_of)
    weights, value = valued(shares, cash, prices, as_of)
    gaps = drift(weights, target)
    return {"max_drift": float(gaps.max()), "ticker": str(gaps.idxmax()), "value": value, "cash_weight": cash / value}


def test_check_right_after_an_accept_is_within_the_band(desk):
    p = propose(desk)
    accept(desk, p.id)
    frame = check(desk, actor=ANA)
    assert list(frame.columns) == CHECK_COLUMNS
    assert list(frame["portfolio"]) == [CASH_PF, CORE]  # Ana's only; no_target before within_band
    core = row_of(frame, CORE)
    want = expected_check(desk, CORE, p.target, PANEL, D)
    assert (core["status"], bool(core["due"]), core["band"], core["target_proposal"]) == ("within_band", False, 0.03, p.id)
    # at the date it was built on, the drift is what whole shares left: the proposal's own distance
    assert core["max_drift"] == pytest.approx(want["max_drift"], abs=1e-12)
    assert core["max_drift"] == pytest.approx(p.distance_to_target["max_abs"], abs=1e-12) and core["max_drift"] < 0.01
    assert core["ticker"] == want["ticker"]
    assert core["value"] == pytest.approx(want["value"], rel=1e-12) and core["value"] == pytest.approx(p.value_after, rel=1e-12)
    assert core["cash_weight"] == pytest.approx(want["cash_weight"], abs=1e-12)
    assert core["prices_as_of"] == D and core["client"] == "Client A" and core["advisor"] == ANA
    cash_pf = row_of(frame, CASH_PF)
    assert (cash_pf["status"], bool(cash_pf["due"]), cash_pf["band"]) == ("no_target", True, 0.05)
    assert cash_pf["value"] == pytest.approx(CASH_ONLY) and cash_pf["cash_weight"] == 1.0
    assert np.isnan(cash_pf["max_drift"]) and pd.isna(cash_pf["target_proposal"])
    # fractional shares reach the target: no drift at all
    q = propose(desk, fractional=True)
    accept(desk, q.id)
    core = row_of(check(desk, actor=ANA), CORE)
    assert core["target_proposal"] == q.id and core["max_drift"] < 1e-4
    assert core["max_drift"] == pytest.approx(expected_check(desk, CORE, q.target, PANEL, D)["max_drift"], abs=1e-12)


def test_check_flags_a_drift_beyond_the_band_with_the_band_of_each_strategy(desk):
    p = propose(desk)
    accept(desk, p.id)
    b = propose(desk, INCOME, actor=BEN)
    accept(desk, b.id, actor=BEN)
    moved = PANEL.copy()
    moved.loc[moved.index > DAY, "KO"] *= 1.8  # KO soars after the rebalance
    frame = check(desk, prices=moved, as_of=LATER)
    assert list(frame["status"]) == sorted(frame["status"], key=CHECK_STATUSES.index)
    for _, group in frame.groupby("status", sort=False):  # within a status, the largest drift first
        assert list(group["max_drift"].dropna()) == sorted(group["max_drift"].dropna(), reverse=True)
    core = row_of(frame, CORE)
    want = expected_check(desk, CORE, p.target, moved, LATER)
    assert want["ticker"] == "KO" and want["max_drift"] > 0.03
    assert (core["status"], bool(core["due"]), core["ticker"], core["band"]) == ("drifted", True, "KO", 0.03)
    assert core["max_drift"] == pytest.approx(want["max_drift"], abs=1e-12)
    assert core["value"] == pytest.approx(want["value"], rel=1e-12) and core["prices_as_of"] == "2022-09-30"
    assert "KO is" in core["reason"] and "beyond the 3.00% band" in core["reason"]
    income = row_of(frame, INCOME)
    want_b = expected_check(desk, INCOME, b.target, moved, LATER)
    assert income["band"] == 0.10 and income["target_proposal"] == b.id
    assert income["max_drift"] == pytest.approx(want_b["max_drift"], abs=1e-12) and income["ticker"] == want_b["ticker"]
    assert income["status"] == ("drifted" if want_b["max_drift"] > 0.10 else "within_band")
    # the real prices of that day: the same computation, the same verdict
    real = row_of(check(desk, prices=PANEL, as_of=LATER), CORE)
    want_real = expected_check(desk, CORE, p.target, PANEL, LATER)
    assert real["max_drift"] == pytest.approx(want_real["max_drift"], abs=1e-12) and real["ticker"] == want_real["ticker"]
    assert real["status"] == ("drifted" if want_real["max_drift"] > 0.03 else "within_band")
    # the band is read from the stored strategy when the check runs
    with session_scope(desk) as s:
        update_portfolio(s, ANA, CORE, strategy=CORE_STRATEGY.with_overrides(rebalance_band=0.5).to_json())
    wide = row_of(check(desk, prices=moved, as_of=LATER), CORE)
    assert (wide["status"], bool(wide["due"]), wide["band"]) == ("within_band", False, 0.5)
    assert wide["max_drift"] == pytest.approx(want["max_drift"], abs=1e-12)


def test_check_measures_drift_from_the_target_accepted_on_or_before_its_date(desk):
    march = "2022-03-31"
    first = propose(desk, as_of=march)
    accept(desk, first.id, prices=PANEL.loc[:march])
    second = propose(desk, max_weight=0.27)  # on D, from the ledger after the first
    accept(desk, second.id)
    assert not np.allclose(first.target.reindex(second.target.index), second.target, atol=0.01)
    before = row_of(check(desk, as_of="2022-02-28"), CORE)
    assert before["status"] == "no_target" and pd.isna(before["target_proposal"])
    may = row_of(check(desk, as_of="2022-05-31"), CORE)
    want = expected_check(desk, CORE, first.target, PANEL, "2022-05-31")
    assert may["target_proposal"] == first.id
    assert may["max_drift"] == pytest.approx(want["max_drift"], abs=1e-12) and may["ticker"] == want["ticker"]
    june = row_of(check(desk, as_of=D), CORE)
    assert june["target_proposal"] == second.id
    assert june["max_drift"] == pytest.approx(second.distance_to_target["max_abs"], abs=1e-12)
    assert june["max_drift"] == pytest.approx(expected_check(desk, CORE, second.target, PANEL, D)["max_drift"], abs=1e-12)


def test_check_shows_each_actor_only_what_it_may_read(desk, monkeypatch):
    names = {who: set(check(desk, actor=who)["portfolio"]) for who in (ANA, BEN, RITA, ADMIN)}
    assert names == {ANA: {CORE, CASH_PF}, BEN: {INCOME}, RITA: {CORE, CASH_PF, INCOME}, ADMIN: {CORE, CASH_PF, INCOME}}
    frame = check(desk, actor=RITA)
    assert set(frame["status"]) == {"no_target"} and frame["due"].all()
    for name, shares, cash in ((CORE, CORE_SHARES, CORE_CASH), (INCOME, INCOME_SHARES, INCOME_CASH)):
        _, value = valued(pd.Series(shares), cash, PANEL, D)
        assert row_of(frame, name)["value"] == pytest.approx(value, rel=1e-12)
    with pytest.raises(AccessDenied, match="is not a user of this store"):
        check(desk, actor="nobody@qpo.test")
    monkeypatch.setenv("QPO_USER", BEN)  # no actor named: QPO_USER's
    assert list(check(desk, actor=None)["portfolio"]) == [INCOME]
    monkeypatch.delenv("QPO_USER")
    with pytest.raises(AccessDenied, match="no actor named"):
        check(desk, actor=None)


def test_an_unpriced_holding_is_reported_not_raised(desk):
    with session_scope(desk) as s:
        create_portfolio(s, SYSTEM, "Ana Odd", "Client D", ANA, holdings={"ZZZZ": 10.0, "KO": 5.0}, cash=1_000.0,
                         trade_date=OPENED, known_tickers=[*PANEL.columns, "ZZZZ"])
    p = propose(desk)
    accept(desk, p.id)
    no_pg = PANEL.drop(columns="PG")
    frame = check(desk, prices=no_pg)
    assert list(frame["portfolio"]) == [CASH_PF, "Ana Odd", INCOME, CORE]  # no_target, unpriced x2 (by name), within_band
    assert list(frame["status"]) == ["no_target", "unpriced", "unpriced", "within_band"]
    for name, missing in ((INCOME, "PG"), ("Ana Odd", "ZZZZ")):
        row = row_of(frame, name)
        assert not row["due"] and np.isnan(row["max_drift"]) and missing in row["reason"] and f"on or before {D}" in row["reason"]
    # no close on or before the date (a name listed later) is unpriced too
    late = PANEL.copy()
    late.loc[:LATER, "PEP"] = np.nan
    assert row_of(check(desk, prices=late), INCOME)["status"] == "unpriced"
    core = row_of(frame, CORE)
    assert core["max_drift"] == pytest.approx(p.distance_to_target["max_abs"], abs=1e-12)


# -- defects found ---------------------------------------------------------------------------------------
def test_a_proposal_as_of_a_weekend_can_be_accepted(desk):
    saturday = "2022-07-02"
    with session_scope(desk) as s:
        add_transaction(s, ANA, CASH_PF, "deposit", trade_date=saturday, amount=30_000.0)
    p = propose(desk, CASH_PF, as_of=saturday, universe=["KO", "PG", "JNJ", "PEP", "WMT"])
    assert p.cash_before == CASH_ONLY + 30_000.0 and p.prices_as_of == pd.Timestamp("2022-07-01")
    accept(desk, p.id, prices=PANEL.loc[:saturday])
    _, cash = fold(ledger(desk, CASH_PF))
    assert cash == pytest.approx(p.cash_after, abs=1e-6)


NEWEST_FIRST = PANEL.iloc[::-1]  # the same prices, newest first (plan_rebalance sorts such a frame)


def test_a_stale_proposal_is_refused_whatever_the_order_of_the_prices(desk):
    p = propose(desk)
    dump = table_dump(desk)
    with pytest.raises(StoreError, match="rebuild it"):
        accept(desk, p.id, prices=NEWEST_FIRST)
    assert table_dump(desk) == dump


def test_check_never_uses_prices_after_its_date_whatever_their_order(desk):
    saturday = "2022-07-02"
    want = row_of(check(desk, prices=PANEL, as_of=saturday), CORE)
    got = row_of(check(desk, prices=NEWEST_FIRST, as_of=saturday), CORE)
    _, value = valued(pd.Series(CORE_SHARES), CORE_CASH, PANEL, saturday)
    assert want["value"] == pytest.approx(value, rel=1e-12) and want["prices_as_of"] == "2022-07-01"
    assert got["prices_as_of"] == "2022-07-01" and got["value"] == pytest.approx(value, rel=1e-12)


def test_the_universe_of_cash_is_read_from_the_lookback_whatever_the_order_of_the_prices(desk):
    gappy = PANEL.copy()
    gappy.loc[gappy.index[gappy.index > DAY][10], "AMD"] = np.nan  # after D: no concern of a proposal on D
    gappy.loc[gappy.index[gappy.index <= DAY][-300], "GE"] = np.nan  # inside the window: GE not tradable
    expected = sorted(set(PANEL.columns) - {"GE"})
    assert propose(desk, CASH_PF, prices=gappy, save=False).parameters["universe"] == expected
    assert propose(desk, CASH_PF, prices=gappy.iloc[::-1], save=False).parameters["universe"] == expected


def test_prices_that_are_not_a_frame_get_a_clear_error(desk):
    bad = {"AAPL": [1.0, 2.0]}
    with pytest.raises(qpo.errors.DataError, match="prices must be a DataFrame"):
        propose(desk, prices=bad, as_of=None, save=False)
    with pytest.raises(qpo.errors.DataError, match="prices must be a DataFrame"):
        check(desk, prices=bad, as_of=None)


def test_a_partial_last_day_does_not_shrink_the_universe_of_cash(desk):
    """Bars of only two names have arrived for the newest day (the default date of a proposal): the
    others still trade, at their last close; on a full day a name with no close is left out."""
    names = list(UPTO.columns)
    nxt = PANEL.index[PANEL.index > DAY][0]
    partial = pd.concat([UPTO, PANEL.loc[[nxt]]])
    partial.loc[nxt, [t for t in names if t not in ("AMD", "KO")]] = np.nan
    p = propose(desk, CASH_PF, prices=partial, as_of=None, save=False)
    assert p.parameters["universe"] == sorted(names) and p.cash_before == CASH_ONLY
    last = partial.ffill().iloc[-1]
    np.testing.assert_allclose(p.trades["price"], last[p.trades["ticker"]].to_numpy(), rtol=1e-12)
    stopped = partial.copy()  # GE's closes stop three full days before the partial one: GE stopped trading
    stopped.loc[stopped.index[-4]:, "GE"] = np.nan
    assert propose(desk, CASH_PF, prices=stopped, as_of=None, save=False).parameters["universe"] == sorted(
        set(names) - {"GE"})
    full = partial.copy()
    full.loc[nxt] = PANEL.loc[nxt]
    full.loc[nxt, "GE"] = np.nan  # a full day without GE: GE did not trade, it is left out
    assert propose(desk, CASH_PF, prices=full, as_of=None, save=False).parameters["universe"] == sorted(
        set(names) - {"GE"})
