"""Risk metrics against quantstats, skfolio and plain numpy, under the same conventions."""
import math

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError
from qpo.risk import annualized_volatility, cagr, sharpe_ratio


@pytest.fixture(scope="module")
def port(sp500_clean):
    rets = qpo.prices_to_returns(sp500_clean.loc["2007-01-01":"2012-12-31"])
    w = pd.Series(1 / 20, index=rets.columns)
    return w, rets, qpo.portfolio_returns(w, rets)


def test_portfolio_returns_is_the_weighted_sum(port):
    w, rets, r = port
    np.testing.assert_allclose(r.to_numpy(), rets.to_numpy().mean(axis=1), rtol=1e-12)


def test_against_quantstats(port):
    import quantstats as qs

    _, _, r = port
    assert sharpe_ratio(r) == pytest.approx(qs.stats.sharpe(r, periods=252), rel=1e-6)
    assert annualized_volatility(r) == pytest.approx(qs.stats.volatility(r, periods=252), rel=1e-6)
    assert qpo.max_drawdown(r) == pytest.approx(-qs.stats.max_drawdown(r), rel=1e-6)


def test_cagr_closed_form(port):
    _, _, r = port
    wealth = float(np.prod(1 + r.to_numpy()))
    assert cagr(r) == pytest.approx(wealth ** (252 / len(r)) - 1, rel=1e-12)


def test_var_cvar_against_skfolio_and_numpy(port):
    from skfolio.measures import cvar, value_at_risk

    _, _, r = port
    x = r.to_numpy()
    for c in (0.90, 0.95, 0.99):
        assert qpo.historical_var(x, c) == pytest.approx(value_at_risk(x, beta=c), rel=1e-12)
        assert qpo.historical_cvar(x, c) == pytest.approx(cvar(x, beta=c), rel=1e-12)
    # numpy, when (1 - c) n is a whole number: VaR is the k-th worst loss, CVaR the mean of the k worst.
    # (skfolio computes k = 50.00000000000004 here and takes the 51st: qpo snaps k to the whole number.)
    x = x[:1000]
    k = 50  # (1 - 0.95) * 1000
    worst = np.sort(x)[:k]
    assert qpo.historical_var(x, 0.95) == pytest.approx(-worst[-1])
    assert qpo.historical_cvar(x, 0.95) == pytest.approx(-worst.mean())
    assert qpo.historical_cvar(x, 0.95) >= qpo.historical_var(x, 0.95)


def test_max_drawdown_on_a_known_path():
    r = pd.Series([0.10, -0.20, 0.05, -0.10, 0.50])
    # wealth 1.1, 0.88, 0.924, 0.8316, 1.2474 -> worst trough 0.8316 from the peak 1.1
    assert qpo.max_drawdown(r) == pytest.approx(1 - 0.8316 / 1.1)


def test_risk_report(port):
    w, rets, r = port
    rep = qpo.risk_report(w, rets, confidence=0.99, risk_free_rate=0.01)
    assert rep.n_periods == len(rets) and rep.start == rets.index[0] and rep.end == rets.index[-1]
    assert rep.volatility == pytest.approx(np.std(r, ddof=1) * math.sqrt(252))
    excess = r.to_numpy() - 0.01 / 252
    assert rep.sharpe == pytest.approx(excess.mean() / excess.std(ddof=1) * math.sqrt(252), rel=1e-12)
    k = math.ceil(0.01 * len(r))  # 1 % of 1509 days: the 16th worst
    assert rep.var == pytest.approx(-np.sort(r.to_numpy())[k - 1], rel=1e-12)
    # the 2008 crisis sits in the window: an equal-weight book of these names lost about 45 %
    assert 0.35 < rep.max_drawdown < 0.55
    frame = rep.to_frame()
    assert frame.loc["VaR 99% (1 day, historical)", "value"] == rep.var
    assert set(rep.METRICS) | {"confidence", "var_normal", "cvar_cornish_fisher"} <= set(rep.metrics())
    assert rep.metrics()["confidence"] == 0.99
    assert "CVaR 99.5% (1 day, historical)" in qpo.risk_report(w, rets, confidence=0.995).to_frame().index


def test_risk_inputs_are_checked(port):
    w, rets, _ = port
    with pytest.raises(DataError, match=r"\['NVDA'\]"):
        qpo.risk_report(pd.Series({"NVDA": 1.0}), rets)
    with pytest.raises(qpo.InvalidValueError, match="strictly between 0 and 1"):
        qpo.risk_report(w, rets, confidence=95)
    gap = rets.copy()
    gap.iloc[10, 0] = np.nan
    with pytest.raises(DataError, match=r"NaN for held tickers \['AAPL'\]"):
        qpo.risk_report(w, gap)
