"""Panels that look fine and are not: repeated or shuffled dates, a ticker twice, an asset whose
price never moves. Each was answered (a wrong volatility, drawdown or weight) or ended in a raw
numpy/scipy traceback; each is now refused naming the date, the ticker or the asset."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.errors import DataError, ProblemError


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return qpo.load_prices("sp500")[["AAPL", "MSFT", "JNJ", "XOM"]].loc["2018":"2020"]


@pytest.fixture(scope="module")
def rets(panel) -> pd.DataFrame:
    return qpo.prices_to_returns(panel)


def _bad_panels(r: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, str]]:
    return {
        "two downloads": (pd.concat([r, r.loc["2020-01":"2020-06"]]), "hold the date 2020-01-02 more than once "
                                                                       r"\(125 repeated date\(s\)\)"),
        "shuffled": (r.sample(frac=1.0, random_state=0), "are not in date order"),
        "newest first": (r.iloc[::-1], "are not in date order: 2020-12-30 comes after 2020-12-31"),
        "a ticker twice": (pd.concat([r, r[["AAPL"]]], axis=1), r"hold the ticker\(s\) \['AAPL'\] more than once"),
    }


@pytest.mark.parametrize("case", ["two downloads", "shuffled", "newest first", "a ticker twice"])
def test_the_risk_report_and_the_problem_refuse_repeated_or_unordered_dates_and_tickers(rets, case):
    """Two overlapping downloads concatenated gave a volatility of 30.2 % for 25.8 % and a drawdown
    of 38.1 % for 35.2 %; shuffled rows another drawdown and swapped report dates."""
    bad, says = _bad_panels(rets)[case]
    w = pd.Series(0.25, index=rets.columns)
    with pytest.raises(DataError, match=says):
        qpo.risk_report(w, bad)
    with pytest.raises(ProblemError, match=says):
        qpo.PortfolioProblem.from_returns(bad)
    with pytest.raises(DataError, match=says):
        qpo.risk.portfolio_returns(w, bad)
    good = qpo.risk_report(w, rets)  # the same rows once each, in order: reported
    assert good.volatility == pytest.approx(float((rets @ w).std(ddof=1) * np.sqrt(252)), rel=1e-12)


def test_weights_naming_a_ticker_twice_are_refused(rets):
    w = pd.Series([0.5, 0.3, 0.2], index=["AAPL", "AAPL", "MSFT"])
    with pytest.raises(DataError, match=r"weights name the ticker\(s\) \['AAPL'\] more than once"):
        qpo.risk_report(w, rets)


@pytest.mark.parametrize("objective", ["hrp", "risk_parity", "max_diversification"])
def test_an_asset_whose_price_never_moves_is_refused_where_the_objective_needs_its_risk(panel, objective):
    """HRP ended in scipy's 'condensed distance matrix must contain only finite values'; risk parity
    answered 100 % cash, every risk contribution 0, status optimal."""
    p = panel.assign(CASH=1.0)
    problem = qpo.PortfolioProblem.from_returns(qpo.prices_to_returns(p))
    with pytest.raises(ProblemError, match=f"{objective} .* but CASH has zero variance over the returns"):
        qpo.optimize(problem, objective)
    mv = qpo.optimize(problem, "min_variance")  # the least risk is all cash: a right answer, kept
    assert mv.weights["CASH"] == pytest.approx(1.0, abs=1e-5)
    assert qpo.optimize(qpo.PortfolioProblem.from_returns(qpo.prices_to_returns(panel)), objective).weights.min() > 0


def test_a_backtest_whose_window_holds_a_stale_price_records_failed_rebalances(panel):
    """A vendor's stale stretch (TYL did not move for 18 closes in 2000) aborted a whole HRP backtest."""
    p = panel.copy()
    p.loc["2019-03-01":"2019-04-30", "JNJ"] = p.loc["2019-03-01", "JNJ"]  # two months without a move
    result = qpo.backtest(p, "hrp", window=21, rebalance="M")
    failed = result.failures
    assert [f["date"] for f in failed] == [pd.Timestamp("2019-04-30")], failed  # the one window without a move
    assert "JNJ has zero variance" in failed[0]["reason"]
    assert result.summary()["n rebalances"] > len(failed)  # the other months rebalanced


def test_columns_in_two_levels_are_refused_not_taken_for_tickers(panel, tmp_path):
    """A download of several fields per ticker (('Adj Close', 'AAPL'), ('Volume', 'AAPL')) loaded as
    ten "tickers", validated, and was optimized across prices and volumes alike."""
    fields = pd.concat({"Adj Close": panel, "Close": panel * 1.01, "Volume": panel * 1e3}, axis=1)
    fields.to_parquet(tmp_path / "fields.parquet")
    with pytest.raises(DataError, match=r"columns have 2 levels \(e.g. \('Adj Close', 'AAPL'\).*first level: "
                                        "Adj Close, Close, Volume"):
        qpo.load_prices(tmp_path / "fields.parquet")
    with pytest.raises(DataError, match="columns have 2 levels"):
        qpo.validate_prices(fields)
    rets = qpo.prices_to_returns(fields)
    with pytest.raises(ProblemError, match="columns in 2 levels"):
        qpo.PortfolioProblem.from_returns(rets)
    with pytest.raises(DataError, match="columns in 2 levels"):
        qpo.risk_report(pd.Series(0.5, index=rets.columns[:2]), rets)
    assert list(qpo.load_prices(fields["Adj Close"].to_parquet(tmp_path / "one.parquet") or tmp_path / "one.parquet")
                .columns) == ["AAPL", "MSFT", "JNJ", "XOM"]


def test_a_late_listing_that_costs_most_of_the_history_is_said(panel):
    """One name listed late cut 22 years of returns to one, silently (dropna='any' is the default)."""
    from qpo.errors import DataWarning

    prices = panel.copy()
    prices.loc[:"2020-06-30", "XOM"] = np.nan  # "listed" mid-2020
    with pytest.warns(DataWarning, match=r"kept 1\d\d of 755 rows .*XOM starts on 2020-07-01.*dropna='all'"):
        rets = qpo.prices_to_returns(prices)
    assert rets.index[0] > pd.Timestamp("2020-07-01")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a full panel, or few rows lost: nothing said
        qpo.prices_to_returns(panel)
        qpo.prices_to_returns(prices, dropna="all")


def test_a_shrunk_covariance_does_not_hide_a_flat_asset(panel):
    """Ledoit-Wolf gives a column that never moves some variance: risk parity then piled onto it."""
    returns = qpo.prices_to_returns(panel.assign(CASH=1.0))
    problem = qpo.PortfolioProblem.from_returns(returns, covariance="ledoit_wolf")
    assert problem.cov.loc["CASH", "CASH"] > 0 and problem.riskless() == ["CASH"]
    with pytest.raises(ProblemError, match="CASH has zero variance"):
        qpo.optimize(problem, "risk_parity")


def test_dates_with_a_time_zone_or_missing_are_checked_too(rets):
    zoned = rets.tz_localize("America/New_York")
    with pytest.raises(DataError, match="more than once"):
        qpo.risk_report(pd.Series(0.25, index=rets.columns), pd.concat([zoned, zoned.iloc[:3]]))
    holed = rets.copy()
    holed.index = holed.index.where(np.arange(len(holed)) != 5, pd.NaT)
    with pytest.raises(ProblemError, match=r"1 row\(s\) without a date"):
        qpo.PortfolioProblem.from_returns(holed)
