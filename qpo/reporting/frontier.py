"""The classical frontier study behind ``notebooks/02_classical_frontier.ipynb``: one problem,
its efficient frontier, the portfolios of several objectives on it, figures and metrics."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qpo.errors import UnknownOptionError
from qpo.optimization import (
    Constraints,
    OptimizationResult,
    PortfolioProblem,
    efficient_frontier,
    optimize,
)

#: objectives a study can place on the frontier chart without extra options
STUDY_OBJECTIVES = ("min_variance", "max_sharpe", "max_utility", "min_cvar", "risk_parity", "hrp",
                    "max_diversification")


@dataclass
class FrontierStudy:
    """The frontier (``qpo.efficient_frontier``'s frame) and each objective's result."""

    problem: PortfolioProblem
    frontier: pd.DataFrame
    portfolios: dict[str, OptimizationResult]
    skipped: dict[str, str] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per portfolio: annualized return, volatility, Sharpe, holdings, solver."""
        return pd.DataFrame({name: r.summary() for name, r in self.portfolios.items()}).T

    def weights(self) -> pd.DataFrame:
        return pd.DataFrame({name: r.weights for name, r in self.portfolios.items()})

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow: each portfolio's statistics and the frontier's extent."""
        out = {"frontier_points": float(len(self.frontier)),
               "frontier_min_volatility": float(self.frontier["volatility"].min()),
               "frontier_max_return": float(self.frontier["expected_return"].max()),
               "frontier_max_sharpe": float(self.frontier["sharpe"].max()),
               "frontier_seconds": float(self.frontier.attrs.get("total_s", np.nan))}
        for name, r in self.portfolios.items():
            out[f"{name}.expected_return"] = r.expected_return
            out[f"{name}.volatility"] = r.volatility
            out[f"{name}.sharpe"] = r.sharpe
        return out

    def frontier_figure(self):
        import plotly.graph_objects as go

        f = self.frontier
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=f["volatility"], y=f["expected_return"], mode="lines+markers", name="frontier",
                                 marker=dict(size=4)))
        cov, mu = self.problem.annual_cov(), self.problem.annual_mu()
        fig.add_trace(go.Scatter(x=np.sqrt(np.diag(cov)), y=mu, mode="markers+text", name="assets",
                                 text=self.problem.tickers, textposition="top center", marker=dict(size=6)))
        for name, r in self.portfolios.items():
            fig.add_trace(go.Scatter(x=[r.volatility], y=[r.expected_return], mode="markers", name=name,
                                     marker=dict(size=12, symbol="diamond")))
        fig.update_layout(title=f"Efficient frontier ({len(f)} points, {f.attrs.get('path')} path)",
                          xaxis_title="volatility (annualized)", yaxis_title="expected return (annualized)",
                          xaxis_tickformat=".0%", yaxis_tickformat=".0%", template="plotly_white", height=460)
        return fig

    def weights_figure(self):
        from qpo.reporting.figures import weights_figure

        return weights_figure({name: r.weights for name, r in self.portfolios.items()},
                              title="Weights of each objective's portfolio")

    def frontier_weights_figure(self):
        import plotly.graph_objects as go

        f = self.frontier
        held = [t for t in self.problem.tickers if f[t].abs().max() > 1e-6]
        fig = go.Figure([go.Scatter(x=f["volatility"], y=f[t], stackgroup="w", name=t, mode="lines") for t in held])
        fig.update_layout(title="Weights along the frontier", xaxis_title="volatility (annualized)",
                          yaxis_tickformat=".0%", xaxis_tickformat=".0%", template="plotly_white", height=420)
        return fig


def frontier_study(returns: pd.DataFrame, *, mean="historical", covariance="sample",
                   constraints: Constraints | None = None, objectives=("min_variance", "max_sharpe"),
                   n_points: int = 50, risk_free_rate: float = 0.0,
                   periods_per_year: int | None = None) -> FrontierStudy:
    """Build the problem, its frontier and each objective's portfolio, annualized at
    ``periods_per_year`` (None: read from the returns' dates, see
    :meth:`qpo.PortfolioProblem.from_returns`). HRP and risk parity take
    no extra constraints: with other constraints they are skipped, and ``skipped`` says why.
    ``mean="forecast"`` (the registry's champion) or a ``models:/`` URI is resolved here
    (:func:`qpo.tracking.resolve_mean`), above the optimizer."""
    from qpo.errors import ProblemError
    from qpo.tracking import resolve_mean

    for name in objectives:
        if name not in STUDY_OBJECTIVES:
            raise UnknownOptionError("study objective", name, STUDY_OBJECTIVES)
    mean = resolve_mean(mean)
    problem = PortfolioProblem.from_returns(returns, mean=mean, covariance=covariance, constraints=constraints,
                                            risk_free_rate=risk_free_rate, periods_per_year=periods_per_year)
    frontier = efficient_frontier(problem, n_points)
    portfolios, skipped = {}, {}
    for name in objectives:
        try:
            portfolios[name] = optimize(problem, name)
        except ProblemError as exc:  # an objective that cannot take these constraints: said, not hidden
            skipped[name] = str(exc)
    return FrontierStudy(problem, frontier, portfolios, skipped)
