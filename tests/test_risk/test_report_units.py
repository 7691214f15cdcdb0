"""What the risk report takes as returns: simple returns as fractions. Prices, percent returns and
a benchmark stamped at another time of day were taken as they came: prices gave an infinite CAGR,
percent returns a CAGR of -100 % (each beside plausible-looking numbers), a benchmark of 16:00
closes was refused as missing on every date."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError


@pytest.fixture(scope="module")
def data(sp500):
    px = sp500.loc["2018-01-01":]
    returns = qpo.prices_to_returns(px)
    bench = qpo.prices_to_returns(qpo.load_prices("sp500_index", start="2018-01-01"))["SP500"]
    return px, returns, bench, pd.Series(1 / px.shape[1], index=px.columns)


def test_prices_and_percent_returns_are_refused_saying_which(data):
    px, returns, bench, w = data
    with pytest.raises(DataError, match=r"look like prices, not returns: the median of AAPL, .* qpo.prices_to_returns"):
        qpo.risk_report(w, px.iloc[1:])
    with pytest.raises(DataError, match=r"hold a return of -\d.* on \d{4}-\d\d-\d\d\): a simple return is above -1 "
                                        r"\(-100 %\).*percent \(divide by 100\)"):
        qpo.risk_report(w, returns * 100)
    with pytest.raises(DataError, match="the benchmark's returns hold a return of"):
        qpo.risk_report(w, returns, benchmark=bench * 100)
    with pytest.raises(DataError, match="the benchmark's returns look like prices"):
        qpo.risk_report(w, returns, benchmark=qpo.load_prices("sp500_index", start="2018-01-01")["SP500"]
                        .reindex(returns.index))
    series = qpo.portfolio_returns(w, returns) if hasattr(qpo, "portfolio_returns") else returns @ w
    with pytest.raises(DataError, match="hold a return of"):
        qpo.risk_report(None, series * 100)
    # a real crash is not a unit error: -60 % in a day passes
    crash = returns.copy()
    crash.iloc[10, 0] = -0.6
    frame = qpo.risk_report(w, crash).to_frame()["value"]
    assert np.isfinite(frame.to_numpy(dtype=float)).all() and -1 < frame["Annualized return (CAGR)"] < 1


def test_a_benchmark_stamped_at_the_close_aligns_by_day(data):
    _, returns, bench, w = data
    at_midnight = qpo.risk_report(w, returns, benchmark=bench.reindex(returns.index)).benchmark
    closes = bench.reindex(returns.index)
    closes.index = closes.index + pd.Timedelta(hours=16)
    at_close = qpo.risk_report(w, returns, benchmark=closes).benchmark
    assert at_close == pytest.approx(at_midnight, rel=1e-15)
    assert at_midnight["beta"] == pytest.approx(np.cov(returns @ w, bench.reindex(returns.index))[0, 1]
                                                / bench.reindex(returns.index).var(), rel=1e-10)
    # a missing day is still missing, whatever the stamps
    with pytest.raises(DataError, match="no return on 1 of the portfolio's"):
        qpo.risk_report(w, returns, benchmark=closes.drop(closes.index[50]))


def test_monte_carlo_var_refuses_prices_and_percent(data):
    px, returns, _, w = data
    with pytest.raises(DataError, match="look like prices"):
        qpo.monte_carlo_var(w, px.iloc[1:], n_scenarios=1_000)
    with pytest.raises(DataError, match="percent"):
        qpo.monte_carlo_var(w, returns * 100, n_scenarios=1_000)
    assert 0 < qpo.monte_carlo_var(w, returns, n_scenarios=1_000).var < 0.1
