"""The dashboard's Risk tab (issue 18, tab 2) on a real store: the numbers are qpo.risk's on the
ledger's holdings of the chosen date (cash included), recomputed here with numpy; the controls
redraw it; an advisor's refusal and a date outside the prices are messages; the figure is updated
in place."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

import qpo
from qpo.store import Actor
from tests.test_workbench import seed_demo_book, tab_board

SYSTEM = Actor.system("tests")
ANA = "ana.silva@example.com"


@pytest.fixture
def tab(qpo_home, sp500):
    from qpo.store import connect
    from qpo.workbench.tabs.risk import RiskTab

    engine = connect()
    seed_demo_book(engine, prices=sp500)
    index = qpo.prices_to_returns(qpo.load_prices("sp500_index", start="2000-01-01"))["SP500"]
    board = tab_board(engine, ANA, sp500.loc["2000-01-01":], benchmark=index, lookback_days=500)
    return RiskTab(board), engine, board


def _expected(engine, board, name, day):
    """Weights of the whole value (cash included) from the ledger, and the portfolio's returns."""
    from qpo.store import position, session_scope

    with session_scope(engine) as s:
        pos = position(s, SYSTEM, name, pd.Timestamp(day).date())
    px = board.prices.loc[:day, pos.shares.index]
    value = pos.shares * px.iloc[-1]
    w = value / (value.sum() + pos.cash)
    r = px.pct_change().iloc[1:].iloc[-board.lookback_days:]
    return w, r.to_numpy() @ w.to_numpy()


def test_the_numbers_are_the_ledgers_at_the_date_picked(tab):
    t, engine, board = tab
    t.show("Balanced Growth")
    w, port = _expected(engine, board, "Balanced Growth", board.prices.index[-1])
    rep = t.report
    pd.testing.assert_series_equal(rep.weights.sort_index(), w.sort_index(), check_names=False, rtol=1e-12)
    assert w.sum() < 1  # the cash is part of the value
    # historical VaR at 95 %: the k-th worst loss, k = 5 % of the periods (qpo.measures' rule)
    losses = np.sort(-port)[::-1]
    k = int(np.ceil(0.05 * len(port)))
    assert rep.var_table.loc["historical", "var"] == pytest.approx(losses[k - 1], rel=1e-9)
    assert rep.var_table.loc["normal", "var"] == pytest.approx(-(port.mean() - 1.6448536269514722 * port.std(ddof=1)),
                                                                 rel=1e-6)
    # Euler contributions add up to the volatility; the sectors to the same
    assert rep.contributions["vol_share"].sum() == pytest.approx(1.0, abs=1e-9)
    assert rep.sector_contributions["vol_share"].sum() == pytest.approx(1.0, abs=1e-9)
    assert "historical" in t.var.value and "Information Technology" in t.contributions.value
    assert "Global financial crisis 2008" in t.stress.value
    dd = np.cumprod(1 + port)
    drawdown = dd / np.maximum.accumulate(np.concatenate([[1.0], dd]))[1:] - 1
    np.testing.assert_allclose(np.asarray(t.drawdown_fig.data[0].y), drawdown, atol=1e-12)


def test_the_controls_redraw_it_and_the_figure_stays(tab):
    t, engine, board = tab
    t.show("Balanced Growth")
    fig, trace = t.drawdown_fig, t.drawdown_fig.data[0]
    one_day = t.report.var_table.loc["historical", "var"]
    t.horizon.value = 10  # a 10-day horizon: larger losses
    assert t.report.var_table.loc["historical", "var"] > one_day and "10 days" in t.message.value
    t.confidence.value = 0.99
    assert "99%" in t.message.value
    t.as_of.value = dt.date(2021, 6, 30)
    w, _ = _expected(engine, board, "Balanced Growth", "2021-06-30")
    pd.testing.assert_series_equal(t.report.weights.sort_index(), w.sort_index(), check_names=False, rtol=1e-12)
    assert t.report.end == pd.Timestamp("2021-06-30")
    assert t.drawdown_fig is fig and t.drawdown_fig.data[0] is trace  # updated in place


def test_refusals_and_bad_dates_are_messages(tab):
    t, _, _ = tab
    t.show("Tech Tilt")  # Ben's client
    assert "may not see portfolio" in t.message.value and t.report is None and t.var.value == ""
    assert len(t.drawdown_fig.data[0].y) == 0
    t.as_of.value = dt.date(1980, 1, 1)
    t.show("Balanced Growth")
    assert "pick a date between" in t.message.value and t.report is None
    t.as_of.value = dt.date(2019, 6, 28)  # before the book opened
    assert "held no shares on 2019-06-28" in t.message.value and "Traceback" not in t.message.value


def test_an_earlier_date_keeps_the_sp500_as_the_benchmark(qpo_home, sp500):
    """The board holds the S&P 500 over its whole history (``benchmark_history``) and over the last
    window only (``benchmark``): the tab took the latter, so every as-of date but the last had gaps,
    no benchmark, and the market shocks moved 'the equal-weighted universe' (a -20 % market: 20.46 %
    lost on the page, 17.91 % through the portfolio's beta to the index). Now the index of the
    chosen date's own window."""
    from qpo.store import connect
    from qpo.workbench.tabs.risk import RiskTab

    engine = connect()
    seed_demo_book(engine, prices=sp500)
    index = qpo.prices_to_returns(qpo.load_prices("sp500_index", start="2000-01-01"))["SP500"]
    board = tab_board(engine, ANA, sp500.loc["2000-01-01":], benchmark=index.iloc[-500:], benchmark_history=index,
                      lookback_days=500)
    t = RiskTab(board)
    t.as_of.value = dt.date(2022, 6, 30)
    t.show("Balanced Growth")
    rep = t.report
    assert rep is not None and rep.benchmark_returns is not None
    assert rep.benchmark_returns.index.equals(index.loc[:"2022-06-30"].iloc[-500:].index)
    assert "equal-weighted universe" not in t.stress.value
    t.as_of.value = dt.date(1980, 1, 1)
    assert t.drawdown_fig.layout.title.text == "Drawdown"  # not the last portfolio's maximum
