"""Risk decomposition: each asset's (and sector's) contribution to volatility and to CVaR.

Euler allocation: for a risk measure rho that is homogeneous of degree one in the weights, the
component ``w_i d rho / d w_i`` of every asset sums to rho.

* Volatility (annualized, sample covariance with ddof=1): marginal ``(Sigma w)_i / sigma_p``,
  component ``w_i (Sigma w)_i / sigma_p``; the components sum to the portfolio's volatility.
* Historical CVaR (one period, positive loss): marginal ``-E[r_i | tail]``, component
  ``-w_i E[r_i | tail]``, the tail being the worst ``(1 - c) n`` periods of the portfolio (the
  boundary period weighted by its fraction, as in :func:`qpo.risk.historical_cvar`); the components
  sum to the CVaR.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qpo._checks import check_confidence
from qpo.risk.metrics import (
    _tail,
    annualization,
    portfolio_returns,
)


def volatility_contributions(weights: pd.Series, returns: pd.DataFrame,
                             periods_per_year: float | None = None) -> pd.DataFrame:
    """weight, marginal, component and share (component / volatility) per asset, annualized
    (``periods_per_year`` None: read from the returns' dates, see :func:`qpo.risk.annualized_volatility`)."""
    portfolio_returns(weights, returns)
    periods_per_year = annualization(returns, periods_per_year)
    w = weights.to_numpy(dtype=float)
    R = returns[list(weights.index)].to_numpy(dtype=float)
    cov = np.atleast_2d(np.cov(R, rowvar=False, ddof=1)) * periods_per_year
    sw = cov @ w
    vol = math.sqrt(max(float(w @ sw), 0.0))
    marginal = sw / vol if vol > 0 else np.full_like(w, np.nan)
    component = w * marginal
    return pd.DataFrame({"weight": w, "marginal": marginal, "component": component,
                         "share": component / vol if vol > 0 else np.nan}, index=weights.index)


def cvar_contributions(weights: pd.Series, returns: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """weight, marginal, component and share of the one-period historical CVaR per asset."""
    check_confidence(confidence)
    p = portfolio_returns(weights, returns).to_numpy()
    w = weights.to_numpy(dtype=float)
    R = returns[list(weights.index)].to_numpy(dtype=float)
    _, k, ik = _tail(p, confidence)
    order = np.argsort(p, kind="stable")[:ik + 1]
    tw = np.ones(ik + 1)
    if k >= 1.0:
        tw[ik] = k - ik
    else:
        k = 1.0
    marginal = -(tw @ R[order]) / k
    component = w * marginal
    cvar = float(component.sum())
    return pd.DataFrame({"weight": w, "marginal": marginal, "component": component,
                         "share": component / cvar if cvar != 0 else np.nan}, index=weights.index)


def group_contributions(contributions: pd.DataFrame, groups: dict[str, str] | None,
                        unclassified: str = "Unclassified") -> pd.DataFrame:
    """Weights, components and shares summed by group (marginals do not add up and are left out)."""
    labels = [(groups or {}).get(t, unclassified) for t in contributions.index]
    cols = [c for c in ("weight", "component", "share") if c in contributions]
    return contributions[cols].groupby(pd.Index(labels, name="sector")).sum().sort_values("component",
                                                                                         ascending=False)
