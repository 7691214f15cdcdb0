"""The daily risk report of one client portfolio: what the pipeline notebook shows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from qpo.errors import DataError

if TYPE_CHECKING:
    from qpo.optimization import OptimizationResult
    from qpo.risk import RiskReport


@dataclass
class DailyReport:
    portfolio: str
    as_of: pd.Timestamp
    weights: pd.Series
    asset_returns: pd.DataFrame
    returns: pd.Series
    benchmark_returns: pd.Series | None
    risk: RiskReport
    benchmark_risk: RiskReport | None
    what_if: OptimizationResult  # min-variance on the held names
    what_if_risk: RiskReport

    @property
    def breaches(self) -> list[str]:
        return self.risk.breaches

    def status_html(self) -> str:
        """The banner the report opens with: every compliance breach in red, or a green line."""
        import html

        r = self.risk
        if r.compliance is None:
            return "<p>No limits were given: compliance not checked.</p>"
        n = len(r.compliance)
        if self.breaches:
            items = "".join(f"<li>{html.escape(b)}</li>" for b in self.breaches)
            return (f'<div class="qpo-breach" style="background:#fdecea;border:2px solid #c0392b;padding:8px 12px">'
                    f"<b>COMPLIANCE BREACH: {len(self.breaches)} of {n} checks failed for "
                    f"{html.escape(self.portfolio)} on {self.as_of.date()}</b><ul>{items}</ul></div>")
        return (f'<div class="qpo-compliant" style="background:#eafaf1;border:2px solid #27ae60;padding:8px 12px">'
                f"<b>Compliant: all {n} checks pass for {html.escape(self.portfolio)} on {self.as_of.date()}</b></div>")

    def metrics(self) -> dict[str, float]:
        m = dict(self.risk.metrics())
        m.update({f"what_if_{k}": v for k, v in self.what_if_risk.metrics().items()})
        if self.benchmark_risk is not None:
            m.update({f"benchmark_{k}": v for k, v in self.benchmark_risk.metrics().items()})
        return m

    def risk_table(self) -> pd.DataFrame:
        cols = {"portfolio": self.risk.to_frame()["value"],
                "what-if min-variance": self.what_if_risk.to_frame()["value"]}
        if self.benchmark_risk is not None:
            cols["S&P 500"] = self.benchmark_risk.to_frame()["value"]
        return pd.DataFrame(cols).reindex(cols["portfolio"].index)

    def figures(self) -> dict:
        from qpo.reporting.figures import drawdown_figure, wealth_figure, weights_figure
        from qpo.risk import drawdown_series, portfolio_returns

        series = {self.portfolio: self.returns}
        series["what-if min-variance"] = portfolio_returns(self.what_if.weights, self.asset_returns)
        if self.benchmark_returns is not None:
            series["S&P 500"] = self.benchmark_returns
        risk = self.risk.figures()
        return {
            "wealth": wealth_figure(series, f"Growth of $1 over {len(self.returns)} days to {self.as_of.date()}"),
            "drawdown": drawdown_figure(drawdown_series(self.returns), f"{self.portfolio}: drawdown"),
            "weights": weights_figure({"current": self.weights, "what-if min-variance": self.what_if.weights},
                                      "Current weights and the min-variance rebalance"),
            **{k: risk[k] for k in ("distribution", "contributions", "sectors", "stress") if k in risk},
        }


def daily_report(portfolio: str, prices: pd.DataFrame, *, as_of=None, lookback_days: int = 756,
                 confidence: float = 0.95, risk_free_rate: float = 0.0, max_weight: float = 0.25,
                 benchmark: pd.Series | None = None, engine=None, horizon: int = 1, limits=None,
                 sectors: dict[str, str] | None = None, n_scenarios: int = 100_000) -> DailyReport:
    """The full risk report (:func:`qpo.risk_report`) of ``portfolio`` (from the store) over the
    ``lookback_days`` returns up to ``as_of``: against the benchmark (its level series, when given
    and priced on every day of the window), with the historical stress windows replayed over the
    whole price history up to ``as_of``, and the compliance checks of ``limits``; next to a what-if
    long-only min-variance rebalance of the same names (weights <= max_weight)."""
    from qpo.data.returns import prices_to_returns
    from qpo.optimization import Constraints, PortfolioProblem, optimize
    from qpo.risk import portfolio_returns, risk_report
    from qpo.store import connect, portfolio_weights, session_scope

    if lookback_days < 20:
        raise DataError(f"lookback_days must be at least 20 trading days, got {lookback_days}")
    as_of = pd.Timestamp(as_of) if as_of is not None else prices.index[-1]
    if not prices.index[0] <= as_of <= prices.index[-1]:
        raise DataError(f"as_of {as_of.date()} is outside the prices, which run from {prices.index[0].date()} "
                        f"to {prices.index[-1].date()}")
    with session_scope(engine or connect()) as session:
        weights = portfolio_weights(session, portfolio, prices, as_of)
    px = prices.loc[:as_of, list(weights.index)]
    if len(px) < lookback_days + 1:
        raise DataError(f"{len(px) - 1} days of returns up to {as_of.date()} for {portfolio!r}; "
                        f"lookback_days={lookback_days} needs {lookback_days + 1} prices. Lower it.")
    window = px.iloc[-(lookback_days + 1):]
    gaps = window.columns[window.isna().any()].tolist()
    if gaps:
        raise DataError(f"held tickers {gaps} have no price on some of the {lookback_days + 1} days up to "
                        f"{as_of.date()} (first gap {window[gaps].isna().any(axis=1).idxmax().date()}); "
                        "shorten lookback_days or fill the prices")
    asset_returns = prices_to_returns(window)
    port = portfolio_returns(weights, asset_returns)
    bench_r = None
    if benchmark is not None:
        b = prices_to_returns(benchmark.loc[:as_of].to_frame(), dropna="none").iloc[:, 0].reindex(asset_returns.index)
        if b.notna().all():
            bench_r = b.rename("S&P 500")
    history = prices_to_returns(px, dropna="all")  # NaN before a listing is kept: stress coverage says so
    risk = risk_report(weights, asset_returns, benchmark=bench_r, confidence=confidence,
                       risk_free_rate=risk_free_rate, horizon=horizon, sectors=sectors, history=history,
                       limits=limits, n_scenarios=n_scenarios)
    n = len(weights)
    problem = PortfolioProblem.from_returns(
        asset_returns, constraints=Constraints(max_weight=max(max_weight, 1.0 / n)), risk_free_rate=risk_free_rate)
    what_if = optimize(problem, "min_variance")
    what_if_risk = risk_report(what_if.weights, asset_returns, confidence=confidence,
                               risk_free_rate=risk_free_rate, stress_scenarios={}, shocks=[], n_scenarios=n_scenarios)
    bench_risk = None
    if bench_r is not None:
        bench_risk = risk_report(None, bench_r, confidence=confidence, risk_free_rate=risk_free_rate,
                                 n_scenarios=n_scenarios)
    return DailyReport(portfolio, as_of, weights, asset_returns, port, bench_r, risk, bench_risk, what_if,
                       what_if_risk)
