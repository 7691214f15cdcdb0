"""Tail measures as pure functions of a return array: the one VaR/CVaR rule in qpo.

Every part of qpo that reports a historical VaR or CVaR (the risk report, the backtest, the
``min_cvar`` optimizer's diagnostics) calls these, so one portfolio gets one number.

VaR and CVaR are **positive losses** over one period at ``confidence`` c. With the returns
sorted ascending and ``k = (1 - c) n``: VaR = minus the ``ceil(k)``-th smallest return (the
``k``-th worst when ``k`` is whole); CVaR = minus the mean of the worst ``k`` returns, a
fractional ``k`` weighting the boundary return (Rockafellar-Uryasev), so CVaR >= VaR. With
``k < 1`` both are the worst return.

The arrays are taken as given (finite; one-dimensional, or one column per portfolio for
:func:`var_cvar_columns`): callers check their inputs. :func:`var_cvar` is :func:`var_cvar_columns`
on one column, so a portfolio gets the same number, to the last bit, alone or in a block.
"""
from __future__ import annotations

import math

import numpy as np

from qpo._checks import check_confidence
from qpo.errors import InvalidValueError


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


def var_cvar_columns(returns: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(VaR, CVaR) of every column of ``returns`` (periods x portfolios, equally likely periods) at
    ``confidence``, both positive losses: the module's rule, column by column.

    The tail is found by a partition along the periods (no full sort); its ``floor(k)`` worst
    returns are then summed worst first, one after the other, so each column's sum, and its numbers,
    depend on that column's values only (not on the other columns, nor on how the block is laid out)."""
    x = np.asarray(returns, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidValueError(f"returns must be 2-d (periods x portfolios) with at least one period, got shape "
                                f"{x.shape}")
    k, ik = tail_size(x.shape[0], confidence)
    part = np.partition(x, ik, axis=0)
    boundary = part[ik]
    var = -boundary
    if k < 1.0:  # fewer than one outcome in the tail: CVaR is the worst outcome, as VaR is
        return var, var.copy()
    worst = np.sort(part[:ik], axis=0)  # the floor(k) worst returns, worst first
    total = np.add.accumulate(worst, axis=0)[-1] if ik else np.zeros(x.shape[1])  # in that order
    return var, -(total + boundary * (k - ik)) / k


def var_cvar(returns: np.ndarray, confidence: float) -> tuple[float, float]:
    """(VaR, CVaR) of equally likely period ``returns`` at ``confidence``, both positive losses
    (:func:`var_cvar_columns` of the one column)."""
    var, cvar = var_cvar_columns(np.asarray(returns, dtype=float).reshape(-1, 1), confidence)
    return float(var[0]), float(cvar[0])


def var(returns: np.ndarray, confidence: float) -> float:
    """Historical VaR of ``returns`` at ``confidence`` (see the module's rule)."""
    return var_cvar(returns, confidence)[0]


def cvar(returns: np.ndarray, confidence: float) -> float:
    """Historical CVaR (expected shortfall) of ``returns`` at ``confidence``; >= VaR."""
    return var_cvar(returns, confidence)[1]


__all__ = ["cvar", "tail_size", "var", "var_cvar", "var_cvar_columns"]
