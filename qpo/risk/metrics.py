"""Risk metrics and the risk report.

Conventions (stated once, used everywhere in qpo)
-------------------------------------------------
* Returns are **simple** period returns ``p_t / p_{t-1} - 1``.
* A fixed-weight portfolio is rebalanced to its weights every period: ``r_p = R @ w``.
* ``periods_per_year`` (default 252) annualizes: volatility ``std(r, ddof=1) * sqrt(P)``,
  mean return ``mean(r) * P``; CAGR is geometric: ``prod(1 + r) ** (P / n) - 1``.
* Sharpe = ``mean(r - rf/P) / std(r, ddof=1) * sqrt(P)`` with an annual ``risk_free_rate``.
* Max drawdown is on compounded wealth ``prod(1 + r)``, reported as a positive fraction.
* VaR and CVaR are **positive losses** over one period at ``confidence`` c. With the returns
  sorted ascending and ``k = (1 - c) n``: VaR = minus the ``ceil(k)``-th smallest return;
  CVaR = minus the mean of the worst ``k`` returns (fractional ``k`` weights the boundary
  return: Rockafellar-Uryasev), so CVaR >= VaR.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from qpo.errors import DataError, InvalidValueError

PERIODS_PER_YEAR = 252


def percent(fraction: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%', 0.999 -> '99.9%' (no rounding away of what matters)."""
    return f"{fraction * 100:.6f}".rstrip("0").rstrip(".") + "%"


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not (0.0 < float(confidence) < 1.0):
        raise InvalidValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95), got {confidence}")


def _values(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise DataError(f"expected one return series, got an array of shape {r.shape}")
    if r.size == 0:
        raise DataError("the return series is empty")
    if not np.isfinite(r).all():
        raise DataError(f"the return series holds {int((~np.isfinite(r)).sum())} NaN/inf values")
    return r


def portfolio_returns(weights: pd.Series, returns: pd.DataFrame) -> pd.Series:
    """Per-period returns of a portfolio held at constant ``weights`` (rebalanced each period).

    ``weights`` is indexed by ticker; every ticker must be a column of ``returns``.
    """
    if not isinstance(weights, pd.Series):
        raise DataError("weights must be a pandas Series indexed by ticker")
    missing = [t for t in weights.index if t not in returns.columns]
    if missing:
        raise DataError(f"weights name tickers that the returns do not have: {missing}; "
                        f"returns have {list(returns.columns)}")
    sub = returns[list(weights.index)]
    if sub.isna().to_numpy().any():
        cols = sub.columns[sub.isna().any()].tolist()
        raise DataError(f"returns hold NaN for held tickers {cols}; trim the window or drop them")
    out = sub.to_numpy() @ weights.to_numpy(dtype=float)
    return pd.Series(out, index=returns.index, name="portfolio")


def annualized_volatility(returns, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    return float(np.std(_values(returns), ddof=1) * math.sqrt(periods_per_year))


def cagr(returns, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    r = _values(returns)
    growth = float(np.prod(1.0 + r))
    return growth ** (periods_per_year / r.size) - 1.0 if growth > 0 else -1.0


def sharpe_ratio(returns, risk_free_rate: float = 0.0, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    r = _values(returns) - risk_free_rate / periods_per_year
    sd = np.std(r, ddof=1)
    return float(r.mean() / sd * math.sqrt(periods_per_year)) if sd > 0 else float("nan")


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Drawdown from the running peak of compounded wealth (<= 0)."""
    wealth = (1.0 + pd.Series(returns, dtype=float)).cumprod()
    peak = np.maximum(wealth.cummax(), 1.0)  # the starting wealth of 1 is a peak too
    return wealth / peak - 1.0


def max_drawdown(returns) -> float:
    """Largest peak-to-trough loss of compounded wealth, as a positive fraction."""
    _values(returns)
    return float(-drawdown_series(pd.Series(np.asarray(returns, dtype=float))).min())


def _tail(r: np.ndarray, confidence: float) -> tuple[np.ndarray, float, int]:
    _check_confidence(confidence)
    k = (1.0 - confidence) * r.size
    # (1 - 0.95) * 1000 is 50.00000000000004 in floating point: snap to whole numbers first, so
    # that VaR is the 50th worst return and not the 51st.
    k_whole = round(k)
    if abs(k - k_whole) < 1e-9 * max(1.0, k):
        k = float(k_whole)
    ik = max(0, math.ceil(k) - 1)
    return np.sort(r), k, ik


def historical_var(returns, confidence: float = 0.95) -> float:
    """One-period historical Value at Risk, a positive loss (see the module's conventions)."""
    s, _, ik = _tail(_values(returns), confidence)
    return float(-s[ik])


def historical_cvar(returns, confidence: float = 0.95) -> float:
    """One-period historical CVaR (expected shortfall), a positive loss, >= VaR."""
    s, k, ik = _tail(_values(returns), confidence)
    if k < 1.0:
        return float(-s[0])
    return float(-(s[:ik].sum() + s[ik] * (k - ik)) / k)


@dataclass
class RiskReport:
    """Risk numbers of one portfolio over one window. Conventions: see :mod:`qpo.risk.metrics`."""

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

    METRICS = ("cagr", "mean_return", "volatility", "sharpe", "max_drawdown", "var", "cvar")

    def metrics(self) -> dict[str, float]:
        """The numeric metrics by name, with the confidence they were computed at (what pipelines
        log and the store keeps)."""
        return {**{m: float(getattr(self, m)) for m in self.METRICS}, "confidence": float(self.confidence)}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = str(self.start.date()), str(self.end.date())
        return d

    def to_frame(self) -> pd.DataFrame:
        labels = {
            "cagr": "Annualized return (CAGR)",
            "mean_return": "Annualized mean return",
            "volatility": "Annualized volatility",
            "sharpe": "Sharpe ratio",
            "max_drawdown": "Max drawdown",
            "var": f"VaR {percent(self.confidence)} (1 day, historical)",
            "cvar": f"CVaR {percent(self.confidence)} (1 day, historical)",
        }
        return pd.DataFrame({"metric": [labels[m] for m in self.METRICS],
                             "value": [getattr(self, m) for m in self.METRICS]}).set_index("metric")


def risk_report(weights: pd.Series | None, returns: pd.DataFrame | pd.Series, confidence: float = 0.95,
                risk_free_rate: float = 0.0, periods_per_year: int = PERIODS_PER_YEAR) -> RiskReport:
    """Risk report of a portfolio (``weights`` over the asset ``returns``) or of a return series
    (``weights=None`` and ``returns`` a Series)."""
    _check_confidence(confidence)
    if weights is None:
        if not isinstance(returns, pd.Series):
            raise DataError("with weights=None, returns must be the portfolio's return Series")
        r = returns.astype(float)
    else:
        r = portfolio_returns(weights, returns)
    if len(r) < 2:
        raise DataError(f"need at least 2 returns for a risk report, got {len(r)}")
    v = _values(r)
    return RiskReport(
        start=pd.Timestamp(r.index[0]), end=pd.Timestamp(r.index[-1]), n_periods=int(v.size),
        periods_per_year=periods_per_year, confidence=float(confidence), risk_free_rate=risk_free_rate,
        cagr=cagr(v, periods_per_year), mean_return=float(v.mean() * periods_per_year),
        volatility=annualized_volatility(v, periods_per_year),
        sharpe=sharpe_ratio(v, risk_free_rate, periods_per_year), max_drawdown=max_drawdown(v),
        var=historical_var(v, confidence), cvar=historical_cvar(v, confidence),
    )
