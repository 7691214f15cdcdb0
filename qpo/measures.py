"""Tail measures as pure functions of a return array: the one VaR/CVaR rule in qpo.

Every part of qpo that reports a historical VaR or CVaR (the risk report, the backtest, the
``min_cvar`` optimizer's diagnostics) calls these, so one portfolio gets one number.

VaR and CVaR are **positive losses** over one period at ``confidence`` c. With the returns
sorted ascending and ``k = (1 - c) n``: VaR = minus the ``ceil(k)``-th smallest return (the
``k``-th worst when ``k`` is whole); CVaR = minus the mean of the worst ``k`` returns, a
fractional ``k`` weighting the boundary return (Rockafellar-Uryasev), so CVaR >= VaR. With
``k < 1`` both are the worst return.

The arrays are taken as given (finite, one-dimensional): callers check their inputs.
"""
from __future__ import annotations

import math

import numpy as np

from qpo._checks import check_confidence


def tail_size(n: int, confidence: float) -> tuple[float, int]:
    """``k = (1 - c) n`` and the 0-based index of the VaR order statistic, ``ceil(k) - 1``.

    ``k`` is snapped to a whole number when it is one up to rounding: (1 - 0.95) * 1000 is
    50.00000000000004 in floating point, and VaR is then the 50th worst return, not the 51st.
    """
    check_confidence(confidence)
    k = (1.0 - confidence) * n
    k_whole = round(k)
    if abs(k - k_whole) < 1e-9 * max(1.0, k):
        k = float(k_whole)
    return k, max(0, math.ceil(k) - 1)


def var_cvar(returns: np.ndarray, confidence: float) -> tuple[float, float]:
    """(VaR, CVaR) of equally likely period ``returns`` at ``confidence``, both positive losses."""
    s = np.sort(np.asarray(returns, dtype=float))
    k, ik = tail_size(s.size, confidence)
    var = float(-s[ik])
    if k < 1.0:
        return var, float(-s[0])
    return var, float(-(s[:ik].sum() + s[ik] * (k - ik)) / k)


def var(returns: np.ndarray, confidence: float) -> float:
    """Historical VaR of ``returns`` at ``confidence`` (see the module's rule)."""
    return var_cvar(returns, confidence)[0]


def cvar(returns: np.ndarray, confidence: float) -> float:
    """Historical CVaR (expected shortfall) of ``returns`` at ``confidence``; >= VaR."""
    return var_cvar(returns, confidence)[1]


__all__ = ["cvar", "tail_size", "var", "var_cvar"]
