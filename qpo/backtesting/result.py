"""What a backtest hands back: :class:`BacktestResult` (one strategy) and
:class:`BacktestComparison` (several on the same data)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd

from qpo.backtesting.strategy import Strategy

if TYPE_CHECKING:  # qpo.risk is imported when a backtest computes its report, not with this module
    from qpo.risk import RiskReport

_LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=20, t=50, b=40))
#: the summary's rows, in order
SUMMARY_ROWS = ("CAGR", "volatility", "Sharpe", "max drawdown", "total turnover", "costs paid", "n rebalances",
                "n failures")


class FailedRebalance(TypedDict):
    """A rebalance whose solve failed (:attr:`BacktestResult.failures`): no trade that day."""

    date: pd.Timestamp
    reason: str


def _wealth(returns: pd.Series, start: pd.Timestamp) -> pd.Series:
    """Compounded wealth from 1.0 at ``start`` (the day before the first return)."""
    w = (1.0 + returns).cumprod()
    return pd.concat([pd.Series([1.0], index=pd.DatetimeIndex([start])), w])


def _drawdown(wealth: pd.Series) -> pd.Series:
    return wealth / wealth.cummax() - 1.0


def _return_stats(returns: pd.Series, risk_free_rate: float, periods_per_year: int) -> dict[str, float]:
    from qpo.risk import cagr, max_drawdown, sharpe_ratio
    from qpo.risk.metrics import annualized_volatility

    return {"CAGR": cagr(returns, periods_per_year), "volatility": annualized_volatility(returns, periods_per_year),
            "Sharpe": sharpe_ratio(returns, risk_free_rate, periods_per_year), "max drawdown": max_drawdown(returns)}


@dataclass
class BacktestResult:
    """One strategy's walk-forward backtest (conventions: :func:`qpo.backtest`).

    ``returns`` are the net returns (after costs, one per period of the prices) from the day after the first rebalance;
    ``gross_returns`` the same before costs; ``equity`` the wealth, 1.0 at the first rebalance's
    close (before costs); ``weights`` the end-of-day (drifted) weights from the first rebalance;
    ``target_weights`` the weights held after each rebalance's close (the drifted ones when it
    failed); ``rebalances`` one row per rebalance (date, n_assets eligible, turnover, cost as a
    fraction of the wealth then, status ``ok``/``failed``, solver, solve_s, message);
    ``failures`` the failed rows of that table (date and reason); ``costs_paid`` the sum of the
    cost fractions; ``risk`` the :class:`qpo.RiskReport` of the net returns; ``timings`` in seconds.
    """

    strategy: Strategy
    returns: pd.Series
    gross_returns: pd.Series
    equity: pd.Series
    weights: pd.DataFrame
    target_weights: pd.DataFrame
    rebalances: pd.DataFrame
    turnover: pd.Series
    costs_paid: float
    benchmark_returns: pd.Series | None
    risk: RiskReport
    timings: dict[str, float]
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.strategy.name

    @property
    def failures(self) -> list[FailedRebalance]:
        """The failed rebalances (no trade), in date order: their ``date`` and ``reason`` (the
        rebalance table's ``message``)."""
        failed = self.rebalances[self.rebalances["status"] == "failed"]
        return [FailedRebalance(date=d, reason=m) for d, m in zip(failed["date"], failed["message"], strict=True)]

    def __repr__(self) -> str:
        return (f"BacktestResult({self.name!r}: {self.returns.index[0].date()}..{self.returns.index[-1].date()}, "
                f"{len(self.rebalances)} rebalances ({len(self.failures)} failed), CAGR {self.risk.cagr:.2%}, "
                f"Sharpe {self.risk.sharpe:.2f}, final wealth {self.equity.iloc[-1]:.4f})")

    def summary(self) -> pd.Series:
        """CAGR, volatility, Sharpe, max drawdown (of the net returns), total turnover, costs paid,
        number of rebalances and of failed ones."""
        r = self.risk
        return pd.Series({"CAGR": r.cagr, "volatility": r.volatility, "Sharpe": r.sharpe,
                          "max drawdown": r.max_drawdown, "total turnover": float(self.turnover.sum()),
                          "costs paid": float(self.costs_paid), "n rebalances": float(len(self.rebalances)),
                          "n failures": float(len(self.failures))}, name=self.name)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow: the risk report's, turnover, costs, counts, timings and, with a
        benchmark, its CAGR/volatility/Sharpe/max drawdown (the risk report's metrics already hold
        beta, alpha, tracking error and information ratio)."""
        ppy = int(self.risk.periods_per_year)
        out = {k: float(v) for k, v in self.risk.metrics().items()}
        ok = self.rebalances["status"].eq("ok")
        out.update({
            "final_wealth": float(self.equity.iloc[-1]),
            "total_turnover": float(self.turnover.sum()),
            "mean_turnover": float(self.turnover[ok.to_numpy()].mean()) if ok.any() else 0.0,
            "costs_paid": float(self.costs_paid),
            "n_rebalances": float(len(self.rebalances)), "n_failures": float(len(self.failures)),
            "mean_assets_held": float((self.target_weights.abs() > 1e-8).sum(axis=1).mean()),
            "solve_median_s": float(self.timings["solve_median_s"]),
            "solve_max_s": float(self.timings["solve_max_s"]), "backtest_s": float(self.timings["total_s"]),
        })
        if self.benchmark_returns is not None:
            b = self.benchmark_returns
            stats = _return_stats(b, self.risk.risk_free_rate, ppy)
            out.update({f"benchmark_{k.lower().replace(' ', '_')}": float(v) for k, v in stats.items()})
            out["excess_cagr"] = out["cagr"] - out["benchmark_cagr"]
        return out

    # -- figures ----------------------------------------------------------------------------------
    def figures(self) -> dict:
        """Plotly figures: ``equity`` (vs the benchmark), ``drawdown``, ``weights`` (stacked area
        over time) and ``turnover`` (bars per rebalance, failed ones marked)."""
        return {"equity": self.equity_figure(), "drawdown": self.drawdown_figure(),
                "weights": self.weights_figure(), "turnover": self.turnover_figure()}

    def _curves(self) -> dict[str, pd.Series]:
        curves = {self.name: self.equity}
        if self.benchmark_returns is not None:
            curves[str(self.benchmark_returns.name)] = _wealth(self.benchmark_returns, self.equity.index[0])
        return curves

    def equity_figure(self):
        return _lines(self._curves(), f"Growth of $1 from {self.equity.index[0].date()} (net of costs)", "wealth")

    def drawdown_figure(self):
        return _lines({k: _drawdown(v) for k, v in self._curves().items()}, "Drawdown", "drawdown", pct=True)

    def weights_figure(self, max_tickers: int = 12, max_points: int = 600):
        """End-of-day weights as a stacked area: the ``max_tickers`` largest on average, the rest
        as ``other``; at most ``max_points`` dates (evenly spaced, every rebalance date kept)."""
        import plotly.graph_objects as go

        W = self.weights
        held = W.columns[(W.abs() > 1e-8).any()]
        W = W[held]
        top = W.mean().sort_values(ascending=False).index[:max_tickers]
        frame = W[top].copy()
        if len(held) > len(top):
            frame["other"] = W.drop(columns=top).sum(axis=1)
        if len(frame) > max_points:
            keep = np.unique(np.concatenate([np.linspace(0, len(frame) - 1, max_points).round().astype(int),
                                             frame.index.get_indexer(self.target_weights.index)]))
            frame = frame.iloc[keep[keep >= 0]]
        fig = go.Figure([go.Scatter(x=frame.index, y=frame[c].to_numpy(), name=str(c), mode="lines", stackgroup="w",
                                    line=dict(width=0.5)) for c in frame.columns])
        fig.update_layout(title=f"{self.name}: weights over time (drifted, end of day)", yaxis_tickformat=".0%",
                          height=400, **_LAYOUT)
        return fig

    def turnover_figure(self):
        import plotly.graph_objects as go

        rb = self.rebalances
        colors = np.where(rb["status"].eq("ok"), "#2c7fb8", "#c0392b").tolist()
        fig = go.Figure(go.Bar(x=rb["date"], y=rb["turnover"], marker_color=colors, name="turnover",
                               customdata=rb[["status", "message"]].to_numpy(),
                               hovertemplate="%{x|%Y-%m-%d}: %{y:.1%} (%{customdata[0]})<extra></extra>"))
        n_failed = int((rb["status"] != "ok").sum())
        fig.update_layout(title=f"{self.name}: turnover per rebalance (sum |trade|)"
                                + (f"; {n_failed} failed (red, no trade)" if n_failed else ""),
                          yaxis_tickformat=".0%", height=320, **_LAYOUT)
        return fig


def _lines(series: dict[str, pd.Series], title: str, yaxis: str, pct: bool = False):
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=s.index, y=s.to_numpy(), mode="lines", name=name) for name, s in series.items()])
    fig.update_layout(title=title, yaxis_title=yaxis, height=380, **_LAYOUT)
    if pct:
        fig.update_layout(yaxis_tickformat=".0%")
    return fig


@dataclass
class BacktestComparison:
    """Several strategies backtested on the same data, schedule and costs
    (:func:`qpo.compare_strategies`); ``results`` by strategy name."""

    results: dict[str, BacktestResult]
    benchmark_returns: pd.Series | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> BacktestResult:
        return self.results[name]

    @property
    def benchmark_label(self) -> str | None:
        return None if self.benchmark_returns is None else f"benchmark ({self.benchmark_returns.name})"

    def summary(self) -> pd.DataFrame:
        """One row per strategy (:meth:`BacktestResult.summary`) and one for the benchmark (its
        return statistics; turnover and the rest left empty)."""
        rows = [r.summary() for r in self.results.values()]
        if self.benchmark_returns is not None:
            first = next(iter(self.results.values()))
            stats = _return_stats(self.benchmark_returns, first.risk.risk_free_rate, int(first.risk.periods_per_year))
            rows.append(pd.Series(stats, name=self.benchmark_label))
        return pd.DataFrame(rows).reindex(columns=list(SUMMARY_ROWS))

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow: each strategy's :meth:`BacktestResult.metrics` prefixed by its
        name (``min_variance.sharpe``), the benchmark's once (``benchmark.cagr``)."""
        out: dict[str, float] = {}
        for name, r in self.results.items():
            for k, v in r.metrics().items():
                if k.startswith("benchmark_"):
                    out[f"benchmark.{k[len('benchmark_'):]}"] = v
                else:
                    out[f"{name}.{k}"] = v
        return out

    def _curves(self) -> dict[str, pd.Series]:
        curves = {name: r.equity for name, r in self.results.items()}
        label = self.benchmark_label
        if self.benchmark_returns is not None and label is not None:
            start = next(iter(self.results.values())).equity.index[0]
            curves[label] = _wealth(self.benchmark_returns, start)
        return curves

    def figures(self) -> dict:
        """``equity`` (growth of $1, net of costs) and ``drawdown`` of every strategy and the benchmark."""
        curves = self._curves()
        start = next(iter(curves.values())).index[0]
        return {"equity": _lines(curves, f"Growth of $1 from {start.date()} (net of costs)", "wealth"),
                "drawdown": _lines({k: _drawdown(v) for k, v in curves.items()}, "Drawdown", "drawdown", pct=True)}
