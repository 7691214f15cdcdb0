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
    with pytest.raises(DataError, match=r"look like prices, not returns: AAPL, .* qpo.prices_to_returns"):
        qpo.risk_report(w, px.iloc[1:])
    with pytest.raises(DataError, match=r"hold a return of -\d.* on \d{4}-\d\d-\d\d\): a simple return of an asset is -1 "
                                        r"\(-100 %\) or above.*percent \(divide by 100\)"):
        qpo.risk_report(w, returns * 100)
    with pytest.raises(DataError, match="the benchmark's returns hold a return of"):
        qpo.risk_report(w, returns, benchmark=bench * 100)
    with pytest.raises(DataError, match="the benchmark's returns look like prices"):
        qpo.risk_report(w, returns, benchmark=qpo.load_prices("sp500_index", start="2018-01-01")["SP500"]
                        .reindex(returns.index))
    # a portfolio's own series may lose more than everything (leverage): reported, not refused
    series = (returns @ w) * 3
    series.iloc[20] = -1.4
    assert qpo.risk_report(None, series).cagr == -1.0
    with pytest.raises(DataError, match="look like prices"):
        qpo.risk_report(None, (1 + returns @ w).cumprod() * 0.9)  # a growth of $1 that fell below 1
    # an asset that went to zero (-100 %) is a return; annual returns of a fast grower are returns
    gone = returns.copy()
    gone.iloc[-1, 0] = -1.0
    qpo.risk_report(w, gone)
    annual = pd.DataFrame({"FAST": [1.1, 3.0, -0.5, 1.4, 0.9, 2.2, -0.3, 1.6, 1.2, 0.8] * 3},
                          index=pd.date_range("1991-12-31", periods=30, freq="YE"))
    assert qpo.risk_report(pd.Series({"FAST": 1.0}), annual, periods_per_year=1).volatility > 1
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


def test_a_zoned_benchmark_beside_naive_returns_is_named_as_such(data):
    _, returns, bench, w = data
    zoned = bench.reindex(returns.index).tz_localize("America/New_York")
    with pytest.raises(DataError, match="the benchmark's dates carry a time zone and the portfolio's do not"):
        qpo.risk_report(w, returns, benchmark=zoned)


def test_a_partial_sector_map_is_reported_not_a_crash(data):
    """A sector map naming some of the held names ended in pandas' "'NoneType' object is not
    callable" (the sector shock grouped by None): any portfolio holding a name outside the bundled
    map's 20, in the dashboard and the daily report."""
    from qpo.risk import ComplianceStatus, Limits

    _, returns, _, w = data
    partial = {t: s for t, s in qpo.load_sectors().items() if t in list(returns.columns)[:10]}
    report = qpo.risk_report(w, returns, sectors=partial, limits=Limits(sector_max=0.2))
    shock = report.stress[report.stress["kind"] == "sector"]
    assert len(shock) == 1 and any(shock["scenario"].iloc[0].startswith(s) for s in set(partial.values()))
    rows = report.compliance.set_index("check")
    unclassified = rows.loc["sector Unclassified"]
    assert unclassified["status"] == ComplianceStatus.NOT_CHECKED and unclassified["value"] == pytest.approx(0.5)
    assert "not checked against the sector cap" in unclassified["detail"]
    assert not any(b.startswith("sector Unclassified") for b in report.breaches)
    assert report.unchecked and report.unchecked[0].startswith("sector Unclassified")
    from qpo.reporting import risk_html

    page = risk_html(report)
    assert "not checked:" in page and "Every limit holds." not in page


def test_names_without_a_sector_held_long_and_short_are_still_not_checked(data):
    from qpo.risk import ComplianceStatus, Limits, check_compliance

    w = pd.Series({"AAPL": 0.2, "NEW1": 0.9, "NEW2": -0.9})  # net 0 in names without a sector, 90 % long in one
    rows = check_compliance(w, Limits(sector_max=0.3), groups={"AAPL": "Information Technology"}).set_index("check")
    assert rows.loc["sector Unclassified", "status"] == ComplianceStatus.NOT_CHECKED
    assert "NEW1, NEW2" in rows.loc["sector Unclassified", "detail"]


def test_a_proposal_buying_names_without_a_sector_shows_them_not_checked(data):
    """The proposal's table was built on the checks before the trades (a row only after was lost)
    and showed a check not made as a pass."""
    from qpo.book.rebalance import _compliance
    from qpo.risk import Limits

    _, returns, _, _ = data
    before = pd.Series({"AAPL": 0.5, "KO": 0.5, "XOM": 0.0, "JNJ": 0.0})
    after = pd.Series({"AAPL": 0.2, "KO": 0.2, "XOM": 0.3, "JNJ": 0.3})
    sectors = {"AAPL": "Information Technology", "KO": "Consumer Staples"}  # XOM, JNJ unknown to this map
    table = _compliance(before, after, returns[list(before.index)], Limits(sector_max=0.4), sectors, 0.95)
    row = table.set_index("check").loc["sector Unclassified"]
    assert row["passed_before"] is True and row["passed_after"] is None and row["after"] == pytest.approx(0.6)
    assert table.set_index("check").loc["sector Information Technology", "passed_before"] is False


def test_weights_in_percent_are_refused_and_weights_short_of_one_are_noted(data):
    """Weights of 20 each (percent) gave a volatility of 14.84 and a drawdown of 460 % with no word;
    weights summing to 0.5 a halved volatility, also silent. Now: a sum beyond 2 (a book levered
    twice over) is refused with the hint; a sum other than 1 is a note that says the rest is cash,
    and the figures are those of the weights as given (the volatility half the full one's)."""
    _, returns, _, w = data
    with pytest.raises(DataError, match=r"weights sum to 100: weights are fractions .* \(divide by 100\)"):
        qpo.risk_report(w * 100, returns)
    full, half = qpo.risk_report(w, returns), qpo.risk_report(w * 0.5, returns)
    assert not [n for n in full.notes if "weights sum" in n]
    assert half.volatility == pytest.approx(full.volatility / 2, rel=1e-12)
    (note,) = [n for n in half.notes if "weights sum" in n]
    assert note.startswith("The weights sum to 0.5, not 1: the rest of the portfolio (0.5) is taken as cash")
    assert qpo.risk_report(w * 1.5, returns).volatility == pytest.approx(full.volatility * 1.5, rel=1e-12)


def test_the_optimizer_warns_of_returns_below_minus_one_and_keeps_the_weights(data):
    """Percent returns gave a per-day CVaR of 173 % beside unchanged weights, silently. The weights
    do not depend on the units (issue 16's property), so they are not refused: a DataWarning names
    the first impossible return."""
    from qpo.errors import DataWarning

    _, returns, _, _ = data
    small = returns.iloc[-300:, :6]
    plain = qpo.optimize(qpo.PortfolioProblem.from_returns(small), "min_variance")
    with pytest.warns(DataWarning, match=r"returns hold -\d.* below -1 \(-100 %\).* in percent\?"):
        scaled = qpo.optimize(qpo.PortfolioProblem.from_returns(small * 100), "min_variance")
    np.testing.assert_allclose(scaled.weights.to_numpy(), plain.weights.to_numpy(), atol=1e-6)
