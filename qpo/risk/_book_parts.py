"""The vectorized pieces of :func:`qpo.risk.book.book_risk`: each takes a block of portfolios at
once (weights ``W``, portfolios x tickers; portfolio returns ``P = R @ W.T``, dates x portfolios)
and gives one number per portfolio, the same number the one-portfolio functions of
:mod:`qpo.risk.metrics`, :mod:`qpo.risk.var` and :mod:`qpo.risk.stress` give (to rounding).

Private: only :mod:`qpo.risk.book` imports it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qpo.measures import var_cvar_columns


def historical_var_cvar(P: np.ndarray, confidence: float, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Historical (VaR, CVaR) of every column of ``P`` (:func:`qpo.risk.var.var_cvar` with
    ``method="historical"``): the overlapping ``horizon``-period sums, then the one tail rule,
    :func:`qpo.measures.var_cvar_columns`."""
    if horizon > 1:
        c = np.concatenate((np.zeros((1, P.shape[1])), np.cumsum(P, axis=0)), axis=0)
        P = c[horizon:] - c[:-horizon]
    return var_cvar_columns(P, confidence)


def parametric_var_cvar(mean: np.ndarray, std: np.ndarray, confidence: float, horizon: int, *,
                        skew: np.ndarray | None = None, kurt: np.ndarray | None = None,
                        method: str = "normal") -> tuple[np.ndarray, np.ndarray]:
    """:func:`qpo.risk.var.parametric_var` over arrays of one-period moments."""
    from qpo.risk.var import _normal_z, cornish_fisher_z

    m, s = mean * horizon, std * math.sqrt(horizon)
    a = 1.0 - confidence
    z, phi = _normal_z(confidence)
    flat = s <= 1e-12 * np.maximum(np.abs(m), 1e-12)
    if method == "normal":
        var, cvar = -(m + s * z), -m + s * phi / a
    else:
        assert skew is not None and kurt is not None
        sk, ku = skew / math.sqrt(horizon), kurt / horizon
        m1, m2, m3 = -phi / a, 1.0 - z * phi / a, -(z * z + 2.0) * phi / a
        tail_z = m1 + (m2 - 1) * sk / 6 + (m3 - 3 * m1) * ku / 24 - (2 * m3 - 5 * m1) * sk * sk / 36
        var, cvar = -(m + s * cornish_fisher_z(z, sk, ku)), -(m + s * tail_z)  # type: ignore[arg-type]  # elementwise
    return np.where(flat, -m, var), np.where(flat, -m, cvar)


def max_drawdown(P: np.ndarray) -> np.ndarray:
    """:func:`qpo.risk.metrics.max_drawdown` of every column: compounded wealth, its running peak
    (the starting wealth of 1 a peak too) by a cumulative max along the dates."""
    wealth = np.cumprod(1.0 + P, axis=0)
    peak = np.maximum(np.maximum.accumulate(wealth, axis=0), 1.0)
    return -(wealth / peak - 1.0).min(axis=0)


def betas(P: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Sample beta (ddof cancels) of each column of ``P`` on ``factor`` (one series, or one per
    column): ``sum((p - mean p)(f - mean f)) / sum((f - mean f)^2)``; NaN where f has no variance."""
    f = factor[:, None] if factor.ndim == 1 else factor
    fc = f - f.mean(axis=0)
    Pc = P - P.mean(axis=0)
    num = (Pc * fc).sum(axis=0) if factor.ndim == 2 else Pc.T @ fc[:, 0]
    den = (fc * fc).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def benchmark_beta(P: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`qpo.risk.metrics.benchmark_statistics`' beta, ``cov(r, b) / var(b)`` (ddof=1), of
    every column; NaN when the benchmark has no dispersion."""
    from qpo.risk.metrics import _no_dispersion

    var_b = float(np.var(b, ddof=1))
    if _no_dispersion(math.sqrt(var_b), float(b.mean())):
        return np.full(P.shape[1], np.nan)
    bc = b - b.mean()
    cov = (P - P.mean(axis=0)).T @ bc / (P.shape[0] - 1)
    return cov / var_b


def window_stress(W: np.ndarray, H: np.ndarray, hist: np.ndarray, hist_dates: pd.DatetimeIndex,
                  first: np.ndarray, last: np.ndarray, start, end) -> tuple[np.ndarray, np.ndarray]:
    """(portfolio return, coverage) of one historical window for every portfolio, as
    :func:`qpo.risk.stress.historical_stress` gives it on the history of the portfolio's own
    names with the dates on which none of them has a return dropped (the daily report's
    ``prices_to_returns(prices[held], dropna="all")``). ``first``/``last`` are each portfolio's
    first and last such date as positions in ``hist_dates``; NaN return where the data do not
    reach the window, or whose dates cannot resolve it (:func:`~qpo.risk.stress.window_alignment`)."""
    from qpo.risk.stress import window_alignment

    start, end = pd.Timestamp(start), pd.Timestamp(end)
    n_p = W.shape[0]
    lo, hi = int(hist_dates.searchsorted(start, side="right")), int(hist_dates.searchsorted(end, side="right"))
    rows = hist[lo:hi]
    ret, cov = np.full(n_p, np.nan), np.zeros(n_p)
    if rows.shape[0] == 0 or not window_alignment(hist_dates, start, end)[0]:
        return ret, cov
    with np.errstate(invalid="ignore"):
        covered = (hist_dates[np.minimum(first, len(hist_dates) - 1)] <= start) & \
                  (hist_dates[np.clip(last, 0, None)] >= end) & (first <= last)
    nan = np.isnan(rows)
    g = np.prod(np.where(nan, 1.0, 1.0 + rows), axis=0) - 1.0  # each name's compounded window return
    if nan.any():
        # a row counts for a portfolio when one of its names has a return that day; a name is left
        # out (no full history over the window) when it lacks a return on a row that counts
        held_f = H.T.astype(float)
        counts = (~nan).astype(float) @ held_f  # rows x portfolios: names with a return
        kept = counts > 0
        covered &= kept.any(axis=0)
        missing = (nan.T.astype(float) @ kept.astype(float)) > 0  # names x portfolios
        ok = (~missing.T) & H
    else:
        ok = H
    Wok = np.where(ok, W, 0.0)
    gross = np.abs(W).sum(axis=1)
    gross = np.where(gross > 0, gross, 1.0)
    r = Wok @ np.where(np.isfinite(g), g, 0.0)
    c = np.abs(Wok).sum(axis=1) / gross
    return np.where(covered, r, np.nan), np.where(covered, c, 0.0)


def largest_sector(W: np.ndarray, H: np.ndarray, onehot: np.ndarray, sectors: list[str],
                   tickers: list[str], groups: dict) -> list[str | None]:
    """The sector of each portfolio's largest net weight among its held names with a known sector
    (:func:`qpo.risk.stress.default_shocks`), None when it holds none. Near ties (within 1e-12)
    are settled by the very pandas computation :func:`default_shocks` makes, so the same sector is
    chosen when two sums agree to rounding."""
    if not sectors:
        return [None] * W.shape[0]
    S = W @ onehot
    present = (H.astype(float) @ onehot) > 0
    Sm = np.where(present, S, -np.inf)
    best = np.argmax(Sm, axis=1)
    top = Sm[np.arange(len(best)), best]
    second = np.where(np.arange(Sm.shape[1])[None, :] == best[:, None], -np.inf, Sm).max(axis=1)
    out: list[str | None] = [sectors[i] if np.isfinite(t) else None for i, t in zip(best, top, strict=True)]
    with np.errstate(invalid="ignore"):  # top - second is inf - inf where a portfolio holds one sector only
        close = np.flatnonzero(np.isfinite(top) & (top - second <= 1e-12 * np.maximum(1.0, np.abs(top))))
    for p in close:  # the few near ties: pandas' own sums and idxmax
        idx = np.flatnonzero(H[p])
        w = pd.Series(W[p, idx], index=[tickers[i] for i in idx])
        by = w.groupby([groups.get(t) for t in w.index]).sum()
        by = by[[s is not None for s in by.index]]
        out[p] = str(by.idxmax()) if len(by) else None
    return out
