"""The unit of the returns, taken out before any solver sees the numbers.

Solvers stop on absolute tolerances (Clarabel's 1e-8 gap, OSQP's ``eps_abs``, the active-set
method's round-off thresholds), so returns in percent, in basis points or multiplied by 1e-12
would otherwise get different "optimal" weights. Every solver path divides the data by one scale
derived from them, :func:`return_scale` (the root mean annual variance of the assets), solves a
problem whose returns and volatilities are near 1, and maps values back to the caller's units.

How each datum is scaled (``s`` the scale) keeps the minimizer exactly the same:

* returns, expected returns, return and volatility targets, tracking-error limits: ``/ s``;
* covariance: ``/ s**2``;
* costs charged next to a variance (``min_variance``, ``efficient_return``): ``/ s**2``; costs
  charged next to a return (every other objective): ``/ s``;
* ``max_utility``'s risk aversion: ``* s`` (``mu'w - ra/2 w'Sigma w`` divided by ``s``).
"""
from __future__ import annotations

import numpy as np

#: the volatility the scaled assets have (their root mean annual variance): a stock's, so that returns
#: given as fractions a year reach the solvers almost as they are
REFERENCE_VOLATILITY = 1.0

#: objectives whose transaction costs and market impact sit next to a variance in the objective
VARIANCE_COST_OBJECTIVES = frozenset({"min_variance", "efficient_return"})


def return_scale(problem) -> float:
    """The typical annual volatility of the problem's assets (the root mean of the annual variances);
    the largest annual expected return in size when every variance is 0; 1.0 when both are 0."""
    var = np.diag(problem.cov.to_numpy(dtype=float)) * problem.periods_per_year
    s = float(np.sqrt(np.mean(np.clip(var, 0.0, None)))) / REFERENCE_VOLATILITY
    if not np.isfinite(s) or s <= 0:
        s = float(np.abs(problem.mu.to_numpy(dtype=float)).max() * problem.periods_per_year)
    if not np.isfinite(s) or s <= 0:
        s = 1.0
    return s


def cost_scale(objective: str, s: float) -> float:
    """The factor to divide transaction costs and market impact by for ``objective``."""
    return s * s if objective in VARIANCE_COST_OBJECTIVES else s
