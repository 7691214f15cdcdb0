"""Every panel is annualized at its own frequency, read from its dates: a panel priced every
calendar day (crypto) has 365 periods a year, a monthly one 12; annual volatility is the
per-period standard deviation x sqrt(periods a year) in the risk report, the problem, the
backtest and the daily report. A ``periods_per_year`` given overrides; irregular dates are refused."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError
from qpo.estimation import BlackLitterman
from qpo.risk import annualized_volatility

TICKERS = ["AAPL", "MSFT", "JNJ", "XOM", "JPM"]


@pytest.fixture(scope="module")
def calendar_prices(sp500_clean) -> pd.DataFrame:
    """The bundled panel's last 1,000 prices of five names, dated every calendar day (as crypto is)."""
    px = sp500_clean[TICKERS].iloc[-1000:]
    return pd.DataFrame(px.to_numpy(), index=pd.date_range(end="2020-12-31", periods=len(px)), columns=TICKERS)


@pytest.fixture(scope="module")
def monthly_prices(sp500_clean) -> pd.DataFrame:
    """The bundled panel at month ends (every name of the demo portfolios, from 2000)."""
    return sp500_clean.resample("ME").last()


@pytest.fixture(scope="module")
def irregular_prices() -> pd.DataFrame:
    """Prices every 10 days: neither daily, weekly nor monthly."""
    idx = pd.DatetimeIndex([pd.Timestamp("2015-01-01") + pd.Timedelta(days=10 * i) for i in range(300)])
    rng = np.random.default_rng(3)
    return pd.DataFrame(100 * np.cumprod(1 + rng.normal(0, 0.02, (300, 3)), axis=0), index=idx, columns=list("ABC"))


def _returns(prices: pd.DataFrame) -> pd.DataFrame:
    return prices.pct_change().iloc[1:]


def _weights(cols) -> pd.Series:
    return pd.Series(1.0 / len(cols), index=list(cols))


@pytest.mark.parametrize(("panel", "p", "name"), [("calendar_prices", 365, "daily"), ("monthly_prices", 12, "monthly")])
def test_risk_report_annualizes_at_the_panels_frequency(request, panel, p, name):
    rets = _returns(request.getfixturevalue(panel)[TICKERS])
    w = _weights(TICKERS)
    rep = qpo.risk_report(w, rets, stress_scenarios={}, shocks=[], n_scenarios=1_000)
    r = (rets @ w).to_numpy()
    assert rep.periods_per_year == p
    assert rep.volatility == pytest.approx(np.std(r, ddof=1) * math.sqrt(p), rel=1e-12)
    assert rep.mean_return == pytest.approx(r.mean() * p, rel=1e-12)
    assert rep.sharpe == pytest.approx(r.mean() / np.std(r, ddof=1) * math.sqrt(p), rel=1e-12)
    assert rep.cagr == pytest.approx(np.prod(1 + r) ** (p / len(r)) - 1, rel=1e-12)
    # the contributions add up to the same annual volatility
    assert rep.contributions["vol_component"].sum() == pytest.approx(rep.volatility, rel=1e-9)
    assert (rep.frequency.name, rep.frequency.source) == (name, "inferred")
    assert any(f"{p} periods a year (inferred from the dates)" in n for n in rep.notes), rep.notes
    assert f"{p} periods a year" in rep.conventions
    # the one-period VaR is labelled by the data's period
    unit = {365: "day", 12: "month"}[p]
    assert f"VaR 95% (1 {unit}, historical)" in rep.to_frame().index
    # the series path (weights=None) and the metric functions infer the same
    assert qpo.risk_report(None, rets @ w, stress_scenarios={}, shocks=[], n_scenarios=1_000).volatility == \
        pytest.approx(rep.volatility, rel=1e-12)
    assert annualized_volatility(rets @ w) == pytest.approx(rep.volatility, rel=1e-12)


def test_a_given_periods_per_year_overrides(calendar_prices):
    rets = _returns(calendar_prices)
    w = _weights(TICKERS)
    rep = qpo.risk_report(w, rets, periods_per_year=252, stress_scenarios={}, shocks=[], n_scenarios=1_000)
    r = (rets @ w).to_numpy()
    assert rep.periods_per_year == 252
    assert rep.volatility == pytest.approx(np.std(r, ddof=1) * math.sqrt(252), rel=1e-12)
    assert rep.frequency.source == "given" and any("(as given)" in n for n in rep.notes)
    assert qpo.PortfolioProblem.from_returns(rets, periods_per_year=52).periods_per_year == 52


def test_the_business_day_panel_still_infers_252(sp500_clean):
    rets = _returns(sp500_clean[TICKERS].iloc[-600:])
    w = _weights(TICKERS)
    kw = dict(stress_scenarios={}, shocks=[], n_scenarios=1_000)
    a, b = qpo.risk_report(w, rets, **kw), qpo.risk_report(w, rets, periods_per_year=252, **kw)
    assert a.periods_per_year == 252 and a.metrics() == b.metrics()
    assert qpo.PortfolioProblem.from_returns(rets).periods_per_year == 252
    assert "VaR 95% (1 day, historical)" in a.to_frame().index


@pytest.mark.parametrize(("panel", "p"), [("calendar_prices", 365), ("monthly_prices", 12)])
def test_problem_annual_moments(request, panel, p):
    rets = _returns(request.getfixturevalue(panel)[TICKERS])
    problem = qpo.PortfolioProblem.from_returns(rets)
    assert problem.periods_per_year == p
    np.testing.assert_allclose(problem.annual_cov(), rets.cov().to_numpy() * p, rtol=1e-12)
    np.testing.assert_allclose(problem.annual_mu(), rets.mean().to_numpy() * p, rtol=1e-12)
    result = qpo.optimize(problem, "min_variance")
    w = result.weights.reindex(TICKERS).to_numpy()
    assert result.volatility == pytest.approx(math.sqrt(w @ rets.cov().to_numpy() @ w * p), rel=1e-6)


@pytest.mark.parametrize(("panel", "p"), [("calendar_prices", 365), ("monthly_prices", 12)])
def test_backtest_annualizes_and_windows_a_year_of_the_panels_periods(request, panel, p):
    prices = request.getfixturevalue(panel)[TICKERS]
    res = qpo.backtest(prices, "min_variance", rebalance="Q")
    r = res.returns.to_numpy()
    assert res.risk.periods_per_year == p and res.parameters["periods_per_year"] == p
    assert res.parameters["window"] == p  # the default window is one year of the data's periods
    assert res.risk.volatility == pytest.approx(np.std(r, ddof=1) * math.sqrt(p), rel=1e-12)
    assert res.summary()["Sharpe"] == pytest.approx(r.mean() / np.std(r, ddof=1) * math.sqrt(p), rel=1e-12)
    assert res.risk.frequency.source == "inferred"
    given = qpo.backtest(prices, "min_variance", rebalance="Q", window=p, periods_per_year=252)
    assert given.risk.volatility == pytest.approx(np.std(given.returns.to_numpy(), ddof=1) * math.sqrt(252), rel=1e-12)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from qpo.store import connect
    from tests.test_workbench import seed_demo_book

    engine = connect(f"sqlite:///{tmp_path_factory.mktemp('store') / 'qpo.db'}")
    seed_demo_book(engine)  # bought on 2019-12-31: the report reads the ledger as of the panels' last dates
    return engine


@pytest.mark.parametrize(("panel", "p", "lookback"), [("calendar_sp500", 365, 400), ("monthly_prices", 12, 60)])
def test_daily_report_annualizes_at_the_panels_frequency(request, engine, panel, p, lookback):
    from qpo.reporting import daily_report

    prices = request.getfixturevalue(panel)
    rep = daily_report("Tech Tilt", prices, lookback_days=lookback, engine=engine, n_scenarios=1_000)
    r = rep.returns.to_numpy()
    assert len(r) == lookback
    for risk in (rep.risk, rep.what_if_risk):
        assert risk.periods_per_year == p and risk.frequency.source == "inferred"
    assert rep.risk.volatility == pytest.approx(np.std(r, ddof=1) * math.sqrt(p), rel=1e-12)
    w = rep.what_if.weights  # after the proposal's trades (its own window is the strategy's lookback)
    wr = qpo.portfolio_returns(w, rep.what_if_returns).to_numpy()
    assert len(wr) == lookback and rep.what_if.proposal.result.periods_per_year == p
    assert rep.what_if_risk.volatility == pytest.approx(np.std(wr, ddof=1) * math.sqrt(p), rel=1e-12)
    unit = {365: "days", 12: "months"}[p]
    assert rep.figures()["wealth"].layout.title.text.startswith(f"Growth of $1 over {lookback} {unit}")


@pytest.fixture(scope="module")
def calendar_sp500(sp500_clean) -> pd.DataFrame:
    px = sp500_clean.iloc[-1200:]
    return pd.DataFrame(px.to_numpy(), index=pd.date_range(end="2020-12-31", periods=len(px)), columns=px.columns)


def test_daily_report_refuses_an_as_of_outside_the_data(engine, monthly_prices):
    from qpo.reporting import daily_report

    for as_of in ("1990-01-31", "2031-01-31"):
        with pytest.raises(DataError, match="outside the data"):
            daily_report("Tech Tilt", monthly_prices, as_of=as_of, lookback_days=24, engine=engine)


def test_an_irregular_panel_is_refused_unless_its_frequency_is_given(irregular_prices, engine):
    from qpo.reporting import daily_report

    rets = _returns(irregular_prices)
    w = _weights(rets.columns)
    calls = [lambda **k: qpo.risk_report(w, rets, stress_scenarios={}, shocks=[], n_scenarios=1_000, **k),
             lambda **k: qpo.PortfolioProblem.from_returns(rets, **k),
             lambda **k: qpo.backtest(irregular_prices, "equal_weight", rebalance="M", window=20, **k),
             lambda **k: annualized_volatility(rets["A"], **k)]
    for call in calls:
        with pytest.raises(DataError, match="10.0 days apart .*pass periods_per_year"):
            call()
        call(periods_per_year=36)  # 36 ten-day periods a year, given: accepted
    assert qpo.risk_report(w, rets, periods_per_year=36, stress_scenarios={}, shocks=[],
                           n_scenarios=1_000).volatility == pytest.approx(np.std((rets @ w).to_numpy(), ddof=1) * 6)
    renamed = irregular_prices.set_axis(TICKERS[:3], axis=1)
    with pytest.raises(DataError, match="pass periods_per_year"):
        daily_report("Tech Tilt", renamed, lookback_days=20, engine=engine)


def test_black_litterman_posterior_at_the_returns_frequency(monthly_prices):
    rets = _returns(monthly_prices[TICKERS])
    views = {"AAPL": 0.20, "XOM": -0.05}
    inferred = BlackLitterman(views=views).estimate(rets)
    pd.testing.assert_series_equal(inferred, BlackLitterman(views=views, periods_per_year=12).estimate(rets))
    daily_convention = BlackLitterman(views=views, periods_per_year=252).estimate(rets)
    assert not np.allclose(inferred.to_numpy(), daily_convention.to_numpy())
