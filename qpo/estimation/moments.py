"""Expected-return and covariance estimators.

Every estimator maps a returns frame (periods x tickers, simple returns, no NaN) to *per-period*
moments: a ``Series`` of means or a ``DataFrame`` covariance, indexed by ticker. Problems
annualize them with their ``periods_per_year``.

Conventions (the same as PyPortfolioOpt's, which the tests check against):

* EWMA weights are pandas' ``ewm(span=...)`` weights: ``w_t ∝ (1 - a)^(T - t)``, ``a = 2 / (span + 1)``;
  the EWMA covariance averages the outer products of returns demeaned by their *sample* mean.
* Ledoit-Wolf and OAS are scikit-learn's shrinkage estimators (maximum-likelihood, ``ddof=0``,
  scale); the sample covariance uses ``ddof=1``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError


def _ewm_weights(n: int, span: float) -> np.ndarray:
    alpha = 2.0 / (span + 1.0)
    return (1.0 - alpha) ** np.arange(n - 1, -1, -1)


def _check_span(span) -> None:
    if isinstance(span, bool) or not isinstance(span, numbers.Real) or not float(span) >= 1:
        raise InvalidValueError(f"span must be a number of periods >= 1 (e.g. 180), got {span!r}")


class MeanEstimator:
    """Base of the expected-return estimators: ``estimate(returns) -> Series`` (per period)."""

    name = "mean"

    def estimate(self, returns: pd.DataFrame) -> pd.Series:  # pragma: no cover - abstract
        raise NotImplementedError


class CovarianceEstimator:
    """Base of the covariance estimators: ``estimate(returns) -> DataFrame`` (per period)."""

    name = "covariance"

    def estimate(self, returns: pd.DataFrame) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class HistoricalMean(MeanEstimator):
    """The sample mean of the returns."""

    name = "historical"

    def estimate(self, returns: pd.DataFrame) -> pd.Series:
        return returns.mean()


@dataclass(frozen=True)
class EWMAMean(MeanEstimator):
    """Exponentially weighted mean; recent periods count more (``span`` in periods)."""

    span: float = 180
    name = "ewma"

    def __post_init__(self):
        _check_span(self.span)

    def estimate(self, returns: pd.DataFrame) -> pd.Series:
        w = _ewm_weights(len(returns), self.span)
        return pd.Series(w @ returns.to_numpy() / w.sum(), index=returns.columns)


@dataclass(frozen=True)
class SampleCovariance(CovarianceEstimator):
    """The unbiased sample covariance (``ddof=1``)."""

    name = "sample"

    def estimate(self, returns: pd.DataFrame) -> pd.DataFrame:
        return returns.cov()


@dataclass(frozen=True)
class EWMACovariance(CovarianceEstimator):
    """Exponentially weighted covariance (``span`` in periods), of returns demeaned by their
    sample mean."""

    span: float = 180
    name = "ewma"

    def __post_init__(self):
        _check_span(self.span)

    def estimate(self, returns: pd.DataFrame) -> pd.DataFrame:
        x = returns.to_numpy()
        d = x - x.mean(axis=0)
        w = _ewm_weights(len(x), self.span)
        cov = (d * w[:, None]).T @ d / w.sum()
        return pd.DataFrame((cov + cov.T) / 2, index=returns.columns, columns=returns.columns)


def _sklearn_covariance(estimator, returns: pd.DataFrame) -> pd.DataFrame:
    cov = estimator.fit(returns.to_numpy()).covariance_
    return pd.DataFrame(cov, index=returns.columns, columns=returns.columns)


@dataclass(frozen=True)
class LedoitWolf(CovarianceEstimator):
    """Ledoit-Wolf shrinkage toward a scaled identity (scikit-learn)."""

    name = "ledoit_wolf"

    def estimate(self, returns: pd.DataFrame) -> pd.DataFrame:
        from sklearn.covariance import LedoitWolf as _LW

        return _sklearn_covariance(_LW(store_precision=False), returns)  # the unused inverse costs 0.1 s at 450 names


@dataclass(frozen=True)
class OAS(CovarianceEstimator):
    """Oracle approximating shrinkage (Chen et al.; scikit-learn)."""

    name = "oas"

    def estimate(self, returns: pd.DataFrame) -> pd.DataFrame:
        from sklearn.covariance import OAS as _OAS

        return _sklearn_covariance(_OAS(store_precision=False), returns)


@dataclass(frozen=True)
class FactorModelCovariance(CovarianceEstimator):
    """Factor-model covariance ``B Sigma_f B' + D`` (``D`` diagonal: the residual variances).

    With ``factors`` (a DataFrame of factor returns, periods x factors, on the returns' dates),
    the loadings ``B`` are each asset's least-squares regression on the factors with an
    intercept, ``Sigma_f`` is the factors' sample covariance and ``D`` the residuals' variances
    (``ddof = 1 + number of factors``). Without ``factors`` it is the statistical (PCA) model:
    the sample covariance's ``n_factors`` leading eigenpairs, plus the diagonal of what they leave.
    """

    n_factors: int = 3
    factors: pd.DataFrame | None = None
    name = "factor"

    def __post_init__(self):
        if self.factors is None and (isinstance(self.n_factors, bool) or not isinstance(self.n_factors, numbers.Integral)
                                     or self.n_factors < 1):
            raise InvalidValueError(f"n_factors must be a whole number >= 1, got {self.n_factors!r}")
        if self.factors is not None and not isinstance(self.factors, pd.DataFrame):
            raise InvalidValueError("factors must be a DataFrame of factor returns (periods x factors)")

    def estimate(self, returns: pd.DataFrame) -> pd.DataFrame:
        x = returns.to_numpy(dtype=float)
        T, n = x.shape
        if self.factors is None:
            k = int(self.n_factors)
            if k >= n:
                raise InvalidValueError(f"n_factors {k} must be below the number of assets {n}")
            S = np.cov(x, rowvar=False, ddof=1)
            vals, vecs = np.linalg.eigh(S)
            V, L = vecs[:, -k:], vals[-k:]
            common = (V * L) @ V.T
            resid = np.clip(np.diag(S) - np.diag(common), 0.0, None)
        else:
            missing = returns.index.difference(self.factors.index)
            if len(missing):
                raise InvalidValueError(f"factors have no rows for {len(missing)} of the returns' dates "
                                        f"(first: {missing[0]}); give factor returns on every return date")
            f = self.factors.loc[returns.index].to_numpy(dtype=float)
            if not np.isfinite(f).all():
                raise InvalidValueError("factors hold NaN/inf on the returns' dates")
            k = f.shape[1]
            if T <= k + 1:
                raise InvalidValueError(f"{T} periods cannot fit {k} factors with an intercept")
            X = np.column_stack([np.ones(T), f])
            coef, *_ = np.linalg.lstsq(X, x, rcond=None)
            B = coef[1:].T  # n x k
            e = x - X @ coef
            resid = (e ** 2).sum(axis=0) / (T - k - 1)
            Sf = np.atleast_2d(np.cov(f, rowvar=False, ddof=1))
            common = B @ Sf @ B.T
        cov = common + np.diag(resid)
        return pd.DataFrame((cov + cov.T) / 2, index=returns.columns, columns=returns.columns)


MEAN_ESTIMATORS: dict[str, type[MeanEstimator]] = {"historical": HistoricalMean, "ewma": EWMAMean}
COVARIANCE_ESTIMATORS: dict[str, type[CovarianceEstimator]] = {
    "sample": SampleCovariance, "ewma": EWMACovariance, "ledoit_wolf": LedoitWolf, "oas": OAS,
    "factor": FactorModelCovariance}


def mean_estimator(spec: str | MeanEstimator) -> MeanEstimator:
    """An estimator from a name (its defaults) or the estimator itself. ``"forecast"`` and
    ``models:/`` URIs name models of the model registry, which qpo.estimation does not read: they
    are an error that says what to pass (``qpo.tracking.forecast_mean()`` resolves them)."""
    if isinstance(spec, MeanEstimator):
        return spec
    if isinstance(spec, str) and spec in MEAN_ESTIMATORS:
        return MEAN_ESTIMATORS[spec]()
    if isinstance(spec, str) and (spec == "forecast" or spec.startswith("models:/")):
        uri = spec if spec.startswith("models:/") else "models:/qpo-return-forecaster@champion"
        what = "the model registry's champion" if spec == "forecast" else "a model of the model registry"
        raise ProblemError(f"mean={spec!r} names {what}, which the optimizer does not load (it reads no registry): "
                           f"resolve it first and pass the estimator, mean=qpo.forecast_mean({uri!r}) "
                           f"or mean=qpo.ForecastMean(qpo.load_forecaster({uri!r}))")
    raise UnknownOptionError("mean estimator", spec, list(MEAN_ESTIMATORS) + ["<a qpo.estimation.MeanEstimator>"])


def covariance_estimator(spec: str | CovarianceEstimator) -> CovarianceEstimator:
    """An estimator from a name (its defaults) or the estimator itself."""
    if isinstance(spec, CovarianceEstimator):
        return spec
    if isinstance(spec, str) and spec in COVARIANCE_ESTIMATORS:
        return COVARIANCE_ESTIMATORS[spec]()
    raise UnknownOptionError("covariance estimator", spec,
                             list(COVARIANCE_ESTIMATORS) + ["<a qpo.estimation.CovarianceEstimator>"])
