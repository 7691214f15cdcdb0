"""Value at Risk and CVaR (expected shortfall) by method, at any confidence and horizon.

Conventions (with those of :mod:`qpo.risk.metrics`)
--------------------------------------------------
* VaR and CVaR are **positive losses** (a gain in the tail gives a negative number), of simple
  returns, as fractions of the portfolio's value at the start of the horizon.
* ``confidence`` c lies strictly in (0, 1); the tail is the worst ``1 - c`` of outcomes.
* ``horizon`` h is a whole number of periods. An h-period return is the **sum** of h one-period
  returns (the additive approximation that keeps risk contributions additive and makes the
  methods agree): historical VaR uses the overlapping h-period sums of the data; the parametric
  methods scale the one-period moments as iid sums do (mean x h, volatility x sqrt(h), skew /
  sqrt(h), excess kurtosis / h); Monte Carlo draws h-period sums.
* Methods (:data:`VAR_METHODS`):

  - ``historical``: order statistics of the data (VaR = minus the ``ceil(k)``-th worst of n, k =
    (1 - c) n; CVaR = minus the mean of the worst k, the boundary outcome weighted by the fraction
    of k);
  - ``normal``: ``VaR = -(m + s z)``, ``CVaR = -m + s phi(z) / (1 - c)`` with z = Phi^-1(1 - c),
    m and s the sample mean and standard deviation (ddof=1);
  - ``cornish_fisher``: the normal quantile corrected for the sample skew S and excess kurtosis K,
    ``z_cf = z + (z^2 - 1) S/6 + (z^3 - 3z) K/24 - (2z^3 - 5z) S^2/36``; its CVaR is the exact tail
    mean of that quantile function (closed form from the truncated normal moments). The expansion
    is only monotone for moderate S and K (roughly |S| < 1, K < 6); outside it the numbers are
    those of the formula, as every implementation of it gives;
  - ``monte_carlo_normal``: scenarios of the asset returns drawn from the multivariate normal with
    the sample mean and covariance (or given ones), seeded;
  - ``monte_carlo_bootstrap``: scenarios drawn, with replacement, from the historical rows of asset
    returns (keeps fat tails and cross-asset dependence), seeded.
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo import measures
from qpo._checks import check_confidence, whole
from qpo.errors import DataError, InvalidValueError, UnknownOptionError
from qpo.measures import tail_size
from qpo.risk.metrics import _values

VAR_METHODS = ("historical", "normal", "cornish_fisher", "monte_carlo_normal", "monte_carlo_bootstrap")
PARAMETRIC = ("historical", "normal", "cornish_fisher")


def _check_horizon(horizon) -> int:
    return whole("horizon", horizon, lo=1, hint="a number of periods of the data, e.g. 1 or 10 (days for daily data)")


def horizon_sums(returns, horizon: int) -> np.ndarray:
    """The overlapping ``horizon``-period sums of a return series (n - h + 1 of them)."""
    r = _values(returns)
    h = _check_horizon(horizon)
    if h > r.size:
        raise DataError(f"a {h}-period horizon needs at least {h} returns, got {r.size}")
    if h == 1:
        return r
    c = np.concatenate(([0.0], np.cumsum(r)))
    return c[h:] - c[:-h]


def tail_average(outcomes: np.ndarray, confidence: float) -> tuple[float, float]:
    """(VaR, CVaR) of equally likely ``outcomes`` (in any order), as positive losses:
    :func:`qpo.measures.var_cvar`, the one tail rule in qpo."""
    return measures.var_cvar(outcomes, confidence)


def _normal_z(confidence: float) -> tuple[float, float]:
    """The standard normal quantile at ``1 - confidence`` and its density (the standard library's:
    equal to scipy.stats.norm's to 1e-15, without importing scipy.stats, which a dashboard kernel
    would pay for at start)."""
    from statistics import NormalDist

    d = NormalDist()
    z = d.inv_cdf(1.0 - confidence)
    return z, d.pdf(z)


def cornish_fisher_z(z: float, skew: float, kurt: float) -> float:
    """The Cornish-Fisher quantile of a standardized distribution with ``skew`` and excess ``kurt``."""
    return z + (z * z - 1) * skew / 6 + (z ** 3 - 3 * z) * kurt / 24 - (2 * z ** 3 - 5 * z) * skew * skew / 36


def cornish_fisher_valid(skew: float, kurt: float, confidence: float) -> bool:
    """Whether the Cornish-Fisher quantile is increasing in z (checked on [-6, 6]): outside that
    domain (Maillard 2012; roughly |skew| > 1 or excess kurtosis > 6) the expansion is not a
    distribution's quantile function, and its VaR and CVaR should not be trusted."""
    z = np.linspace(-6.0, 6.0, 1201)
    slope = 1 + z * skew / 3 + (3 * z * z - 3) * kurt / 24 - (6 * z * z - 5) * skew * skew / 36
    return bool((slope > 0).all())


def parametric_var(mean: float, std: float, confidence: float = 0.95, horizon: int = 1, *, skew: float = 0.0,
                   kurt: float = 0.0, method: str = "normal") -> tuple[float, float]:
    """(VaR, CVaR) from one-period moments: ``method`` ``normal`` (skew and kurt unused) or
    ``cornish_fisher``. ``kurt`` is excess kurtosis."""
    check_confidence(confidence)
    h = _check_horizon(horizon)
    if method not in ("normal", "cornish_fisher"):
        raise UnknownOptionError("parametric VaR method", method, ("normal", "cornish_fisher"))
    m, s = mean * h, std * math.sqrt(h)
    a = 1.0 - confidence
    if s <= 1e-12 * max(abs(m), 1e-12):  # no dispersion: the loss is the mean's, whatever the shape
        return float(-m), float(-m)
    z, phi = _normal_z(confidence)
    if method == "normal":
        return float(-(m + s * z)), float(-m + s * phi / a)
    sk, ku = skew / math.sqrt(h), kurt / h
    # tail means of z, z^2 and z^3 below z (truncated standard normal moments)
    m1, m2, m3 = -phi / a, 1.0 - z * phi / a, -(z * z + 2.0) * phi / a
    tail_z = m1 + (m2 - 1) * sk / 6 + (m3 - 3 * m1) * ku / 24 - (2 * m3 - 5 * m1) * sk * sk / 36
    return float(-(m + s * cornish_fisher_z(z, sk, ku))), float(-(m + s * tail_z))


def var_cvar(returns, confidence: float = 0.95, horizon: int = 1, method: str = "historical") -> tuple[float, float]:
    """(VaR, CVaR) of a return series by ``historical``, ``normal`` or ``cornish_fisher`` (for
    the Monte Carlo methods, which need the assets, see :func:`monte_carlo_var`)."""
    check_confidence(confidence)
    if method not in PARAMETRIC:
        if method in VAR_METHODS:
            raise InvalidValueError(f"{method} simulates the assets: call qpo.risk.monte_carlo_var(weights, "
                                    "asset_returns, ...) (or risk_report, which does)")
        raise UnknownOptionError("VaR method", method, VAR_METHODS)
    r = _values(returns)
    if method == "historical":
        return tail_average(horizon_sums(r, horizon), confidence)
    if r.size < 3:
        raise DataError(f"parametric VaR needs at least 3 returns, got {r.size}")
    sr = pd.Series(r)
    return parametric_var(float(r.mean()), float(r.std(ddof=1)), confidence, horizon,
                          skew=float(sr.skew()), kurt=float(sr.kurt()), method=method)


def value_at_risk(returns, confidence: float = 0.95, horizon: int = 1, method: str = "historical") -> float:
    """VaR of a return series, a positive loss (see the module's conventions)."""
    return var_cvar(returns, confidence, horizon, method)[0]


def conditional_value_at_risk(returns, confidence: float = 0.95, horizon: int = 1,
                              method: str = "historical") -> float:
    """CVaR (expected shortfall) of a return series, a positive loss >= VaR."""
    return var_cvar(returns, confidence, horizon, method)[1]


@dataclass
class MonteCarloVaR:
    """Monte Carlo VaR/CVaR of a portfolio and each asset's Euler contribution to the CVaR
    (``component_cvar`` sums to ``cvar``): ``-w_i E[r_i | portfolio in the tail]``."""

    var: float
    cvar: float
    confidence: float
    horizon: int
    method: str
    n_scenarios: int
    seed: int
    component_cvar: pd.Series
    elapsed_s: float
    sampling: str = "conditional"


def _matrix_sqrt(cov: np.ndarray) -> np.ndarray:
    """A factor F with F F' = cov (Cholesky when positive definite, else the symmetric root)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
        if vals.min() < -1e-10 * max(1.0, abs(vals.max())):
            raise DataError(f"the covariance is not positive semi-definite (smallest eigenvalue {vals.min():.3g})") from None
        return vecs * np.sqrt(np.clip(vals, 0, None))


def _weighted_tail(values: np.ndarray, confidence: float, n_total: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Order of the worst outcomes among ``values`` (which hold the worst ``ceil(k)`` of ``n_total``)
    and their tail weights: 1 for the worst ``floor(k)``, the fraction for the boundary one."""
    k, ik = tail_size(n_total, confidence)
    order = np.argsort(values, kind="stable")[:ik + 1]
    weights = np.ones(ik + 1)
    weights[ik] = k - ik if k >= 1.0 else 1.0
    if k < 1.0:
        k = 1.0
    return order, weights, k


def monte_carlo_var(weights: pd.Series, returns: pd.DataFrame, *, confidence: float = 0.95, horizon: int = 1,
                    n_scenarios: int = 1_000_000, method: str = "normal", seed: int = 0,
                    mean: pd.Series | None = None, cov: pd.DataFrame | None = None,
                    sampling: str = "conditional", threads: int | None = None) -> MonteCarloVaR:
    """Monte Carlo VaR and CVaR of ``weights`` held on asset ``returns`` (simple returns as
    fractions: prices and percent returns are refused); see :func:`monte_carlo_var_of`."""
    from qpo.risk.metrics import check_simple_returns, portfolio_returns

    portfolio_returns(weights, returns)  # checks tickers and NaN
    check_simple_returns(returns[list(weights.index)], "returns")  # not prices, not percent
    return monte_carlo_var_of(weights, returns, confidence=confidence, horizon=horizon, n_scenarios=n_scenarios,
                              method=method, seed=seed, mean=mean, cov=cov, sampling=sampling, threads=threads)


def monte_carlo_var_of(weights: pd.Series, returns: pd.DataFrame, *, confidence: float = 0.95, horizon: int = 1,
                       n_scenarios: int = 1_000_000, method: str = "normal", seed: int = 0,
                       mean: pd.Series | None = None, cov: pd.DataFrame | None = None,
                       sampling: str = "conditional", threads: int | None = None) -> MonteCarloVaR:
    """Monte Carlo VaR and CVaR of the portfolio ``weights`` over ``n_scenarios`` simulated
    ``horizon``-period asset returns, seeded, with each asset's Euler contribution to the CVaR.

    ``method="normal"`` draws the assets from N(h mu, h Sigma), with mu and Sigma the sample moments
    of ``returns`` (ddof=1) unless ``mean``/``cov`` are given; ``method="bootstrap"`` sums h rows
    drawn with replacement from ``returns`` (vectorized as indices: one million scenarios of any
    width cost a few tens of milliseconds).

    ``sampling`` (normal method): every number reported depends on the asset scenarios only through
    the tail, so ``"conditional"`` (default) draws each scenario's portfolio return (one normal per
    scenario), picks the tail, and completes the tail scenarios' asset returns from their exact
    conditional distribution: the same distribution of results as a full draw, at a fraction of the
    cost. ``"full"`` draws the whole ``n_scenarios x n_assets`` matrix: float32 blocks of about
    10 million normals on ``threads`` threads (default: every core), one seeded stream per block,
    only the worst rows of each block kept.
    """
    from qpo.risk.metrics import portfolio_returns

    check_confidence(confidence)
    h = _check_horizon(horizon)
    if method not in ("normal", "bootstrap"):
        raise UnknownOptionError("Monte Carlo method", method, ("normal", "bootstrap"))
    if sampling not in ("conditional", "full"):
        raise UnknownOptionError("Monte Carlo sampling", sampling, ("conditional", "full"))
    if isinstance(n_scenarios, bool) or not isinstance(n_scenarios, (int, np.integer)) or n_scenarios < 100:
        raise InvalidValueError(f"n_scenarios must be a whole number >= 100, got {n_scenarios!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidValueError(f"seed must be a whole number >= 0 (the results depend on it alone), got {seed!r}")
    portfolio_returns(weights, returns)  # checks tickers and NaN
    tickers = list(weights.index)
    w = weights.to_numpy(dtype=float)
    R = returns[tickers].to_numpy(dtype=float)
    n_total = int(n_scenarios)
    k, ik = tail_size(n_total, confidence)
    keep = ik + 1
    t0 = time.perf_counter()
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        p_hist = R @ w
        idx = rng.integers(0, R.shape[0], size=(n_total, h)) if h > 1 else rng.integers(0, R.shape[0], n_total)
        p = p_hist[idx].sum(axis=1) if h > 1 else p_hist[idx]
        cand = np.argpartition(p, keep - 1)[:keep] if keep < n_total else np.arange(n_total)
        order, tw, kk = _weighted_tail(p[cand], confidence, n_total)
        rows = idx[cand[order]]
        counts = np.zeros(R.shape[0])
        np.add.at(counts, rows.ravel(), np.repeat(tw, h))
        tail_mean_assets = counts @ R / kk
        tail_p = p[cand[order]]
    else:
        mu = (mean.reindex(tickers).to_numpy(dtype=float) if mean is not None else R.mean(axis=0)) * h
        sigma = (cov.reindex(index=tickers, columns=tickers).to_numpy(dtype=float) if cov is not None
                 else np.cov(R, rowvar=False, ddof=1))
        if not np.isfinite(mu).all() or not np.isfinite(sigma).all():
            raise DataError("the mean and covariance must hold a finite number for every ticker of the weights "
                            f"({tickers[:10]}...); some are missing or NaN")
        F = _matrix_sqrt(np.atleast_2d(sigma)) * math.sqrt(h)  # asset scenario = mu + F z
        n = len(tickers)
        if sampling == "conditional":
            z = _conditional_tail(F.T @ w, n_total, keep, n, seed)
        else:
            z = _full_tail(F.T @ w, n_total, keep, n, seed, confidence, threads)
        tail_p_all = float(mu @ w) + z @ (F.T @ w)
        order, tw, kk = _weighted_tail(tail_p_all, confidence, n_total)
        tail_p = tail_p_all[order]
        tail_mean_assets = mu + ((tw @ z[order]) @ F.T) / kk
    var = float(-tail_p[ik]) if k >= 1.0 else float(-tail_p[0])
    component = -w * tail_mean_assets
    return MonteCarloVaR(var=var, cvar=float(component.sum()), confidence=float(confidence), horizon=h,
                         method=f"monte_carlo_{method}", n_scenarios=n_total, seed=int(seed),
                         component_cvar=pd.Series(component, index=tickers, name="component_cvar"),
                         elapsed_s=time.perf_counter() - t0, sampling=sampling if method == "normal" else "bootstrap")


def _conditional_tail(b: np.ndarray, n_total: int, keep: int, n: int, seed: int) -> np.ndarray:
    """Standard-normal scenario rows z (n_total of them, asset return = mu + F z) whose portfolio
    part ``b'z`` is among the ``keep`` lowest, drawn exactly: ``b'z`` depends on z only through
    ``u = b_hat'z ~ N(0, 1)``, so u is drawn for every scenario, the tail is chosen on it, and the
    tail rows are completed from their exact conditional law ``u b_hat + (I - b_hat b_hat') y``,
    y ~ N(0, I). The result has the same distribution as drawing every row in full."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n_total)
    norm_b = float(np.linalg.norm(b))
    cand = np.argpartition(u, keep - 1)[:keep] if keep < n_total and norm_b > 0 else np.arange(min(keep, n_total))
    y = rng.standard_normal((cand.size, n))
    if norm_b == 0:
        return y
    bh = b / norm_b
    y -= np.outer(y @ bh - u[cand], bh)
    return y


def _full_tail(b: np.ndarray, n_total: int, keep: int, n: int, seed: int, confidence: float,
               threads: int | None) -> np.ndarray:
    """The same tail rows as :func:`_conditional_tail` (in distribution) by drawing all
    ``n_total x n`` standard normals in float32 blocks of about 10 million numbers, on ``threads``
    threads (default: every core), one seeded stream per block."""
    b = b.astype(np.float32)
    rows_per_block = max(1000, 10_000_000 // max(n, 1))
    starts = list(range(0, n_total, rows_per_block))
    streams = np.random.SeedSequence(seed).spawn(len(starts))
    tail_share = 1.0 - confidence

    def block(i: int, everything: bool = False):
        m = min(rows_per_block, n_total - starts[i])
        z = np.random.default_rng(streams[i]).standard_normal((m, n), dtype=np.float32)
        pz = z @ b
        # a block keeps its worst 1.25 (1 - c) m + 64 rows: the global tail needs fewer from any
        # block unless the block is freakishly bad, which the check below catches (and redoes)
        quota = m if everything else min(m, math.ceil(1.25 * tail_share * m) + 64)
        sel = np.argpartition(pz, quota - 1)[:quota] if quota < m else np.arange(m)
        cut = float(pz[sel].max()) if quota < m else math.inf
        return pz[sel], z[sel], cut

    workers = threads or min(len(starts), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(block, range(len(starts))))
    else:
        parts = [block(i) for i in range(len(starts))]
    while True:
        pz = np.concatenate([x[0] for x in parts])
        threshold = float(np.partition(pz, keep - 1)[keep - 1]) if keep < pz.size else math.inf
        short = [i for i, x in enumerate(parts) if x[2] != math.inf and x[2] <= threshold]
        if not short:
            break
        for i in short:  # a block may hold tail rows it did not keep: draw it again, keeping all
            parts[i] = block(i, everything=True)
    z = np.concatenate([x[1] for x in parts])
    del parts
    cand = np.argpartition(pz, keep - 1)[:keep] if keep < pz.size else np.arange(pz.size)
    return z[cand].astype(float)
