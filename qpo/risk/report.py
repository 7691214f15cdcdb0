"""The risk report: every number a risk committee signs off on, as numbers and tables.

Its figures and its HTML page are drawn by :mod:`qpo.reporting.risk` (risk computes, reporting draws).

Conventions: :mod:`qpo.risk.metrics` (returns, annualization, ratios), :mod:`qpo.risk.var`
(VaR/CVaR signs, methods, horizons), :mod:`qpo.risk.decomposition` (contributions),
:mod:`qpo.risk.stress` (scenarios), :mod:`qpo.risk.attribution` (Brinson-Fachler). The report
repeats them in :attr:`RiskReport.conventions`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qpo._checks import check_confidence, check_dated
from qpo.data.calendar import Frequency
from qpo.errors import DataError
from qpo.risk.compliance import ComplianceStatus, Limits, check_compliance
from qpo.risk.metrics import (
    DrawdownInfo,
    _values,
    annualized_volatility,
    benchmark_statistics,
    cagr,
    calmar_ratio,
    check_simple_returns,
    drawdown_info,
    excess_kurtosis,
    frequency_of,
    historical_cvar,
    historical_var,
    hit_rate,
    max_drawdown,
    percent,
    period_name,
    portfolio_returns,
    sharpe_ratio,
    skewness,
    sortino_ratio,
)


@dataclass
class RiskReport:
    """Risk of one portfolio (or one return series) over one window. See :func:`risk_report`."""

    start: pd.Timestamp
    end: pd.Timestamp
    n_periods: int
    periods_per_year: int
    confidence: float
    risk_free_rate: float
    cagr: float
    mean_return: float
    volatility: float
    sharpe: float
    max_drawdown: float
    var: float
    cvar: float
    sortino: float = float("nan")
    calmar: float = float("nan")
    skew: float = float("nan")
    kurtosis: float = float("nan")
    hit_rate: float = float("nan")
    horizon: int = 1
    drawdown: DrawdownInfo | None = None
    var_table: pd.DataFrame | None = None
    benchmark: dict[str, float] | None = None
    contributions: pd.DataFrame | None = None
    sector_contributions: pd.DataFrame | None = None
    stress: pd.DataFrame | None = None
    stress_contributions: dict[str, pd.Series] = field(default_factory=dict)
    compliance: pd.DataFrame | None = None
    attribution: pd.DataFrame | None = None
    returns: pd.Series | None = field(default=None, repr=False)
    benchmark_returns: pd.Series | None = field(default=None, repr=False)
    weights: pd.Series | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)
    #: how often the returns are observed, and whether that was inferred from the dates, given or assumed
    frequency: Frequency | None = None

    METRICS = ("cagr", "mean_return", "volatility", "sharpe", "sortino", "calmar", "max_drawdown", "skew",
               "kurtosis", "hit_rate", "var", "cvar")

    # -- numbers -----------------------------------------------------------------------------
    @property
    def period(self) -> str:
        """What one period of the returns is called (``day``, ``week``, ``month``, ...)."""
        return period_name(self.periods_per_year)

    @property
    def breaches(self) -> list[str]:
        """One line per compliance breach (empty when every limit holds or none was given)."""
        if self.compliance is None or self.compliance.empty:
            return []
        b = self.compliance[self.compliance["status"] == ComplianceStatus.BREACH]
        return [f"{r.check}: {r.detail}" for r in b.itertuples()]

    @property
    def unchecked(self) -> list[str]:
        """One line per check that could not be made (names without a sector under a cap on every
        sector): neither a breach nor a pass."""
        if self.compliance is None or self.compliance.empty:
            return []
        rows = self.compliance[self.compliance["status"] == ComplianceStatus.NOT_CHECKED]
        return [f"{r.check}: {r.detail}" for r in rows.itertuples()]

    @property
    def compliance_status(self) -> ComplianceStatus:
        """BREACH when any limit is breached, PASS when every limit holds, NOT_CHECKED without limits."""
        if self.compliance is None or self.compliance.empty:
            return ComplianceStatus.NOT_CHECKED
        return ComplianceStatus.BREACH if self.breaches else ComplianceStatus.PASS

    def metrics(self) -> dict[str, float]:
        """Every number of the report, flat (what pipelines log to MLflow and the store keeps):
        the summary metrics, ``confidence``, ``var_<method>``/``cvar_<method>``, the benchmark's
        statistics, the drawdown duration, the stress losses (``stress_loss_<scenario>``) and the
        compliance status (``compliance_breaches``, ``breach_<check>`` 0/1). Undefined numbers (a
        Sortino ratio without a losing period, ...) are left out."""
        m = {k: float(getattr(self, k)) for k in self.METRICS}
        m["confidence"] = float(self.confidence)
        if self.drawdown is not None:
            m["max_drawdown_duration"] = float(self.drawdown.duration)
            m["longest_drawdown"] = float(self.drawdown.longest_duration)
        if self.var_table is not None:
            for method, row in self.var_table.iterrows():
                m[f"var_{method}"], m[f"cvar_{method}"] = float(row["var"]), float(row["cvar"])
        for k, v in (self.benchmark or {}).items():
            m[k] = float(v)
        if self.stress is not None:
            for r in self.stress.itertuples():
                if np.isfinite(r.loss):
                    m[f"stress_loss_{_slug(r.scenario)}"] = float(r.loss)
        if self.compliance is not None:
            m["compliance_breaches"] = float(len(self.breaches))
            for r in self.compliance.itertuples():
                m[f"breach_{_slug(r.check)}"] = float(r.status == ComplianceStatus.BREACH)
        return {k: v for k, v in m.items() if math.isfinite(v)}

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("n_periods", "periods_per_year", "confidence", "risk_free_rate",
                                           "horizon", *self.METRICS)}
        d["start"], d["end"] = str(self.start.date()), str(self.end.date())
        if self.frequency is not None:
            d["frequency"] = self.frequency.name
            d["frequency_source"] = self.frequency.source
        d["metrics"] = self.metrics()
        d["breaches"] = self.breaches
        return d

    def to_frame(self) -> pd.DataFrame:
        """The summary table (metric -> value)."""
        c = percent(self.confidence)
        one = f"1 {self.period}"
        labels = {
            "cagr": "Annualized return (CAGR)",
            "mean_return": "Annualized mean return",
            "volatility": "Annualized volatility",
            "sharpe": "Sharpe ratio",
            "sortino": "Sortino ratio",
            "calmar": "Calmar ratio",
            "max_drawdown": "Max drawdown",
            "skew": "Skew",
            "kurtosis": "Excess kurtosis",
            "hit_rate": "Hit rate (share of periods > 0)",
            "var": f"VaR {c} ({one}, historical)",
            "cvar": f"CVaR {c} ({one}, historical)",
        }
        rows = [(labels[m], getattr(self, m)) for m in self.METRICS]
        if self.drawdown is not None:
            rows.append(("Max drawdown duration (periods below the peak)", float(self.drawdown.duration)))
        for k, v in (self.benchmark or {}).items():
            rows.append((k.replace("_", " ").capitalize() + " vs benchmark", v))
        return pd.DataFrame(rows, columns=["metric", "value"]).set_index("metric")

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the report by name (summary, var, contributions, sectors, stress,
        compliance, attribution, drawdown), the absent ones left out."""
        out = {"summary": self.to_frame()}
        if self.drawdown is not None:
            d = self.drawdown
            out["drawdown"] = pd.DataFrame({"value": [d.max_drawdown, _date(d.peak), _date(d.trough),
                                                      _date(d.recovery) or "not recovered", d.duration,
                                                      d.longest_duration]},
                                           index=["max drawdown", "peak", "trough", "recovery",
                                                  "duration (periods)", "longest drawdown (periods)"])
        for name, t in (("var", self.var_table), ("contributions", self.contributions),
                        ("sectors", self.sector_contributions), ("stress", self.stress),
                        ("compliance", self.compliance), ("attribution", self.attribution)):
            if t is not None:
                out[name] = t
        # rows named by what they are, not 0..n
        if "stress" in out:
            out["stress"] = out["stress"].set_index("scenario")
        if "compliance" in out:
            out["compliance"] = out["compliance"].set_index("check")
        return out

    @property
    def conventions(self) -> str:
        h = self.horizon
        freq = f" ({self.frequency.describe()})" if self.frequency is not None else ""
        unit = self.period
        return (f"Simple returns; {self.periods_per_year} periods a year{freq} (volatility x sqrt({self.periods_per_year}), "
                f"mean x {self.periods_per_year}, CAGR geometric). VaR and CVaR are positive losses at "
                f"{percent(self.confidence)} confidence over {h} {unit}{'s' if h > 1 else ''} (an h-period return is "
                "the sum of h one-period returns; parametric methods scale mean by h and volatility by sqrt(h)). "
                f"Risk-free rate {self.risk_free_rate:.2%} a year (rf/{self.periods_per_year} a period) in Sharpe, "
                "Sortino and alpha. Kurtosis is excess kurtosis. Contributions are Euler components (they sum to "
                "the portfolio's volatility or CVaR). Stress losses are positive; historical scenarios hold today's "
                "weights through the window, shocks propagate through betas over the report window.")


def _slug(text: str) -> str:
    import re

    text = re.sub(r"(?<!\w)\+(?=\d)", " plus ", str(text).lower())
    text = re.sub(r"(?<!\w)-(?=\d)", " minus ", text).replace("%", " pct ")
    out = "".join(ch if ch.isalnum() else "_" for ch in text)
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_")


def _date(x):
    return None if x is None else str(pd.Timestamp(x).date())


def _benchmark_kind(benchmark, returns) -> str | None:
    if benchmark is None:
        return None
    if not isinstance(benchmark, pd.Series):
        raise DataError("benchmark must be a pandas Series: returns by date, or weights by ticker")
    if isinstance(returns, pd.DataFrame) and len(benchmark) and set(benchmark.index) <= set(returns.columns):
        return "weights"
    if not isinstance(benchmark.index, pd.DatetimeIndex):
        cols = list(returns.columns) if isinstance(returns, pd.DataFrame) else []
        raise DataError("benchmark must be returns indexed by date or weights indexed by tickers of the returns; "
                        f"its index is neither (first labels {list(benchmark.index[:5])}; tickers {cols[:10]})")
    return "returns"


def _given(benchmark: pd.Series | None) -> pd.Series:
    """The benchmark, once :func:`_benchmark_kind` has said there is one."""
    assert benchmark is not None, "a benchmark kind is only set for a given benchmark"
    return benchmark


#: the largest sum of weights a risk report takes (a book levered twice over); beyond it, weights in percent
MAX_NET_WEIGHT = 2.0


def risk_report(weights: pd.Series | None, returns: pd.DataFrame | pd.Series, benchmark: pd.Series | None = None,
                confidence: float = 0.95, risk_free_rate: float = 0.0, periods_per_year: int | Frequency | None = None, *,
                horizon: int = 1, sectors: dict[str, str] | None = None, history: pd.DataFrame | None = None,
                stress_scenarios: dict | None = None, shocks: list | None = None, limits: Limits | dict | None = None,
                n_scenarios: int = 100_000, seed: int = 0) -> RiskReport:
    """The risk report of a portfolio (``weights`` by ticker over the asset ``returns``) or of a
    return series (``weights=None``, ``returns`` a Series).

    Parameters
    ----------
    benchmark
        Benchmark **returns** by date (the same dates as ``returns``; qpo does not fill or align
        gaps: missing dates are an error), or benchmark **weights** by ticker (columns of
        ``returns``), which also gives the Brinson-Fachler attribution by sector.
    periods_per_year
        Periods a year that annualize the figures; None (default) reads them from the returns'
        dates (:func:`qpo.data.infer_frequency`: 252 business days, 365 calendar days, 52 weekly,
        12 monthly; irregular dates are a :class:`~qpo.errors.DataError`). The report's notes say
        which frequency it used and whether it was inferred or given.
    confidence, horizon
        VaR/CVaR confidence in (0, 1) and horizon in periods of the data (days for daily data,
        months for monthly data), for every method of
        :mod:`qpo.risk.var`. ``var`` and ``cvar`` stay the one-period historical figures.
    sectors
        ``{ticker: sector}`` for the sector contributions, sector shocks, sector caps and the
        attribution; None uses the bundled GICS map for the tickers it knows (others are
        "Unclassified").
    history
        Asset returns over a longer past, for the historical stress windows (default: ``returns``).
    stress_scenarios, shocks
        ``{name: (start, end)}`` windows (default :data:`qpo.risk.stress.HISTORICAL_SCENARIOS`) and
        hypothetical shocks (default :func:`qpo.risk.stress.default_shocks`); ``{}``/``[]`` skip them.
    limits
        :class:`qpo.risk.Limits` (or a dict of its fields) for the compliance checks.
    n_scenarios, seed
        Monte Carlo scenarios (normal and bootstrap) and their seed.
    """
    from qpo.data.sectors import BUNDLED_SECTORS
    from qpo.risk.decomposition import (
        cvar_contributions,
        group_contributions,
        volatility_contributions,
    )
    from qpo.risk.stress import default_shocks, historical_stress, hypothetical_stress
    from qpo.risk.var import VAR_METHODS, _check_horizon, monte_carlo_var_of, var_cvar

    check_confidence(confidence)
    horizon = _check_horizon(horizon)
    limits = Limits.coerce(limits)
    if not isinstance(getattr(returns, "index", None), pd.DatetimeIndex):
        raise DataError("returns must be indexed by date (a pandas DatetimeIndex): the report dates its drawdowns "
                        "and replays stress windows by date")
    check_dated(returns, "returns")
    if isinstance(benchmark, (pd.Series, pd.DataFrame)) and isinstance(benchmark.index, pd.DatetimeIndex):
        check_dated(benchmark, "the benchmark's returns")
    kind = _benchmark_kind(benchmark, returns)  # None exactly when benchmark is None
    if kind == "weights":
        bad = ~np.isfinite(_given(benchmark).to_numpy(dtype=float))
        if bad.any():
            raise DataError(f"benchmark weights hold NaN/inf for {_given(benchmark).index[bad].tolist()}")
    if weights is None:
        if not isinstance(returns, pd.Series):
            raise DataError("with weights=None, returns must be the portfolio's return Series")
        r = returns.astype(float)
        check_simple_returns(r, "returns", assets=False)  # a leveraged portfolio may lose more than it had
        assets = r.to_frame("portfolio")
        w = pd.Series([1.0], index=["portfolio"])
        if kind == "weights":
            raise DataError("benchmark weights need asset returns: pass the portfolio's weights and asset returns")
        if limits is not None and (limits.max_weight or limits.sector_max is not None or limits.min_names):
            raise DataError("weight limits need the portfolio's weights; a return series only takes var_limit")
    else:
        if not isinstance(returns, pd.DataFrame):
            raise DataError("with weights, returns must be a DataFrame of asset returns (dates x tickers)")
        if not isinstance(weights, pd.Series):
            raise DataError("weights must be a pandas Series indexed by ticker")
        if not np.isfinite(weights.to_numpy(dtype=float)).all():
            raise DataError(f"weights hold NaN/inf for {weights.index[~np.isfinite(weights.to_numpy(dtype=float))].tolist()}")
        net = float(weights.to_numpy(dtype=float).sum())
        if net > MAX_NET_WEIGHT:
            raise DataError(f"weights sum to {net:,.6g}: weights are fractions of the portfolio's value (0.2 for "
                            f"20 %), summing to 1 (less: the rest is cash; at most {MAX_NET_WEIGHT:g}, a leveraged "
                            "book); are these in percent (divide by 100)?")
        r = portfolio_returns(weights, returns)
        assets, w = returns[list(weights.index)], weights.astype(float)
        check_simple_returns(assets, "returns")
    if len(r) < 2:
        raise DataError(f"need at least 2 returns for a risk report, got {len(r)}")
    v = _values(r)
    frequency = frequency_of(r, periods_per_year)
    periods_per_year = frequency.periods_per_year
    groups = sectors if sectors is not None else {t: s for t, s in BUNDLED_SECTORS.items()
                                                  if isinstance(returns, pd.DataFrame) and t in returns.columns}
    notes: list[str] = [f"Annualized as {frequency.describe()}: volatility x sqrt({periods_per_year}), "
                        f"mean x {periods_per_year}; VaR and CVaR over {horizon} {period_name(periods_per_year)}"
                        f"{'s' if horizon > 1 else ''} of the data."]
    if weights is not None and abs(float(w.sum()) - 1.0) > 1e-6:
        notes.append(f"The weights sum to {float(w.sum()):.6g}, not 1: the rest of the portfolio "
                     f"({1.0 - float(w.sum()):.6g}) is taken as cash at a zero return (returns, volatility and "
                     "VaR scale with the weights' sum).")
    # benchmark
    bench_r, bench_stats, attribution = None, None, None
    if kind == "returns":
        from qpo.risk.metrics import _aligned_benchmark

        bench_r = pd.Series(_aligned_benchmark(r, benchmark), index=r.index, name="benchmark")
        _values(bench_r)
        check_simple_returns(bench_r, "the benchmark's returns")
    elif kind == "weights":
        bench_w = _given(benchmark).astype(float)
        bench_r = portfolio_returns(bench_w, returns).rename("benchmark")
        from qpo.risk.attribution import brinson_fachler

        attribution = brinson_fachler(w, bench_w, returns, groups)
    if bench_r is not None:
        bench_stats = benchmark_statistics(r, bench_r, risk_free_rate, periods_per_year)
    # VaR by method
    table = {}
    for method in VAR_METHODS:
        if method.startswith("monte_carlo"):
            mc = monte_carlo_var_of(w, assets, confidence=confidence, horizon=horizon, n_scenarios=n_scenarios,
                                 method=method.removeprefix("monte_carlo_"), seed=seed)
            table[method] = (mc.var, mc.cvar)
            if method == "monte_carlo_normal":
                mc_component = mc.component_cvar
        elif method != "historical" and v.size < 3:
            continue
        else:
            table[method] = var_cvar(v, confidence, horizon, method)
    var_table = pd.DataFrame(table, index=["var", "cvar"]).T.rename_axis("method")
    # decomposition, stress, compliance (portfolios only)
    contributions = sector_table = stress = None
    stress_contrib: dict = {}
    compliance = None
    if weights is not None:
        vol = volatility_contributions(w, returns, periods_per_year)
        cv = cvar_contributions(w, returns, confidence)
        contributions = pd.DataFrame({
            "weight": vol["weight"], "vol_marginal": vol["marginal"], "vol_component": vol["component"],
            "vol_share": vol["share"], "cvar_marginal": cv["marginal"], "cvar_component": cv["component"],
            "cvar_share": cv["share"]})
        if horizon == 1:  # the Monte Carlo components are at the report's horizon: shown when it is one period
            contributions["mc_normal_cvar_component"] = mc_component
        s_vol = group_contributions(vol, groups).rename(columns={"component": "vol_component", "share": "vol_share"})
        s_cv = group_contributions(cv, groups)[["component", "share"]].rename(
            columns={"component": "cvar_component", "share": "cvar_share"})
        sector_table = s_vol.join(s_cv)
        hist_frame, hist_contrib = historical_stress(w, history if history is not None else returns,
                                                     stress_scenarios, benchmark=None)
        if shocks is None:
            shocks = default_shocks(w, groups)
        shock_frame, shock_contrib = hypothetical_stress(
            w, returns, shocks, groups=groups, benchmark=bench_r, confidence=confidence)
        frames = [f for f in (hist_frame, shock_frame) if not f.empty]
        stress = pd.concat(frames, ignore_index=True) if frames else None
        stress_contrib = {**hist_contrib, **shock_contrib}
    if limits is not None:
        compliance = check_compliance(w if weights is not None else pd.Series(dtype=float), limits, groups=groups,
                                      var_values={m: float(var_table.loc[m, "var"]) for m in var_table.index},
                                      var_label=f"{percent(confidence)} {horizon}-period")
    if "cornish_fisher" in var_table.index and v.size >= 4:
        from qpo.risk.var import cornish_fisher_valid

        sk, ku = skewness(v), excess_kurtosis(v)
        if not cornish_fisher_valid(sk / math.sqrt(horizon), ku / horizon, confidence):
            notes.append(f"Cornish-Fisher is outside its valid domain here (skew {sk:.2f}, excess kurtosis {ku:.1f}: "
                         "its quantile is not monotone in the tail), so its VaR and CVaR are unreliable; prefer the "
                         "historical or bootstrap figures.")
    if not groups and weights is not None:
        notes.append("No sector map was given and none of the tickers is in the bundled map: every name is "
                     "'Unclassified' in the sector tables.")
    return RiskReport(
        start=pd.Timestamp(r.index[0]), end=pd.Timestamp(r.index[-1]), n_periods=int(v.size),
        periods_per_year=periods_per_year, confidence=float(confidence), risk_free_rate=risk_free_rate,
        cagr=cagr(v, periods_per_year), mean_return=float(v.mean() * periods_per_year),
        volatility=annualized_volatility(v, periods_per_year),
        sharpe=sharpe_ratio(v, risk_free_rate, periods_per_year), max_drawdown=max_drawdown(v),
        var=historical_var(v, confidence), cvar=historical_cvar(v, confidence),
        sortino=sortino_ratio(v, risk_free_rate, periods_per_year), calmar=calmar_ratio(v, periods_per_year),
        skew=skewness(v) if v.size >= 3 else float("nan"), kurtosis=excess_kurtosis(v) if v.size >= 4 else float("nan"),
        hit_rate=hit_rate(v), horizon=horizon, drawdown=drawdown_info(r), var_table=var_table,
        benchmark=bench_stats, contributions=contributions, sector_contributions=sector_table, stress=stress,
        stress_contributions=stress_contrib, compliance=compliance, attribution=attribution, returns=r.rename("portfolio"),
        benchmark_returns=bench_r, weights=w if weights is not None else None, notes=notes, frequency=frequency,
    )

