"""The portfolio problem every optimizer (classical or quantum) takes.

Conventions: ``mu`` and ``cov`` are *per period* (daily for daily returns) moments of simple
returns; ``periods_per_year`` annualizes them in results; ``risk_free_rate`` is annual.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from qpo.errors import InfeasibleError, ProblemError

_TOL = 1e-9


@dataclass(frozen=True)
class Constraints:
    """Weight constraints.

    Parameters
    ----------
    long_only
        No negative weights (``min_weight`` is raised to 0 when below it).
    min_weight, max_weight
        Per-asset bounds on the weight; scalars applied to every asset.
    budget
        Sum of weights (1 = fully invested).
    """

    long_only: bool = True
    min_weight: float = 0.0
    max_weight: float = 1.0
    budget: float = 1.0

    def __post_init__(self):
        for name in ("min_weight", "max_weight", "budget"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
                raise ProblemError(f"{name} must be a finite number, got {v!r}")
        if self.max_weight <= 0:
            raise ProblemError(f"max_weight must be > 0, got {self.max_weight}")
        if self.min_weight > self.max_weight:
            raise InfeasibleError(f"min_weight {self.min_weight} > max_weight {self.max_weight}: "
                                  "no weight can satisfy both")

    @property
    def lower(self) -> float:
        return max(self.min_weight, 0.0) if self.long_only else self.min_weight

    @property
    def upper(self) -> float:
        return self.max_weight

    def check_feasible(self, n_assets: int) -> None:
        """Raise :class:`InfeasibleError` naming the constraints that cannot hold together."""
        lo, hi = self.lower, self.upper
        if hi * n_assets < self.budget - _TOL:
            raise InfeasibleError(
                f"max_weight {hi:g} x {n_assets} assets = {hi * n_assets:g} cannot reach a budget of "
                f"{self.budget:g} (fully invested); raise max_weight to at least {self.budget / n_assets:.4g}")
        if lo * n_assets > self.budget + _TOL:
            raise InfeasibleError(
                f"min_weight {lo:g} x {n_assets} assets = {lo * n_assets:g} exceeds the budget of "
                f"{self.budget:g}; lower min_weight to at most {self.budget / n_assets:.4g}")

    def violations(self, weights: np.ndarray, tol: float = 1e-6) -> list[str]:
        """Human-readable list of constraints that ``weights`` break (empty when all hold)."""
        out = []
        if abs(weights.sum() - self.budget) > tol:
            out.append(f"weights sum to {weights.sum():.6g}, budget is {self.budget:g}")
        if (weights < self.lower - tol).any():
            out.append(f"weight {weights.min():.6g} below lower bound {self.lower:g}")
        if (weights > self.upper + tol).any():
            out.append(f"weight {weights.max():.6g} above max_weight {self.upper:g}")
        return out


@dataclass(frozen=True)
class PortfolioProblem:
    """Universe, per-period moments (and optionally return scenarios), constraints.

    Build with :meth:`from_returns` (estimates the moments) or :meth:`from_moments`.
    """

    mu: pd.Series
    cov: pd.DataFrame
    constraints: Constraints = field(default_factory=Constraints)
    returns: pd.DataFrame | None = None
    periods_per_year: int = 252
    risk_free_rate: float = 0.0

    def __post_init__(self):
        _check_moments(self.mu, self.cov)
        if self.returns is not None and list(self.returns.columns) != list(self.mu.index):
            raise ProblemError("return scenarios' columns do not match mu's tickers")
        if not (isinstance(self.periods_per_year, (int, np.integer)) and self.periods_per_year > 0):
            raise ProblemError(f"periods_per_year must be a positive integer, got {self.periods_per_year!r}")
        if not np.isfinite(self.risk_free_rate):
            raise ProblemError(f"risk_free_rate must be finite, got {self.risk_free_rate!r}")

    @property
    def tickers(self) -> list[str]:
        return list(self.mu.index)

    @property
    def n_assets(self) -> int:
        return len(self.mu)

    def with_constraints(self, constraints: Constraints) -> PortfolioProblem:
        return replace(self, constraints=constraints)

    @classmethod
    def from_moments(cls, mu, cov, constraints: Constraints | None = None, *, tickers=None,
                     periods_per_year: int = 252, risk_free_rate: float = 0.0) -> PortfolioProblem:
        """From given per-period ``mu`` (Series/array) and ``cov`` (DataFrame/array)."""
        if not isinstance(mu, pd.Series):
            arr = np.asarray(mu, dtype=float).ravel()
            names = list(tickers) if tickers is not None else (
                list(cov.columns) if isinstance(cov, pd.DataFrame) else [f"asset_{i}" for i in range(len(arr))])
            if len(names) != len(arr):
                raise ProblemError(f"{len(names)} tickers for {len(arr)} expected returns")
            mu = pd.Series(arr, index=names, dtype=float)
        if not isinstance(cov, pd.DataFrame):
            arr = np.asarray(cov, dtype=float)
            if arr.shape != (len(mu), len(mu)):
                raise ProblemError(f"covariance has shape {arr.shape}; expected {(len(mu), len(mu))} to match mu")
            cov = pd.DataFrame(arr, index=mu.index, columns=mu.index)
        return cls(mu=mu.astype(float), cov=cov.astype(float), constraints=constraints or Constraints(),
                   periods_per_year=periods_per_year, risk_free_rate=risk_free_rate)

    @classmethod
    def from_returns(cls, returns: pd.DataFrame, mean="historical", covariance="sample",
                     constraints: Constraints | None = None, *, periods_per_year: int = 252,
                     risk_free_rate: float = 0.0) -> PortfolioProblem:
        """Estimate per-period moments from a returns frame (rows = periods, columns = tickers).

        ``mean`` and ``covariance`` are estimator names (``"historical"``, ``"ewma"``;
        ``"sample"``, ``"ewma"``, ``"ledoit_wolf"``, ``"oas"``) or estimator objects from
        :mod:`qpo.estimation` (``EWMAMean(span=120)``).
        """
        from qpo.estimation import covariance_estimator, mean_estimator

        if not isinstance(returns, pd.DataFrame):
            raise ProblemError("returns must be a pandas DataFrame of periods x tickers")
        mean_est, cov_est = mean_estimator(mean), covariance_estimator(covariance)
        values = returns.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            bad = returns.columns[~np.isfinite(values).all(axis=0)].tolist()
            raise ProblemError(f"returns hold NaN/inf in columns {bad}; drop or fill them first")
        if len(returns) < 2:
            raise ProblemError(f"need at least 2 periods of returns, got {len(returns)}")
        mu = mean_est.estimate(returns).astype(float)
        cov = cov_est.estimate(returns).astype(float)
        return cls(mu=mu, cov=cov, constraints=constraints or Constraints(), returns=returns,
                   periods_per_year=periods_per_year, risk_free_rate=risk_free_rate)


def _check_moments(mu: pd.Series, cov: pd.DataFrame) -> None:
    if not isinstance(mu, pd.Series) or not isinstance(cov, pd.DataFrame):
        raise ProblemError("mu must be a pandas Series and cov a DataFrame (use from_moments for arrays)")
    if len(mu) == 0:
        raise ProblemError("the universe is empty")
    if mu.index.has_duplicates:
        raise ProblemError(f"duplicate tickers in mu: {mu.index[mu.index.duplicated()].tolist()}")
    if list(cov.index) != list(mu.index) or list(cov.columns) != list(mu.index):
        only_mu = sorted(set(mu.index) - set(cov.columns))
        only_cov = sorted(set(cov.columns) - set(mu.index))
        raise ProblemError(f"mu and cov tickers differ (only in mu: {only_mu}, only in cov: {only_cov}"
                           + ("; same names in another order" if not (only_mu or only_cov) else "") + ")")
    if not np.isfinite(mu.to_numpy()).all():
        raise ProblemError(f"mu holds NaN/inf for {mu.index[~np.isfinite(mu.to_numpy())].tolist()}")
    c = cov.to_numpy()
    if not np.isfinite(c).all():
        raise ProblemError("cov holds NaN/inf")
    scale = max(np.abs(c).max(), 1e-300)
    asym = np.abs(c - c.T).max()
    if asym > 1e-8 * scale:
        raise ProblemError(f"cov is not symmetric (max |C - C^T| = {asym:.3g})")
    min_eig = float(np.linalg.eigvalsh((c + c.T) / 2).min())
    if min_eig < -1e-8 * scale:
        raise ProblemError(f"cov is not positive semi-definite (smallest eigenvalue {min_eig:.3g})")
