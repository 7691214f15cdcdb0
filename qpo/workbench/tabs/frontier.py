"""The dashboard's Frontier tab: the efficient frontier under the portfolio's constraints, with the
current portfolio, the proposal (after its trades) and its target as points, so an advisor can show
a client what the trade buys.

The universe is the proposal's names (the Rebalance tab's last proposal for this portfolio when
there is one, else a dry run of :func:`qpo.book.propose_rebalance`); the problem is its strategy's
(:meth:`qpo.book.Strategy.problem`) over the same returns window, without current weights: a
frontier has no turnover and no trading costs (there is no trade to cost). Every point's expected
return and volatility come from the problem's annualized moments applied to the weights as given,
fractions of the whole value (cash earns 0).
"""
from __future__ import annotations

import html
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from qpo.workbench._overview import failure_text

#: points on the frontier curve
N_POINTS = 30
#: the points drawn beside the curve: (key, label, marker colour, marker symbol)
POINTS = (("current", "current", "#c0392b", "circle"), ("after", "proposal (after trades)", "#2980b9", "diamond"),
          ("target", "target", "#27ae60", "star"), ("min_variance", "minimum variance", "#7f8c8d", "square"),
          ("max_sharpe", "maximum Sharpe", "#8e44ad", "triangle-up"))
NOTE = ("Weights are fractions of the whole value, cash included (cash earns 0): each point's expected return and "
        "volatility are the strategy's annualized estimates applied to those weights. The frontier is under the "
        "strategy's constraints without the turnover cap and trading costs (where the portfolio could be, not one trade "
        "away).")
_HOVER = "%{text}<br>volatility %{x:.2%}<br>expected return %{y:.2%}<br>Sharpe %{customdata:.2f}<extra></extra>"


def _error(text: str) -> str:
    return f"<div class='qpo-error' style='color:#c0392b'>{html.escape(text)}</div>"


def _pct(x) -> str:
    return "" if x is None or pd.isna(x) else f"{100 * float(x):.2f}%"


def point_stats(weights, mu: np.ndarray, cov: np.ndarray, risk_free_rate: float = 0.0) -> tuple[float, float, float]:
    """(expected return, volatility, Sharpe) of ``weights`` (fractions of the whole value, the
    rest cash at 0) on annualized ``mu`` and ``cov``."""
    w = np.asarray(weights, dtype=float)
    ret = float(w @ mu)
    vol = float(np.sqrt(max(float(w @ cov @ w), 0.0)))
    return ret, vol, (ret - risk_free_rate) / vol if vol > 0 else float("nan")


def frontier_return_at(frontier: pd.DataFrame, volatility: float) -> float:
    """The frontier's expected return at ``volatility`` (linear between its points); NaN outside its
    volatility range."""
    vol = frontier["volatility"].to_numpy()
    ret = frontier["expected_return"].to_numpy()
    if not (vol[0] - 1e-12 <= volatility <= vol[-1] + 1e-12):
        return float("nan")
    return float(np.interp(volatility, vol, ret))


class FrontierTab:
    """Tab 4 of the advisor dashboard (see the module). ``show(name)`` draws portfolio ``name``.

    After a show: ``frontier`` (the :func:`qpo.efficient_frontier` frame), ``problem`` (its
    :class:`qpo.PortfolioProblem`), ``proposal`` (the proposal whose points are drawn), ``points``
    (a DataFrame: one row per point of :data:`POINTS`, columns ``expected_return``, ``volatility``,
    ``sharpe``) and ``distance`` (the frontier's return at the current volatility minus the current
    return; NaN when the current volatility lies outside the frontier's). ``figure`` is one
    FigureWidget, the same object from one portfolio to the next.
    """

    def __init__(self, board) -> None:
        import ipywidgets as widgets

        from qpo.workbench.figure_widgets import figure_widget

        self.board = board
        self.name: str | None = None
        self.frontier: pd.DataFrame | None = None
        self.problem: Any = None
        self.proposal: Any = None
        self.points: pd.DataFrame | None = None
        self.distance = float("nan")
        self.message = widgets.HTML()
        self.table = widgets.HTML()
        self.note = widgets.HTML(f"<p style='color:#555;font-size:90%'>{html.escape(NOTE)}</p>")
        self.figure = figure_widget(layout=dict(
            template="plotly_white", height=420, title="Efficient frontier", margin=dict(l=60, r=20, t=50, b=50),
            xaxis=dict(title="volatility (a year)", tickformat=".0%"),
            yaxis=dict(title="expected return (a year)", tickformat=".0%")))
        self.figure.add_scatter(x=[], y=[], mode="lines+markers", name="efficient frontier", text=[], customdata=[],
                                hovertemplate=_HOVER, line=dict(color="#34495e"), marker=dict(size=4))
        for _key, label, color, symbol in POINTS:
            self.figure.add_scatter(x=[], y=[], mode="markers", name=label, text=[], customdata=[],
                                    hovertemplate=_HOVER, marker=dict(color=color, symbol=symbol, size=13,
                                                                      line=dict(color="white", width=1)))
        self.widget = widgets.VBox([self.message, self.figure, self.table, self.note])

    def _clear(self, message: str) -> None:
        self.message.value = _error(message)
        self.table.value = ""
        self.frontier = self.problem = self.proposal = self.points = None
        self.distance = float("nan")
        with self.figure.batch_update():
            for trace in self.figure.data:
                trace.x, trace.y, trace.text, trace.customdata = [], [], [], []

    def _proposal(self, name: str):
        """The Rebalance tab's last proposal for ``name`` when there is one, else a dry run."""
        from qpo.book import propose_rebalance

        tab = (getattr(self.board, "tabs", None) or {}).get("Rebalance")
        shown = getattr(tab, "proposal", None)
        if shown is not None and getattr(shown, "portfolio", None) == name:
            return shown, "the Rebalance tab's proposal"
        return propose_rebalance(name, actor=self.board.actor, prices=self.board.prices, engine=self.board.engine,
                                 save=False), "a dry run of the stored strategy"

    def show(self, name: str) -> None:
        """Draw portfolio ``name``: its frontier, points and table (an error in words otherwise)."""
        from qpo.book.rebalance import returns_window
        from qpo.errors import QpoError
        from qpo.optimization.engine import optimize
        from qpo.optimization.frontier import efficient_frontier

        self.name = name
        try:
            proposal, source = self._proposal(name)
            strategy = proposal.strategy
            names = list(proposal.weights.index)
            returns, _last = returns_window(self.board.prices, names, proposal.prices_as_of, int(strategy.lookback))
            problem = strategy.problem(returns, sectors=self.board.sectors)
            problem = problem.with_constraints(replace(problem.constraints, transaction_costs=None, market_impact=None))
            frontier = efficient_frontier(problem, n_points=N_POINTS)
            best = optimize(problem, "max_sharpe", confidence_level=None).weights.reindex(names).to_numpy()
        except QpoError as exc:
            self._clear(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a driver's text may hold the store's URL: named by its kind only
            self._clear(failure_text(exc, f"the frontier of {name} could not be computed"))
            return
        mu, cov, rf = problem.annual_mu(), problem.annual_cov(), float(problem.risk_free_rate)
        w = proposal.weights.reindex(problem.tickers).fillna(0.0)
        weights = {"current": w["before"].to_numpy(), "after": w["after"].to_numpy(), "target": w["target"].to_numpy(),
                   "min_variance": frontier[problem.tickers].iloc[0].to_numpy(), "max_sharpe": best}
        points = pd.DataFrame({k: point_stats(v, mu, cov, rf) for k, v in weights.items()},
                              index=["expected_return", "volatility", "sharpe"]).T
        self.proposal, self.problem, self.frontier, self.points = proposal, problem, frontier, points
        cur = points.loc["current"]
        self.distance = frontier_return_at(frontier, float(cur["volatility"])) - float(cur["expected_return"])
        self._draw(name, frontier, points)
        self._fill_table(points)
        self.message.value = (f"<p>{html.escape(name)}: {len(names)} names, returns {returns.index[0].date()} to "
                              f"{returns.index[-1].date()}, objective {html.escape(strategy.objective)}; the proposal "
                              f"is {source} (prices of {proposal.prices_as_of.date()}).</p>")

    def _draw(self, name: str, frontier: pd.DataFrame, points: pd.DataFrame) -> None:
        n = len(frontier)
        with self.figure.batch_update():
            curve = self.figure.data[0]
            curve.x, curve.y = frontier["volatility"].to_numpy(), frontier["expected_return"].to_numpy()
            curve.text, curve.customdata = [f"frontier point {i + 1} of {n}" for i in range(n)], frontier["sharpe"].to_numpy()
            for trace, (key, label, _c, _s) in zip(self.figure.data[1:], POINTS):
                row = points.loc[key]
                trace.x, trace.y = [row["volatility"]], [row["expected_return"]]
                trace.text, trace.customdata = [label], [row["sharpe"]]
            self.figure.layout.title.text = f"{name}: efficient frontier and what the trade buys"

    def _fill_table(self, points: pd.DataFrame) -> None:
        shown = points.loc[["current", "after", "target"]].rename(
            index={"current": "current", "after": "proposal (after)", "target": "target"})
        frame = pd.DataFrame({"expected return (a year)": shown["expected_return"].map(_pct),
                              "volatility (a year)": shown["volatility"].map(_pct),
                              "Sharpe": shown["sharpe"].map(lambda x: "" if pd.isna(x) else f"{x:.2f}")})
        gap = ("outside the frontier's volatility range" if pd.isna(self.distance)
               else f"{_pct(self.distance)} a year of expected return")
        self.table.value = (frame.to_html(classes="qpo-frontier", border=0, escape=True)
                            + f"<p class='qpo-frontier-distance'>Distance of the current portfolio to the frontier "
                              f"(the frontier's return at its volatility minus its return): {html.escape(gap)}</p>")
