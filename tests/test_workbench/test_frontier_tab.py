"""The dashboard's Frontier tab on a real store (the demo book in a temporary QPO_HOME), real prices
and the real optimizer: the curve is :func:`qpo.efficient_frontier` of the strategy's problem, the
points are numpy's moments of the weights shown, the proposal comes from the Rebalance tab when it
shows one, refusals are words, and the figure is built once."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from tests.test_workbench import seed_demo_book, tab_board

ANA, BEN = "ana.silva@example.com", "ben.okafor@example.com"
BG, TT = "Balanced Growth", "Tech Tilt"


@pytest.fixture
def book(qpo_home, sp500):
    from qpo.store import connect

    engine = connect()
    assert seed_demo_book(engine, sp500) == 4
    return engine


@pytest.fixture
def board_for(book, sp500):
    def make(email: str, **extra):
        return tab_board(book, email, sp500, **extra)
    return make


def test_the_frontier_and_points_agree_with_independent_computations(board_for, sp500):
    import qpo
    from qpo.book.rebalance import _window
    from qpo.workbench.tabs.frontier import FrontierTab

    tab = FrontierTab(board_for(ANA))
    t0 = time.perf_counter()
    tab.show(BG)
    print(f"show() first: {time.perf_counter() - t0:.3f} s")
    assert "qpo-error" not in tab.message.value, tab.message.value
    p = tab.proposal
    assert p is not None and p.portfolio == BG and p.id is None  # a dry run: nothing stored
    names = list(p.weights.index)
    # the same problem, built here from the strategy: the frontier is qpo.efficient_frontier's
    returns, _ = _window(sp500, names, p.prices_as_of, int(p.strategy.lookback))
    problem = p.strategy.problem(returns, sectors=qpo.load_sectors())
    assert problem.constraints.transaction_costs is not None  # the strategy charges its spread ...
    problem = problem.with_constraints(replace(problem.constraints, transaction_costs=None))  # ... a frontier not
    direct = qpo.efficient_frontier(problem, n_points=30)
    assert len(tab.frontier) == 30
    np.testing.assert_allclose(tab.frontier[["expected_return", "volatility"]].to_numpy(),
                               direct[["expected_return", "volatility"]].to_numpy(), atol=1e-9)
    curve = tab.figure.data[0]
    np.testing.assert_allclose(np.asarray(curve.x), direct["volatility"].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(np.asarray(curve.y), direct["expected_return"].to_numpy(), atol=1e-9)
    assert direct[names].sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-6)  # no turnover: the full budget
    # the current point: numpy on the same annual moments, weights of the whole value (cash at 0)
    mu, cov = problem.mu.to_numpy() * problem.periods_per_year, problem.cov.to_numpy() * problem.periods_per_year
    w = p.weights["before"].reindex(problem.tickers).fillna(0.0).to_numpy()
    assert w.sum() < 1.0  # some cash: it is not renormalized away
    cur = tab.points.loc["current"]
    assert cur["expected_return"] == pytest.approx(float(w @ mu), abs=1e-12)
    assert cur["volatility"] == pytest.approx(float(np.sqrt(w @ cov @ w)), abs=1e-12)
    marker = tab.figure.data[1]
    assert marker.name == "current" and (marker.x[0], marker.y[0]) == pytest.approx(
        (cur["volatility"], cur["expected_return"]))
    # the frontier is the most return at each volatility: the target on or below it, the current below it
    vol, ret = direct["volatility"].to_numpy(), direct["expected_return"].to_numpy()
    for key in ("target", "current"):
        pt = tab.points.loc[key]
        if vol[0] <= pt["volatility"] <= vol[-1]:
            assert pt["expected_return"] <= np.interp(pt["volatility"], vol, ret) + 1e-4, key
    gap = np.interp(cur["volatility"], vol, ret) - cur["expected_return"]
    assert vol[0] <= cur["volatility"] <= vol[-1] and gap > 1e-3
    assert tab.distance == pytest.approx(gap, abs=1e-12)
    # max Sharpe above every frontier point's Sharpe (up to the grid), min variance the curve's start
    assert tab.points.loc["max_sharpe", "sharpe"] >= direct["sharpe"].max() - 1e-6
    assert tab.points.loc["min_variance", "volatility"] == pytest.approx(vol[0], abs=1e-9)
    assert f"{100 * gap:.2f}%" in tab.table.value and "proposal (after)" in tab.table.value


def test_the_proposal_point_comes_from_the_rebalance_tab(board_for):
    from qpo.workbench.tabs.frontier import FrontierTab
    from qpo.workbench.tabs.rebalance import RebalanceTab

    board = board_for(ANA)
    rebalance = RebalanceTab(board)
    board.tabs = {"Rebalance": rebalance}
    rebalance.show(BG)
    rebalance.max_turnover.value = "0.05"  # a small step: not where the stored strategy's dry run goes
    rebalance.propose_button.click()
    shown = rebalance.proposal
    assert shown is not None and shown.id is not None, rebalance.status.value
    tab = FrontierTab(board)
    tab.show(BG)
    assert tab.proposal is shown and "Rebalance tab" in tab.message.value
    problem = tab.problem
    mu, cov = problem.annual_mu(), problem.annual_cov()
    after = shown.weights["after"].reindex(problem.tickers).fillna(0.0).to_numpy()
    assert tab.points.loc["after", "expected_return"] == pytest.approx(float(after @ mu), abs=1e-12)
    assert tab.points.loc["after", "volatility"] == pytest.approx(float(np.sqrt(after @ cov @ after)), abs=1e-12)
    # the dry run of the stored strategy (30 % turnover cap) lands elsewhere
    dry = FrontierTab(board_for(ANA))
    dry.show(BG)
    assert dry.proposal is not shown and "dry run" in dry.message.value
    assert abs(dry.points.loc["after", "volatility"] - tab.points.loc["after", "volatility"]) > 1e-4
    # another portfolio: the Rebalance tab's proposal (of BG) is not used
    tab.show("Conservative Income")
    assert tab.proposal is not shown and tab.proposal.portfolio == "Conservative Income"


def test_another_advisors_portfolio_is_refused_in_words(board_for):
    from qpo.workbench.tabs.frontier import FrontierTab

    tab = FrontierTab(board_for(ANA))
    tab.show(BG)
    tab.show(TT)  # Ben's client
    assert "qpo-error" in tab.message.value and TT in tab.message.value
    assert "Traceback" not in tab.message.value
    assert tab.frontier is None and tab.points is None and tab.table.value == ""
    assert all(len(trace.x) == 0 for trace in tab.figure.data)


def test_the_figure_is_built_once_and_updated_in_place(board_for):
    from qpo.workbench.tabs.frontier import FrontierTab

    tab = FrontierTab(board_for(BEN))
    figure, traces = tab.figure, tab.figure.data
    timings = []
    for name in (TT, "Min-Variance Core", TT):
        t0 = time.perf_counter()
        tab.show(name)
        timings.append(time.perf_counter() - t0)
        assert "qpo-error" not in tab.message.value, tab.message.value
        assert tab.figure is figure and all(a is b for a, b in zip(tab.figure.data, traces))
        assert name in tab.figure.layout.title.text
    print("show() timings:", ", ".join(f"{t:.3f} s" for t in timings))
    xs = np.asarray(tab.figure.data[0].x)
    assert len(xs) == 30 and np.all(np.diff(xs) >= -1e-12)  # the frontier's volatility rises along it
    assert tab.figure.data[1].x[0] == pytest.approx(tab.points.loc["current", "volatility"])
