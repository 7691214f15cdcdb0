"""The portfolio problem every optimizer (classical or quantum) takes.

Conventions: ``mu`` and ``cov`` are *per period* (daily for daily returns) moments of simple
returns; ``periods_per_year`` annualizes them in results; ``risk_free_rate`` is annual.
:meth:`PortfolioProblem.from_returns` reads ``periods_per_year`` from the returns' dates
(:func:`qpo.data.infer_frequency`: 252 for business days, 365 for calendar days, 52 weekly, 12
monthly); without dates the business-day convention (:data:`qpo.data.BUSINESS_DAYS_PER_YEAR`)
holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from qpo._checks import check_dated, price_like
from qpo.data.calendar import BUSINESS_DAYS_PER_YEAR, infer_frequency
from qpo.errors import ProblemError
from qpo.optimization.constraints import Constraints, ResolvedConstraints


@dataclass(frozen=True, eq=False)
class PortfolioProblem:
    """Universe, per-period moments (and optionally return scenarios), constraints.

    Build with :meth:`from_returns` (estimates the moments) or :meth:`from_moments`.
    ``returns`` (periods x tickers) are the scenarios that ``min_cvar``, ``hrp`` and the
    bootstrap confidence interval use. ``repairs`` lists what was changed in the inputs on
    request (``repair_psd=True``).
    """

    mu: pd.Series
    cov: pd.DataFrame
    constraints: Constraints = field(default_factory=Constraints)
    returns: pd.DataFrame | None = None
    periods_per_year: int = BUSINESS_DAYS_PER_YEAR
    risk_free_rate: float = 0.0
    repairs: tuple[str, ...] = ()

    def __post_init__(self):
        _check_moments(self.mu, self.cov)
        if not isinstance(self.constraints, Constraints):
            raise ProblemError(f"constraints must be a qpo.Constraints, got {type(self.constraints).__name__}")
        if self.returns is not None:
            if not isinstance(self.returns, pd.DataFrame):
                raise ProblemError("returns (scenarios) must be a DataFrame of periods x tickers")
            if list(self.returns.columns) != list(self.mu.index):
                only_r = sorted(map(str, set(self.returns.columns) - set(self.mu.index)))
                only_mu = sorted(map(str, set(self.mu.index) - set(self.returns.columns)))
                raise ProblemError(f"return scenarios' columns do not match mu's tickers (only in returns: "
                                   f"{only_r[:10]}, only in mu: {only_mu[:10]}"
                                   + ("; same names in another order" if not (only_r or only_mu) else "") + ")")
            if not np.isfinite(self.returns.to_numpy(dtype=float)).all():
                raise ProblemError("return scenarios hold NaN/inf; drop or fill them first")
        if isinstance(self.periods_per_year, bool) or not (
                isinstance(self.periods_per_year, (int, np.integer)) and self.periods_per_year > 0):
            raise ProblemError(f"periods_per_year must be a positive integer, got {self.periods_per_year!r}")
        if isinstance(self.risk_free_rate, bool) or not isinstance(self.risk_free_rate, (int, float, np.number)) \
                or not np.isfinite(self.risk_free_rate):
            raise ProblemError(f"risk_free_rate must be a finite number (annual), got {self.risk_free_rate!r}")
        # resolving checks the constraints' tickers against the universe, once (here, eagerly)
        self.resolved  # noqa: B018 - computed now so that bad tickers fail at construction

    @property
    def tickers(self) -> list[str]:
        return list(self.mu.index)

    @property
    def n_assets(self) -> int:
        return len(self.mu)

    @cached_property
    def resolved(self) -> ResolvedConstraints:
        """The constraints as arrays in ticker order."""
        return self.constraints.resolve(self.tickers)

    def riskless(self) -> list[str]:
        """The tickers whose variance is zero (to 1e-9 of the largest volatility): cash, or a price
        that did not move over the returns' window (a stale vendor stretch)."""
        sd = np.sqrt(np.clip(np.diag(self.cov.to_numpy(dtype=float)), 0.0, None))
        if self.returns is not None and len(self.returns) > 1 and set(self.tickers) <= set(self.returns.columns):
            # a shrunk covariance (Ledoit-Wolf, OAS) gives a flat asset some variance: its returns say it has none
            sd = np.minimum(sd, self.returns[self.tickers].to_numpy(dtype=float).std(axis=0, ddof=1))
        top = float(sd.max()) if sd.size else 0.0
        return [t for t, v in zip(self.tickers, sd) if not v > 1e-9 * top]

    def annual_cov(self) -> np.ndarray:
        return self.cov.to_numpy() * self.periods_per_year

    def annual_mu(self) -> np.ndarray:
        return self.mu.to_numpy() * self.periods_per_year

    def with_constraints(self, constraints: Constraints) -> PortfolioProblem:
        return replace(self, constraints=constraints)

    def with_mean(self, mu) -> PortfolioProblem:
        """The same problem with other expected returns (per period), e.g. a Black-Litterman posterior."""
        mu = pd.Series(mu, index=self.mu.index, dtype=float) if not isinstance(mu, pd.Series) else mu
        return replace(self, mu=mu.astype(float))

    @classmethod
    def from_moments(cls, mu, cov, constraints: Constraints | None = None, *, tickers=None, returns=None,
                     periods_per_year: int | None = None, risk_free_rate: float = 0.0,
                     repair_psd: bool = False) -> PortfolioProblem:
        """From given per-period ``mu`` (Series/array) and ``cov`` (DataFrame/array), and optional
        return scenarios ``returns`` (periods x tickers) for ``min_cvar``.

        ``periods_per_year`` None: read from the dates of ``returns`` when they have dates, else
        the business-day convention (252).

        ``repair_psd=True`` replaces a covariance that is not positive semi-definite by the nearest
        one (Frobenius norm: negative eigenvalues clipped to 0; Higham 1988) and records it in
        ``repairs``; by default such a covariance is an error.
        """
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
        if returns is not None and not isinstance(returns, pd.DataFrame):
            scenarios = np.asarray(returns, dtype=float)
            if scenarios.ndim != 2 or scenarios.shape[1] != len(mu):
                raise ProblemError(f"returns (scenarios) have shape {scenarios.shape}; expected (periods, {len(mu)})")
            returns = pd.DataFrame(scenarios, columns=mu.index)
        mu, cov = mu.astype(float), cov.astype(float)
        repairs: tuple[str, ...] = ()
        if repair_psd:
            cov, note = nearest_psd(cov)
            repairs = (note,) if note else ()
        ppy = periods_per_year if periods_per_year is not None else infer_frequency(
            returns.index if returns is not None else None).periods_per_year
        return cls(mu=mu, cov=cov, constraints=constraints or Constraints(), returns=returns,
                   periods_per_year=ppy, risk_free_rate=risk_free_rate, repairs=repairs)

    @classmethod
    def from_returns(cls, returns: pd.DataFrame, mean="historical", covariance="sample",
                     constraints: Constraints | None = None, *, periods_per_year: int | None = None,
                     risk_free_rate: float = 0.0, repair_psd: bool = False) -> PortfolioProblem:
        """Estimate per-period moments from a returns frame (rows = periods, columns = tickers).

        ``mean`` and ``covariance`` are estimator names (``"historical"``, ``"ewma"``;
        ``"sample"``, ``"ewma"``, ``"ledoit_wolf"``, ``"oas"``, ``"factor"``) or estimator objects from
        :mod:`qpo.estimation` (``EWMAMean(span=120)``, ``BlackLitterman(views=...)``). The returns
        are kept as the problem's scenarios.

        ``periods_per_year`` (to annualize) None: inferred from the returns' dates
        (:func:`qpo.data.infer_frequency`; irregular dates are a :class:`~qpo.errors.DataError`),
        252 for returns without dates; a number given overrides.
        """
        from qpo.estimation import covariance_estimator, mean_estimator

        if not isinstance(returns, pd.DataFrame):
            raise ProblemError("returns must be a pandas DataFrame of periods x tickers")
        check_dated(returns, "returns", error=ProblemError)
        mean_est, cov_est = mean_estimator(mean), covariance_estimator(covariance)
        values = returns.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            bad = returns.columns[~np.isfinite(values).all(axis=0)].tolist()
            raise ProblemError(f"returns hold NaN/inf in columns {bad}; drop or fill them first")
        if len(returns) < 2:
            raise ProblemError(f"need at least 2 periods of returns, got {len(returns)}")
        if _look_like_prices(values):
            raise ProblemError("returns look like prices: most columns move like price levels (every value positive, "
                               "a median above 0.5, each value close to the last: a lag-1 autocorrelation above 0.9); "
                               "turn prices into returns with qpo.prices_to_returns")
        _warn_below_minus_one(returns, values)
        ppy = periods_per_year if periods_per_year is not None else infer_frequency(returns.index).periods_per_year
        mu = mean_est.estimate(returns).astype(float)
        cov = cov_est.estimate(returns).astype(float)
        repairs: tuple[str, ...] = ()
        if repair_psd:
            cov, note = nearest_psd(cov)
            repairs = (note,) if note else ()
        return cls(mu=mu, cov=cov, constraints=constraints or Constraints(), returns=returns.astype(float),
                   periods_per_year=ppy, risk_free_rate=risk_free_rate, repairs=repairs)


def _warn_below_minus_one(returns: pd.DataFrame, values: np.ndarray) -> None:
    """A :class:`~qpo.errors.DataWarning` when a return is below -1 (-100 %), which no asset's price
    gives: returns in percent (or another unit). The weights do not depend on the units (the
    optimizer rescales), so they are not refused; the expected return, volatility and CVaR are in
    the units given, 100 times a fraction's for percent."""
    import warnings

    from qpo.errors import DataWarning

    low = np.argwhere(values < -1.0)
    if len(low):
        i, j = low[0]
        day = returns.index[i]
        warnings.warn(f"returns hold {values[i, j]:.6g} ({returns.columns[j]} on "
                      f"{day.date() if hasattr(day, 'date') else day}), below -1 (-100 %), which no asset's simple "
                      "return is: in percent? The weights do not depend on the units; the expected return, "
                      "volatility and CVaR are in the units given (divide by 100 for fractions)",
                      DataWarning, stacklevel=3)


def _look_like_prices(values: np.ndarray) -> bool:
    """A frame of prices given as returns: most of its columns move like price levels
    (:func:`qpo._checks.price_like`, whatever their units)."""
    if values.shape[1] == 0:
        return False
    return bool(price_like(values).mean() > 0.5)


def nearest_psd(cov: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The nearest symmetric positive semi-definite matrix in Frobenius norm (symmetrize, clip the
    negative eigenvalues to 0) and a note of what changed (None when nothing did)."""
    c = cov.to_numpy(dtype=float)
    if not np.isfinite(c).all():
        raise ProblemError("cov holds NaN/inf; it cannot be repaired")
    sym = (c + c.T) / 2
    vals, vecs = np.linalg.eigh(sym)
    scale = max(np.abs(sym).max(), 1e-300)
    if vals.min() >= -1e-12 * scale and np.abs(c - c.T).max() <= 1e-12 * scale:
        return cov, None
    fixed = (vecs * np.clip(vals, 0.0, None)) @ vecs.T
    fixed = (fixed + fixed.T) / 2
    note = (f"covariance repaired to the nearest PSD matrix: {int((vals < 0).sum())} negative eigenvalue(s) "
            f"clipped (smallest {vals.min():.3g}); Frobenius change {np.linalg.norm(fixed - c):.3g}")
    return pd.DataFrame(fixed, index=cov.index, columns=cov.columns), note


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
        raise ProblemError(f"cov is not symmetric (max |C - C^T| = {asym:.3g}); pass repair_psd=True to use "
                           "the nearest symmetric PSD matrix")
    min_eig = float(np.linalg.eigvalsh((c + c.T) / 2).min())
    if min_eig < -1e-8 * scale:
        raise ProblemError(f"cov is not positive semi-definite (smallest eigenvalue {min_eig:.3g}); pass "
                           "repair_psd=True to use the nearest PSD matrix")
