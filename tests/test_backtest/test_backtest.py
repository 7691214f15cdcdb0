"""The walk-forward backtester on the real bundled S&P 500 panel: timing (no look-ahead), drift and
costs against independent arithmetic, the estimation window, failures, the compiled model's re-use,
and the comparison of strategies."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.backtesting import Strategy


@pytest.fixture(scope="module")
def px(sp500):
    """Five years of the 20 bundled stocks."""
    return sp500.loc["2013-01-01":"2017-12-31"]


def month_end_rows(index: pd.DatetimeIndex, window: int) -> list[int]:
    """Rows of the last trading day of each month with ``window`` returns behind, not the last date."""
    last = pd.Series(np.arange(len(index)), index=index).groupby(index.to_period("M")).max().to_numpy()
    return [int(k) for k in last if window <= k < len(index) - 1]


# -- timing -----------------------------------------------------------------------------------------
def test_no_look_ahead(px):
    """Prices changed after a rebalance date D change no return, weight, turnover or decision at or
    before D (and do change what comes after). Tolerance 1e-8, not 0: a solver's answer depends on
    its warm start at round-off level (re-running the same inputs moves cost-aware weights by up to
    ~2e-9, where Clarabel is inaccurate and SCS answers); the noise after D moves prices by up to 25 %."""
    D = pd.Timestamp("2016-06-30")
    strategies = ["min_variance", "max_sharpe", "equal_weight",
                  Strategy("min_variance", name="cost_aware", cost_aware=True, constraints=qpo.Constraints(max_weight=0.2))]
    noisy = px.copy()
    after = noisy.index > D
    noise = np.random.default_rng(7).uniform(0.8, 1.25, size=(int(after.sum()), px.shape[1]))
    noisy.loc[after] = noisy.loc[after].to_numpy() * noise
    kw = dict(rebalance="M", window=252, costs=0.002)
    a, b = qpo.compare_strategies(px, strategies, **kw), qpo.compare_strategies(noisy, strategies, **kw)
    for name in a.results:
        ra, rb = a[name], b[name]
        assert D in ra.rebalances["date"].to_numpy()
        for x, y in ((ra.returns, rb.returns), (ra.gross_returns, rb.gross_returns), (ra.equity, rb.equity)):
            np.testing.assert_allclose(x.loc[:D].to_numpy(), y.loc[:D].to_numpy(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(ra.weights.loc[:D].to_numpy(), rb.weights.loc[:D].to_numpy(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(ra.target_weights.loc[:D].to_numpy(), rb.target_weights.loc[:D].to_numpy(),
                                   rtol=0, atol=1e-8)
        np.testing.assert_allclose(ra.turnover.loc[:D].to_numpy(), rb.turnover.loc[:D].to_numpy(), rtol=0, atol=1e-8)
        assert (ra.rebalances["status"] == rb.rebalances["status"]).all()
        assert np.abs(ra.returns.loc[D:].iloc[1:] - rb.returns.loc[D:].iloc[1:]).max() > 1e-3  # the change shows later


def test_schedules_follow_the_calendar_and_the_trading_day_count(px):
    idx = px.index
    got = qpo.backtest(px, "equal_weight", rebalance="M", window=100)
    assert list(got.rebalances["date"]) == list(idx[month_end_rows(idx, 100)])
    q = qpo.backtest(px, "equal_weight", rebalance="Q", window=100, start="2014-01-01")
    last_q = pd.Series(np.arange(len(idx)), index=idx).groupby(idx.to_period("Q")).max().to_numpy()
    assert list(q.rebalances["date"]) == [idx[k] for k in last_q if idx[k] >= pd.Timestamp("2014-01-01")
                                          and k < len(idx) - 1]
    n = qpo.backtest(px, "equal_weight", rebalance=21, window=100)
    assert list(n.rebalances["date"]) == list(idx[100:len(idx) - 1:21])  # the first with 100 returns behind it
    # out-of-sample returns run from the day after the first rebalance to the end
    assert n.returns.index[0] == idx[101] and n.returns.index[-1] == idx[-1] and n.equity.index[0] == idx[100]


# -- drift and costs against independent arithmetic -------------------------------------------------
def test_buy_and_hold_is_the_price_relatives(px):
    """Buy-and-hold wealth is sum_i w_i P_i,t / P_i,0 (less the one cost of buying)."""
    c = 0.002
    res = qpo.backtest(px, "buy_and_hold", rebalance="M", window=60, costs=c)
    t0 = res.equity.index[0]
    rel = px.loc[t0:] / px.loc[t0]
    wealth = (1 - c) * rel.mean(axis=1)
    np.testing.assert_allclose(res.equity.iloc[1:], wealth.iloc[1:], rtol=1e-12)
    np.testing.assert_allclose(res.weights, rel.div(rel.sum(axis=1), axis=0), rtol=1e-12)
    assert len(res.rebalances) == 1 and res.turnover.iloc[0] == pytest.approx(1.0)
    assert res.costs_paid == pytest.approx(c)
    np.testing.assert_allclose(res.gross_returns, wealth.pct_change().iloc[1:], rtol=1e-9, atol=1e-15)


def test_equal_weight_monthly_with_costs_by_hand(px):
    """Dollar positions grown by price relatives, rebalanced to 1/n at each month end with
    cost = c x traded dollars: the same wealth, turnover and costs as the backtest."""
    c, window = 0.001, 60
    res = qpo.backtest(px, "equal_weight", rebalance="M", window=window, costs=c)
    P = px.to_numpy()
    rows = month_end_rows(px.index, window)
    n = P.shape[1]
    hold = np.zeros(n)  # dollars per asset
    wealth, turnovers, paid = [], [], []
    for k in range(rows[0], len(P)):
        if k > rows[0]:
            hold = hold * P[k] / P[k - 1]
        if k in rows:
            V = hold.sum() if k > rows[0] else 1.0
            traded = np.abs(V / n - hold).sum()
            cost = c * traded
            hold = np.full(n, (V - cost) / n)
            turnovers.append(traded / V)
            paid.append(cost / V)
        wealth.append(hold.sum())
    # equity is 1.0 at the first rebalance before costs; later points are the dollars held
    np.testing.assert_allclose(res.equity.to_numpy()[1:], wealth[1:], rtol=1e-12)
    np.testing.assert_allclose(res.turnover.to_numpy(), turnovers, rtol=1e-10)
    np.testing.assert_allclose(res.rebalances["cost"], paid, rtol=1e-10)
    assert res.costs_paid == pytest.approx(sum(paid), rel=1e-12)
    gross_equity = np.cumprod(1 + res.gross_returns.to_numpy())
    assert gross_equity[-1] * np.prod(1 - np.array(paid)) == pytest.approx(res.equity.iloc[-1], rel=1e-12)


def test_estimators_see_exactly_the_window(px):
    """Each rebalance's weights are optimize() on the returns of the window ending at its date:
    ``window`` rows (rolling) or everything since ``start`` (expanding, at least ``window``)."""
    returns = qpo.prices_to_returns(px)
    cons = qpo.Constraints(max_weight=0.25)
    strat = Strategy("min_variance", covariance="ledoit_wolf", constraints=cons)
    rolling = qpo.backtest(px, strat, rebalance="Q", window=200)
    expanding = qpo.backtest(px, strat, rebalance="Q", window=200, expanding=True, start="2014-06-01")
    for res, pick in ((rolling, lambda t: returns.loc[:t].iloc[-200:]),
                      (expanding, lambda t: returns.loc[:t].iloc[-200:] if len(returns.loc["2014-06-01":t]) < 200
                       else returns.loc["2014-06-01":t])):
        for t in res.target_weights.index[[0, 3, -1]]:
            window = pick(t)
            want = qpo.optimize(qpo.PortfolioProblem.from_returns(window, covariance="ledoit_wolf", constraints=cons),
                                "min_variance", confidence_level=None).weights
            np.testing.assert_allclose(res.target_weights.loc[t], want, atol=1e-9)
    assert len(returns.loc["2014-06-01":expanding.target_weights.index[-1]]) > 500  # it did expand


# -- failures ---------------------------------------------------------------------------------------
def test_a_failing_solve_keeps_the_drifted_weights(sp500):
    """efficient_return at 10 % a year: reachable while some stock's trailing mean exceeds it, not
    in early 2009 (after the crash no stock's one-year mean reaches 10 %)."""
    prices = sp500.loc["2007-06-01":"2009-12-31"]
    strat = Strategy("efficient_return", options={"target_return": 0.10})
    res = qpo.backtest(prices, strat, rebalance="M", window=252, costs=0.001)
    returns = qpo.prices_to_returns(prices)
    best = {t: returns.loc[:t].iloc[-252:].mean().max() * 252 for t in res.rebalances["date"]}
    expected_failures = [t for t, b in best.items() if b < 0.10]
    assert [f["date"] for f in res.failures] == expected_failures
    assert [t.strftime("%Y-%m") for t in expected_failures] == ["2009-01", "2009-02", "2009-03"]
    rb = res.rebalances.set_index("date")
    for t in expected_failures:
        assert rb.loc[t, "status"] == "failed" and rb.loc[t, "turnover"] == 0 and rb.loc[t, "cost"] == 0
        assert "target_return" in rb.loc[t, "message"] and "InfeasibleError" in rb.loc[t, "message"]
        prev = res.weights.index[res.weights.index.get_loc(t) - 1]
        r = returns.loc[t].to_numpy()
        w = res.weights.loc[prev].to_numpy()
        drifted = w * (1 + r) / (1 + w @ r)
        np.testing.assert_allclose(res.weights.loc[t], drifted, atol=1e-14)
        np.testing.assert_allclose(res.target_weights.loc[t], drifted, atol=1e-14)
    assert (rb["status"] == "ok").sum() == len(rb) - 3 and res.returns.index[-1] == prices.index[-1]
    assert res.summary()["n failures"] == 3


def test_a_failing_first_rebalance_holds_cash(sp500):
    prices = sp500.loc["2007-06-01":"2009-12-31"]
    strat = Strategy("efficient_return", options={"target_return": 0.10})
    res = qpo.backtest(prices, strat, rebalance="M", window=252, start="2009-01-01")
    first_ok = res.rebalances.loc[res.rebalances["status"] == "ok", "date"].iloc[0]
    assert first_ok.strftime("%Y-%m") == "2009-04" and len(res.failures) == 3
    assert (res.returns.loc[:first_ok] == 0).all() and (res.weights.loc[:first_ok].iloc[:-1] == 0).all().all()
    assert res.turnover.loc[first_ok] == pytest.approx(1.0)  # the first trade from cash
    assert (res.returns.loc[first_ok:].iloc[1:] != 0).all()


def test_a_backtest_none_of_whose_rebalances_solves_is_an_error_not_a_flat_result(sp500):
    """A 10 % cap on 5 names cannot be fully invested: every rebalance fails, and the strategy would
    sit in cash with a CAGR of 0 % beside the others; the first failure's error is raised instead."""
    from qpo.errors import InfeasibleError

    prices = sp500.iloc[:, :5].loc["2015-01-01":"2018-12-31"]
    capped = Strategy("min_variance", constraints=qpo.Constraints(max_weight=0.1), name="capped")
    with pytest.raises(InfeasibleError, match="every one of the 35 rebalances of 'capped' failed, so it never "
                                              "invested .*the first, on 2016-01-29: .*raise max_weight to at least 0.2"):
        qpo.backtest(prices, capped, rebalance="M", window=252)
    with pytest.raises(InfeasibleError, match="every one of the 35 rebalances"):
        qpo.compare_strategies(prices, [Strategy("min_variance"), capped], rebalance="M", window=252)


def test_the_failed_rebalances_are_the_failed_rows_of_the_rebalance_table(sp500):
    """``failures`` is read from the rebalance table (kept once): each failed row's date and message,
    in date order; the typed parts are the strategy and the risk report of the net returns."""
    prices = sp500.loc["2007-06-01":"2009-12-31"]
    strat = Strategy("efficient_return", options={"target_return": 0.10})
    res = qpo.backtest(prices, strat, rebalance="M", window=252, start="2008-10-01")
    rb = res.rebalances
    failed = rb[rb["status"] == "failed"]
    assert len(failed) == 3 and (rb["status"] == "ok").sum() == len(rb) - 3
    assert res.failures == [{"date": d, "reason": m} for d, m in zip(failed["date"], failed["message"], strict=True)]
    assert [f["date"].strftime("%Y-%m") for f in res.failures] == ["2009-01", "2009-02", "2009-03"]
    assert all("InfeasibleError" in f["reason"] for f in res.failures)
    assert "failures" not in {f.name for f in dataclasses.fields(res)}
    assert res.summary()["n failures"] == res.metrics()["n_failures"] == 3
    assert res.strategy is strat and isinstance(res.risk, qpo.RiskReport)
    assert res.risk.cagr == pytest.approx(qpo.risk.cagr(res.returns))


def test_a_strategy_is_named_by_its_objective_unless_named():
    s = Strategy("min_variance", covariance="ledoit_wolf")
    assert s.name == "min_variance" and s.describe()["covariance"] == "ledoit_wolf"
    renamed = dataclasses.replace(s, name="lw")
    assert renamed.name == "lw" and renamed.describe() == {**s.describe(), "name": "lw"}
    assert Strategy("equal_weight", name=None).name == "equal_weight"
    with pytest.raises(qpo.InvalidValueError, match="non-empty string"):
        Strategy("equal_weight", name=" ")


# -- the compiled model -----------------------------------------------------------------------------
def test_the_model_is_compiled_once_per_universe(px):
    """A cost-aware backtest compiles its model once and re-solves it by parameters at every
    rebalance (the drifted weights and the cost rate are parameters); a universe that grows by one
    listing compiles once more."""
    from qpo.optimization.classical import compiled_model

    strat = Strategy("min_variance", cost_aware=True, constraints=qpo.Constraints(max_weight=0.2))
    compiled_model.cache_clear()
    res = qpo.backtest(px, strat, rebalance="M", window=252, costs=0.001)
    info = compiled_model.cache_info()
    assert len(res.rebalances) == 47 and not res.failures  # month ends 2014-01 .. 2017-11 (2017-12-29 is the end)
    assert (info.misses, info.hits) == (1, 46)
    late = px.copy()
    late.loc[:"2014-09-30", "AAPL"] = np.nan  # listed later: 19 assets, then 20
    compiled_model.cache_clear()
    res = qpo.backtest(late, strat, rebalance="M", window=252, costs=0.001)
    assert sorted(set(res.rebalances["n_assets"])) == [19, 20]
    assert compiled_model.cache_info().misses == 2


# -- the gaps policy --------------------------------------------------------------------------------
def test_a_ticker_listed_later_joins_once_its_window_is_real(px):
    late = px.copy()
    late.loc[:"2015-06-15", "MSFT"] = np.nan
    window = 126
    res = qpo.backtest(late, "equal_weight", rebalance="M", window=window)
    listed = late.index.get_loc(late["MSFT"].first_valid_index())
    rows = month_end_rows(late.index, window)
    joins = [late.index[k] for k in rows if k - window >= listed]  # real prices from row t - window to t
    rb = res.rebalances.set_index("date")
    assert (rb.loc[joins, "n_assets"] == 20).all() and (rb.drop(joins)["n_assets"] == 19).all()
    tw = res.target_weights
    assert (tw.loc[joins, "MSFT"] == 1 / 20).all() and (tw.drop(joins)["MSFT"] == 0).all()
    assert np.isfinite(res.returns).all()


def test_internal_gaps_raise_by_default_and_name_the_fix(px):
    gappy = px.copy()
    gappy.loc["2016-05-02":"2016-05-06", "XOM"] = np.nan
    gappy.loc["2016-03-16":, "KO"] = np.nan  # KO's prices end early
    with pytest.raises(qpo.DataError) as err:
        qpo.backtest(gappy, "equal_weight", window=126)
    msg = str(err.value)
    assert "XOM (no price from 2016-05-02, 5 missing" in msg and "KO (prices end 2016-03-15" in msg
    assert "gaps='ffill'" in msg and "drop" in msg


def test_ffill_carries_the_last_price_and_never_counts_it_as_real(px):
    gappy = px.copy()
    gappy.loc["2016-05-02":"2016-05-06", "XOM"] = np.nan
    gappy.loc["2016-03-16":, "KO"] = np.nan
    window, c = 126, 0.001
    res = qpo.backtest(gappy, "equal_weight", rebalance="M", window=window, costs=c, gaps="ffill")
    assert res.parameters["forward_filled"] == {"KO": int((px.index > "2016-03-15").sum()), "XOM": 5}
    idx = gappy.index
    gap_rows = np.flatnonzero((idx >= "2016-05-02") & (idx <= "2016-05-06"))
    rows = month_end_rows(idx, window)
    tw = res.target_weights
    for k in rows:
        t = idx[k]
        xom_ok = not any(k - window <= g <= k for g in gap_rows)
        ko_ok = idx[k] <= pd.Timestamp("2016-03-15")
        assert (tw.loc[t, "XOM"] > 0) == xom_ok and (tw.loc[t, "KO"] > 0) == ko_ok
        assert res.rebalances.set_index("date").loc[t, "n_assets"] == 20 - (not xom_ok) - (not ko_ok)
    # KO is held at its last price (zero return) until the month-end rebalance sells it
    value_ko = (res.weights["KO"] * res.equity).loc["2016-03-15":"2016-03-30"]
    np.testing.assert_allclose(value_ko, value_ko.iloc[0], rtol=1e-12)
    assert res.weights.loc["2016-03-31", "KO"] == 0 and res.weights.loc["2016-03-30", "KO"] > 0
    # buy-and-hold over the filled prices: the price relatives of the forward-filled panel
    bh = qpo.backtest(gappy, "buy_and_hold", window=window, costs=c, gaps="ffill")
    filled = gappy.ffill()
    rel = filled.loc[bh.equity.index[0]:] / filled.loc[bh.equity.index[0]]
    np.testing.assert_allclose(bh.equity.iloc[1:], (1 - c) * rel.mean(axis=1).iloc[1:], rtol=1e-12)


# -- bad input --------------------------------------------------------------------------------------
def _bad_inputs(px):
    unsorted = px.iloc[[1, 0, *range(2, len(px))]]
    dup = pd.concat([px.iloc[:5], px.iloc[4:]])
    neg = px.copy()
    neg.iloc[10, 3] = -1.0
    shifted = qpo.load_prices("sp500_index")["SP500"].loc["2015-01-01":]
    return [
        ("array", lambda: qpo.backtest(px.to_numpy(), "min_variance"), qpo.DataError, ["DataFrame"]),
        ("index", lambda: qpo.backtest(px.reset_index(drop=True), "min_variance"), qpo.DataError, ["DatetimeIndex"]),
        ("unsorted", lambda: qpo.backtest(unsorted, "min_variance"), qpo.DataError, ["not sorted", "sort_index"]),
        ("duplicates", lambda: qpo.backtest(dup, "min_variance"), qpo.DataError, ["duplicate date"]),
        ("non-positive", lambda: qpo.backtest(neg, "min_variance"), qpo.DataError,
         ["positive", "BBY", str(px.index[10].date())]),
        ("window<2", lambda: qpo.backtest(px, "min_variance", window=1), qpo.InvalidValueError, [">= 2"]),
        ("window too long", lambda: qpo.backtest(px, "min_variance", window=len(px)), qpo.InvalidValueError,
         [f"{len(px) - 1} returns", "shorter window"]),
        ("frequency", lambda: qpo.backtest(px, "min_variance", rebalance="monthly"), qpo.UnknownOptionError,
         ["'monthly'", "M", "W", "whole number"]),
        ("every 0 days", lambda: qpo.backtest(px, "min_variance", rebalance=0), qpo.InvalidValueError, [">= 1"]),
        ("strategy", lambda: qpo.backtest(px, "min_varience"), qpo.UnknownOptionError,
         ["min_varience", "min_variance", "equal_weight", "buy_and_hold"]),
        ("negative costs", lambda: qpo.backtest(px, "equal_weight", costs=-0.001), qpo.InvalidValueError,
         ["costs", ">= 0"]),
        ("costs of 100 %", lambda: qpo.backtest(px, "equal_weight", costs=1.0), qpo.InvalidValueError, ["< 1"]),
        ("benchmark dates", lambda: qpo.backtest(px, "equal_weight", benchmark=shifted), qpo.DataError,
         ["no price on", "first missing: 2014-"]),
        ("gaps policy", lambda: qpo.backtest(px, "equal_weight", gaps="bfill"), qpo.UnknownOptionError,
         ["ffill", "raise"]),
        ("start >= end", lambda: qpo.backtest(px, "equal_weight", start="2016-01-01", end="2015-01-01"),
         qpo.InvalidValueError, ["before end"]),
        ("cost-aware risk parity", lambda: Strategy("risk_parity", cost_aware=True), qpo.InvalidValueError,
         ["min_variance"]),
        ("missing target", lambda: Strategy("efficient_return"), qpo.ProblemError, ["target_return"]),
        ("option typo", lambda: Strategy("max_utility", options={"risk_aversio": 2}), qpo.UnknownOptionError,
         ["risk_aversion"]),
        ("baseline with constraints", lambda: Strategy("equal_weight", constraints=qpo.Constraints(max_weight=0.1)),
         qpo.InvalidValueError, ["takes no constraints"]),
        ("duplicate names", lambda: qpo.compare_strategies(px, ["equal_weight", "equal_weight"]),
         qpo.InvalidValueError, ["unique"]),
    ]


@pytest.mark.parametrize("case", range(20))
def test_bad_input_says_what_is_wrong_and_what_is_valid(px, case):
    cases = _bad_inputs(px)
    assert len(cases) == 20
    _, call, error, fragments = cases[case]
    with pytest.raises(error) as err:
        call()
    for fragment in fragments:
        assert fragment in str(err.value)


# -- comparison -------------------------------------------------------------------------------------
def test_compare_strategies_against_the_index(px, sp500):
    index = qpo.load_prices("sp500_index")["SP500"]
    names = ["min_variance", "risk_parity", "equal_weight"]
    comp = qpo.compare_strategies(px, names, rebalance="Q", window=252, costs=0.001, benchmark=index,
                                  risk_free_rate=0.01)
    alone = qpo.backtest(px, "risk_parity", rebalance="Q", window=252, costs=0.001)
    pd.testing.assert_series_equal(comp["risk_parity"].returns, alone.returns)
    summary = comp.summary()
    assert list(summary.index) == [*names, "benchmark (SP500)"]
    b = index.loc[comp["equal_weight"].equity.index].pct_change().iloc[1:]
    assert summary.loc["benchmark (SP500)", "CAGR"] == pytest.approx(np.prod(1 + b) ** (252 / len(b)) - 1, rel=1e-12)
    assert np.isnan(summary.loc["benchmark (SP500)", "total turnover"])
    ew = comp["equal_weight"]
    r = ew.returns.to_numpy()
    assert summary.loc["equal_weight", "Sharpe"] == pytest.approx(
        (r - 0.01 / 252).mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-12)
    assert summary.loc["equal_weight", "total turnover"] == pytest.approx(ew.turnover.sum())
    metrics = comp.metrics()
    assert metrics["min_variance.cagr"] == pytest.approx(summary.loc["min_variance", "CAGR"])
    assert metrics["benchmark.cagr"] == pytest.approx(summary.loc["benchmark (SP500)", "CAGR"])
    assert all(isinstance(v, float) for v in metrics.values())
    figs = comp.figures()
    assert set(figs) == {"equity", "drawdown"} and len(figs["equity"].data) == 4
    one = ew.figures()
    assert set(one) == {"equity", "drawdown", "weights", "turnover"}
    assert len(one["weights"].data) == 13  # the 12 largest and "other"
    assert ew.metrics()["final_wealth"] == pytest.approx(ew.equity.iloc[-1])

