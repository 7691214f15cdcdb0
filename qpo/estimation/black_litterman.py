"""Black-Litterman posterior expected returns, as a mean estimator.

Conventions (He & Litterman 1999; the same as PyPortfolioOpt's ``BlackLittermanModel``, which
the tests compare with):

* prior ``pi = delta Sigma w_mkt`` (market-implied returns; ``w_mkt`` from ``market_weights``,
  equal weights when none are given), or a given ``prior`` (annual);
* views ``P mu = Q``: absolute views ``{ticker: annual return}``, or ``(P, Q)`` with ``P`` a
  DataFrame (views x tickers) and ``Q`` annual returns;
* view uncertainty ``Omega``: ``diag(tau P Sigma P')`` by default, Idzorek's method from
  ``view_confidences`` (0 < c <= 1), or a given matrix;
* posterior ``mu = pi + tau Sigma P' (tau P Sigma P' + Omega)^-1 (Q - P pi)``.

Everything is computed on annual figures (``Sigma`` = per-period covariance x
``periods_per_year``) and returned per period, like every other estimator. ``periods_per_year``
None (default) reads it from the returns' dates (:func:`qpo.data.infer_frequency`: 252 business
days, 365 calendar days, 52 weekly, 12 monthly; 252 for returns without dates).
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo.data.calendar import infer_frequency
from qpo.errors import InvalidValueError, ProblemError
from qpo.estimation.moments import CovarianceEstimator, MeanEstimator, covariance_estimator


@dataclass(frozen=True, eq=False)
class BlackLitterman(MeanEstimator):
    """Black-Litterman posterior mean (per period) from views on annual returns.

    Parameters
    ----------
    views
        ``{ticker: annual return}`` (absolute views) or ``(P, Q)``: ``P`` a DataFrame of view
        weights (one row per view, columns = tickers; relative views have rows summing to 0) and
        ``Q`` the views' annual returns (sequence or Series).
    market_weights
        Market-capitalization weights for the prior (ticker -> weight, normalized here); equal
        weights when None.
    prior
        Annual prior returns (ticker -> return) instead of the market-implied prior.
    risk_aversion
        ``delta`` of the market-implied prior.
    tau
        Scale of the prior's uncertainty.
    view_confidences
        Idzorek confidences (one per view, in (0, 1]); None uses ``diag(tau P Sigma P')``.
    omega
        The view covariance matrix itself (overrides ``view_confidences``).
    covariance
        The covariance estimator (name or object) the model uses.
    periods_per_year
        To annualize the covariance and de-annualize the posterior; None: from the returns' dates.
    """

    views: object = None
    market_weights: Mapping[str, float] | None = None
    prior: Mapping[str, float] | None = None
    risk_aversion: float = 2.5
    tau: float = 0.05
    view_confidences: object = None
    omega: object = None
    covariance: str | CovarianceEstimator = "sample"
    periods_per_year: int | None = None
    name = "black_litterman"

    def __post_init__(self):
        for field_name, low in (("risk_aversion", 0.0), ("tau", 0.0)):
            v = getattr(self, field_name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= low:
                raise InvalidValueError(f"{field_name} must be a positive number, got {v!r}")
        if self.periods_per_year is not None:
            infer_frequency(None, self.periods_per_year)  # a positive whole number, or a DataError that says so
        if self.views is None:
            raise InvalidValueError("BlackLitterman needs views: {ticker: annual return} or (P, Q)")
        covariance_estimator(self.covariance)

    def view_matrices(self, tickers: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(P, Q)`` in ``tickers``' order (Q annual)."""
        if isinstance(self.views, (Mapping, pd.Series)):
            d = dict(self.views)
            unknown = sorted(map(str, set(d) - set(tickers)))
            if unknown:
                raise ProblemError(f"views name tickers outside the universe: {unknown}")
            names = list(d)
            P = np.array([[1.0 if t == k else 0.0 for t in tickers] for k in names])
            Q = np.array([float(d[k]) for k in names])
        elif isinstance(self.views, tuple) and len(self.views) == 2:
            Pm, Q = self.views
            if not isinstance(Pm, pd.DataFrame):
                raise ProblemError("in views=(P, Q), P must be a DataFrame whose columns are tickers")
            unknown = sorted(map(str, set(Pm.columns) - set(tickers)))
            if unknown:
                raise ProblemError(f"the view matrix P names tickers outside the universe: {unknown}")
            P = Pm.reindex(columns=tickers, fill_value=0.0).to_numpy(dtype=float)
            Q = np.asarray(Q, dtype=float).ravel()
            if len(Q) != P.shape[0]:
                raise ProblemError(f"{P.shape[0]} views in P but {len(Q)} returns in Q")
        else:
            raise ProblemError("views must be {ticker: annual return} or a pair (P DataFrame, Q returns)")
        if len(Q) == 0:
            raise ProblemError("views is empty: give at least one view")
        if not (np.isfinite(P).all() and np.isfinite(Q).all()):
            raise ProblemError("views hold NaN/inf")
        return P, Q

    def posterior(self, cov_annual: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """``(prior, posterior)`` annual expected returns for the given annual covariance."""
        tickers = list(cov_annual.columns)
        S = cov_annual.to_numpy(dtype=float)
        n = len(tickers)
        if self.prior is not None:
            pi = _vector("prior", self.prior, tickers, None)
        else:
            w = _vector("market_weights", self.market_weights, tickers, 1.0 / n)
            if w.sum() <= 0:
                raise ProblemError("market_weights must sum to a positive number")
            pi = self.risk_aversion * S @ (w / w.sum())
        P, Q = self.view_matrices(tickers)
        tS = self.tau * S
        if self.omega is not None:
            omega = np.atleast_2d(np.asarray(self.omega, dtype=float))
            if omega.shape != (len(Q), len(Q)):
                raise ProblemError(f"omega must be {len(Q)} x {len(Q)} (one row per view), got {omega.shape}")
        elif self.view_confidences is not None:
            conf = np.asarray(self.view_confidences, dtype=float).ravel()
            if len(conf) != len(Q) or not ((conf > 0) & (conf <= 1)).all():
                raise ProblemError(f"view_confidences needs {len(Q)} numbers in (0, 1], got {conf.tolist()}")
            omega = np.diag([(1.0 - c) / c * float(p @ tS @ p) for c, p in zip(conf, P)])  # Idzorek
        else:
            omega = np.diag(np.diag(P @ tS @ P.T))
        A = P @ tS @ P.T + omega
        post = pi + tS @ P.T @ np.linalg.solve(A, Q - P @ pi)
        return pd.Series(pi, index=tickers), pd.Series(post, index=tickers)

    def estimate(self, returns: pd.DataFrame) -> pd.Series:
        ppy = infer_frequency(returns.index, self.periods_per_year).periods_per_year
        cov = covariance_estimator(self.covariance).estimate(returns) * ppy
        _, post = self.posterior(cov)
        return post / ppy


def _vector(name, value, tickers, default) -> np.ndarray:
    if value is None:
        return np.full(len(tickers), default, dtype=float)
    d = dict(value)
    unknown = sorted(map(str, set(d) - set(tickers)))
    if unknown:
        raise ProblemError(f"{name} names tickers outside the universe: {unknown}")
    if default is None:
        missing = [t for t in tickers if t not in d]
        if missing:
            raise ProblemError(f"{name} has no value for {missing[:10]}")
    out = np.array([float(d.get(t, 0.0 if default is not None else np.nan)) for t in tickers])
    if not np.isfinite(out).all():
        raise ProblemError(f"{name} holds NaN/inf")
    return out
