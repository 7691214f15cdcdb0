"""Rebalance proposals (qpo.book.rebalance.plan_rebalance) on the bundled S&P 500 panel: the
numbers before, at the target and after, cross-checked against independent computations; what
costs and the turnover cap change; the record the store keeps, saved and accepted for real."""
from __future__ import annotations

import datetime as dt
import json
import math
import time

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.book.rebalance import COMPARISON_METRICS, TRADE_COLUMNS, RebalanceProposal, plan_rebalance
from qpo.book.strategy import Strategy
from qpo.errors import DataError, InvalidValueError
from qpo.store import Actor, accept_proposal, add_user, create_portfolio, get_proposal, position, save_proposal, session_scope
from tests.test_store.book_stores import engine, store_url  # noqa: F401 (fixtures)

PANEL = qpo.load_prices("sp500")
SECTORS = qpo.load_sectors()
ALL = list(PANEL.columns)
AS_OF = "2022-06-30"
HELD = pd.Series({"AAPL": 300.0, "MSFT": 200.0, "XOM": 500.0, "JPM": 100.0, "KO": 400.0})
CASH = 25_000.0
PPY = 252


def strategy(**kw) -> Strategy:
    base = {"constraints": {"max_weight": 0.15}, "sector_max": 0.3, "commission": 1.0, "spread_bps": 5.0,
            "limits": {"max_weight": 0.15, "sector_max": 0.3, "min_names": 8, "var_limit": 0.03}}
    return Strategy(**(base | kw))


@pytest.fixture(scope="module")
def proposal() -> RebalanceProposal:
    return plan_rebalance(HELD, CASH, PANEL, strategy(), as_of=AS_OF, portfolio="Demo", universe=ALL)


def window_returns() -> pd.DataFrame:
    return PANEL.loc[:AS_OF].iloc[-757:].pct_change().iloc[1:]


def test_trade_list_reproduces_the_weights_cash_and_costs(proposal):
    p = proposal
    px = PANEL.loc[:AS_OF].iloc[-1]
    assert p.prices_as_of == pd.Timestamp(AS_OF) and p.as_of == pd.Timestamp(AS_OF)
    assert list(p.trades.columns) == TRADE_COLUMNS
    sides = list(p.trades["side"])
    assert sides == sorted(sides, key=lambda s: s != "sell")  # sells first
    assert (p.trades["shares"] == p.trades["shares"].round()).all()  # whole shares
    assert (p.trades["notional"] >= 0).all()
    shares = HELD.reindex(ALL).fillna(0.0)
    cash = CASH
    for t in p.trades.itertuples():
        assert t.price == px[t.ticker]
        assert t.notional == pytest.approx(t.shares * t.price)
        assert t.cost == pytest.approx(1.0 + 5e-4 * t.notional)
        signed = t.shares if t.side == "buy" else -t.shares
        shares[t.ticker] += signed
        cash -= signed * t.price + t.cost
    assert (shares >= 0).all()
    value_before = CASH + float(HELD @ px[HELD.index])
    value_after = cash + float(shares @ px[ALL])
    assert p.value_before == pytest.approx(value_before, rel=1e-12)
    assert p.cash_after == pytest.approx(cash, abs=1e-6) and p.cash_after >= 0
    assert p.value_after == pytest.approx(value_after, rel=1e-12)
    assert p.total_cost == pytest.approx(p.trades["cost"].sum(), rel=1e-12)
    assert p.value_before - p.value_after == pytest.approx(p.total_cost, rel=1e-9)
    after = shares * px[ALL] / value_after
    before = HELD.reindex(ALL).fillna(0.0) * px[ALL] / value_before
    np.testing.assert_allclose(p.weights["after"].reindex(ALL), after, atol=1e-12)
    np.testing.assert_allclose(p.weights["before"].reindex(ALL), before, atol=1e-12)
    assert p.turnover == pytest.approx(float((after - before).abs().sum()), abs=1e-12)
    gap = (after - p.weights["target"].reindex(ALL)).abs()
    assert p.distance_to_target["max_abs"] == pytest.approx(gap.max(), abs=1e-12)
    assert p.distance_to_target["l1"] == pytest.approx(gap.sum(), abs=1e-12)
    # whole shares land close to the target: within a share's weight of each name
    assert p.distance_to_target["max_abs"] < float((px[ALL] / value_after).max())


def test_every_constraint_holds_at_the_target_and_after_rounding(proposal):
    p = proposal
    assert p.violations == []
    for col in ("target", "after"):
        w = p.weights[col]
        assert (w >= -1e-9).all() and (w <= 0.15 + 1e-8).all()
        by_sector = w.groupby(w.index.map(SECTORS)).sum()
        assert (by_sector <= 0.3 + 1e-8).all()
    assert p.weights["after"].sum() <= 1.0 + 1e-9
    # the portfolio starts far off its caps (MSFT 26 %, tech 47 %) and ends within them
    assert p.weights["before"]["MSFT"] > 0.25


def test_before_after_target_numbers_against_numpy(proposal):
    p = proposal
    R = window_returns()
    assert p.parameters["periods"] == len(R) == 756 and p.result.periods_per_year == PPY
    S = np.cov(R.to_numpy(), rowvar=False, ddof=1)
    mu = R.mean().to_numpy()
    target = p.weights["target"].reindex(ALL).to_numpy()
    for col in ("before", "after", "target"):
        w = p.weights[col].reindex(ALL).to_numpy()
        m = p.comparison[col]
        assert m["volatility"] == pytest.approx(math.sqrt(w @ S @ w * PPY), rel=1e-9)
        assert m["expected_return"] == pytest.approx(mu @ w * PPY, rel=1e-9)  # historical mean
        r = np.sort(R.to_numpy() @ w)
        k = 0.05 * len(r)  # 37.8: VaR is the 38th worst, CVaR weights it by 0.8
        assert m["var"] == pytest.approx(-r[37], rel=1e-12)
        assert m["cvar"] == pytest.approx(-(r[:37].sum() + 0.8 * r[37]) / k, rel=1e-9)
        d = w - target
        assert m["tracking_error"] == pytest.approx(math.sqrt(d @ S @ d * PPY), rel=1e-6, abs=1e-12)
        assert m["n_names"] == int((w > 1e-6).sum())
        assert m["cash_weight"] == pytest.approx(1 - w.sum(), abs=1e-12)
    assert p.comparison.loc["cash_weight", "after"] == pytest.approx(p.cash_after / p.value_after, abs=1e-12)
    assert list(p.comparison.index) == COMPARISON_METRICS
    assert p.comparison.loc["tracking_error", "target"] == 0.0
    # the target is the optimizer's: minimum variance -> lower volatility than the holdings
    assert p.comparison.loc["volatility", "target"] < p.comparison.loc["volatility", "before"]
    assert p.result.objective == "min_variance"
    np.testing.assert_allclose(p.result.weights.reindex(ALL), target, atol=1e-12)


def test_compliance_before_and_after(proposal):
    c = proposal.compliance.set_index("check")
    assert {"max single name", "min names", "VaR (historical)", "sector Information Technology"} <= set(c.index)
    assert not c.loc["max single name", "passed_before"] and c.loc["max single name", "passed_after"]
    assert c.loc["max single name", "before"] == pytest.approx(proposal.weights["before"].max())
    assert c.loc["max single name", "after"] == pytest.approx(proposal.weights["after"].max())
    assert not c.loc["min names", "passed_before"] and c.loc["min names", "before"] == 5
    assert c.loc["sector Information Technology", "before"] == pytest.approx(
        proposal.weights["before"][["AAPL", "AMD", "MSFT"]].sum())
    assert c.loc["VaR (historical)", "after"] == pytest.approx(proposal.comparison.loc["var", "after"])
    assert c["passed_after"].all()


def test_the_turnover_cap_and_costs_change_the_trade():
    held = pd.Series({"AAPL": 120.0, "MSFT": 60.0, "XOM": 300.0, "JPM": 150.0, "KO": 250.0, "PG": 100.0})
    free = plan_rebalance(held, 5_000.0, PANEL, strategy(sector_max=None, spread_bps=0.0, commission=0.0,
                                                         constraints={"max_weight": 0.3}), as_of=AS_OF, universe=ALL)
    capped = plan_rebalance(held, 5_000.0, PANEL, strategy(sector_max=None, spread_bps=0.0, commission=0.0,
                                                           constraints={"max_weight": 0.3, "max_turnover": 0.1}),
                            as_of=AS_OF, universe=ALL)
    assert free.turnover > 0.5
    assert capped.turnover <= 0.1 + 1e-8 and capped.violations == []
    assert capped.trades["notional"].sum() < free.trades["notional"].sum() / 4
    dear = plan_rebalance(held, 5_000.0, PANEL, strategy(sector_max=None, spread_bps=300.0, commission=0.0,
                                                         constraints={"max_weight": 0.3}), as_of=AS_OF, universe=ALL)
    assert dear.violations == []
    assert len(dear.trades) < len(free.trades)
    assert dear.trades["notional"].sum() < free.trades["notional"].sum()
    assert dear.turnover < free.turnover
    assert dear.total_cost == pytest.approx(0.03 * dear.trades["notional"].sum())
    assert free.total_cost == 0.0


def test_fractional_shares_land_on_the_target():
    s = strategy(fractional=True)
    p = plan_rebalance(HELD, CASH, PANEL, s, as_of=AS_OF, universe=ALL)
    whole = plan_rebalance(HELD, CASH, PANEL, strategy(), as_of=AS_OF, universe=ALL)
    assert p.violations == [] and p.cash_after >= 0
    frac = p.trades["shares"] - p.trades["shares"].round()
    assert (frac.abs() > 1e-9).any()  # some trades are fractional
    assert np.allclose(p.trades["shares"], p.trades["shares"].round(6), atol=1e-9, rtol=0)
    assert p.distance_to_target["l1"] < whole.distance_to_target["l1"] / 5


def test_names_the_strategy_names_join_the_universe():
    s = strategy(sector_max=None, constraints={"max_weight": 0.4, "min_weight": {"PG": 0.1, "KO": 0.0}})
    p = plan_rebalance(HELD, CASH, PANEL, s, as_of=AS_OF)
    assert list(p.weights.index) == sorted(set(HELD.index) | {"PG"})
    assert p.weights.loc["PG", "before"] == 0.0
    assert p.weights.loc["PG", "target"] >= 0.1 - 1e-8 and p.weights.loc["PG", "after"] >= 0.1 - 1e-8
    assert p.parameters["universe"] == list(p.weights.index)


def test_a_cash_only_client_is_invested():
    s = strategy(sector_max=None, constraints={"max_weight": 0.2})
    p = plan_rebalance(pd.Series(dtype=float), 100_000.0, PANEL, s, as_of=AS_OF, universe=ALL)
    assert (p.trades["side"] == "buy").all() and p.violations == []
    assert 0 <= p.cash_after < 600  # less than the dearest share left over
    assert p.comparison.loc["cash_weight", "before"] == 1.0
    assert p.comparison.loc["n_names", "before"] == 0


def test_record_and_json(proposal):
    rec = proposal.to_record()
    assert set(rec) == {"as_of", "prices_as_of", "strategy", "trades", "target", "summary", "result", "parameters",
                        "ledger_version"}
    assert rec["as_of"] == dt.date(2022, 6, 30) and rec["strategy"] == proposal.strategy.to_json()
    assert rec["trades"][0].keys() == set(TRADE_COLUMNS)
    json.dumps(rec, default=str, allow_nan=False)
    d = proposal.to_dict()
    text = json.dumps(d, allow_nan=False)  # JSON-safe as it is
    assert json.loads(text)["status"] == "draft" and d["as_of"] == "2022-06-30"
    back = RebalanceProposal.from_record({**rec, "portfolio": "Demo", "status": "open", "id": 7})
    assert back.id == 7 and back.status == "open" and back.portfolio == "Demo"
    assert back.strategy == proposal.strategy
    pd.testing.assert_frame_equal(back.trades, proposal.trades)
    pd.testing.assert_frame_equal(back.weights, proposal.weights, check_names=False, check_freq=False)
    pd.testing.assert_frame_equal(back.comparison, proposal.comparison)
    pd.testing.assert_frame_equal(back.compliance, proposal.compliance, check_dtype=False)
    for f in ("cash_before", "cash_after", "value_before", "value_after", "total_cost", "turnover"):
        assert getattr(back, f) == getattr(proposal, f)
    assert back.distance_to_target == proposal.distance_to_target
    assert back.result.expected_return == proposal.result.expected_return
    pd.testing.assert_series_equal(back.result.weights, proposal.result.weights, check_names=False)


def test_saved_and_accepted_through_the_store(engine):  # noqa: F811 (fixture)
    seed = Actor.system("test")
    with session_scope(engine) as s:
        add_user(s, seed, "adv@qpo.test", "Adv", "advisor")
        create_portfolio(s, seed, "Rebal", "Client R", "adv@qpo.test", holdings=dict(HELD), cash=CASH,
                         trade_date=dt.date(2022, 6, 1))
    with session_scope(engine) as s:
        pos = position(s, "adv@qpo.test", "Rebal")
    p = plan_rebalance(pos.shares, pos.cash, PANEL, strategy(), as_of=AS_OF, portfolio="Rebal", universe=ALL,
                       ledger_version=pos.last_transaction_id)
    with session_scope(engine) as s:
        pid = save_proposal(s, "adv@qpo.test", "Rebal", p.to_record()).id
    with session_scope(engine) as s:
        back = RebalanceProposal.from_record(get_proposal(s, "adv@qpo.test", pid))
        assert back.id == pid and back.status == "open" and back.portfolio == "Rebal"
        pd.testing.assert_frame_equal(back.trades, p.trades)
        accept_proposal(s, "adv@qpo.test", pid, latest_price_date=dt.date(2022, 6, 30))
    with session_scope(engine) as s:
        now = position(s, "adv@qpo.test", "Rebal")
    px = PANEL.loc[AS_OF]
    value = now.cash + float((now.shares * px[now.shares.index]).sum())
    assert now.cash == pytest.approx(p.cash_after, abs=1e-6)
    assert value == pytest.approx(p.value_after, rel=1e-12)
    after = (now.shares * px[now.shares.index] / value).reindex(p.weights.index).fillna(0.0)
    np.testing.assert_allclose(after, p.weights["after"], atol=1e-12)


def test_bad_input_is_refused_with_a_clear_message():
    s = strategy()
    with pytest.raises(DataError, match="no prices for ZZZZ"):
        plan_rebalance(pd.Series({"AAPL": 1.0, "ZZZZ": 5.0}), 0.0, PANEL, s, as_of=AS_OF)
    with pytest.raises(InvalidValueError, match=r"shares\['AAPL'\] must be a finite number >= 0"):
        plan_rebalance(pd.Series({"AAPL": -1.0}), 0.0, PANEL, s, as_of=AS_OF)
    with pytest.raises(InvalidValueError, match="cash must be a finite number >= 0"):
        plan_rebalance(HELD, float("nan"), PANEL, s, as_of=AS_OF)
    with pytest.raises(DataError, match="outside the data"):
        plan_rebalance(HELD, CASH, PANEL, s, as_of="1980-01-01")
    with pytest.raises(InvalidValueError, match="holds only cash"):
        plan_rebalance({}, 1000.0, PANEL, Strategy(), as_of=AS_OF)
    with pytest.raises(InvalidValueError, match="worth nothing"):
        plan_rebalance({"AAPL": 0.0}, 0.0, PANEL, Strategy(), as_of=AS_OF, universe=["AAPL"])
    with pytest.raises(InvalidValueError, match="strategy must be"):
        plan_rebalance(HELD, CASH, PANEL, 42, as_of=AS_OF)
    with pytest.raises(DataError, match="periods"):
        plan_rebalance(HELD, CASH, PANEL.loc[:"1990-01-20"], s)


def test_twenty_names_well_under_two_seconds():
    s = strategy()
    plan_rebalance(HELD, CASH, PANEL, s, as_of="2022-05-31", universe=ALL)  # the solver warmed up
    t0 = time.perf_counter()
    p = plan_rebalance(HELD, CASH, PANEL, s, as_of="2021-12-31", universe=ALL)
    assert time.perf_counter() - t0 < 2.0
    assert len(p.weights) == 20
