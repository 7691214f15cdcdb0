"""Hierarchical risk parity (López de Prado, 2016).

1. cluster the assets on the correlation distance ``d_ij = sqrt((1 - rho_ij) / 2)`` (scipy
   ``linkage`` on the condensed distances, method ``linkage``);
2. order them by the dendrogram's leaves (quasi-diagonalization);
3. recursive bisection of that order: each half gets a share inversely proportional to its
   inverse-variance portfolio's variance.

This is the textbook algorithm (as in PyPortfolioOpt's ``HRPOpt``, which the tests compare with).
"""
from __future__ import annotations

import numpy as np

from qpo.errors import UnknownOptionError

LINKAGES = ("single", "complete", "average", "weighted", "centroid", "median", "ward")


def hrp_weights(cov: np.ndarray, linkage: str = "single") -> tuple[np.ndarray, list[int]]:
    """HRP weights (summing to 1) and the leaf order, from a covariance matrix."""
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    if linkage not in LINKAGES:
        raise UnknownOptionError("linkage", linkage, LINKAGES)
    n = cov.shape[0]
    if n == 1:
        return np.ones(1), [0]
    sd = np.sqrt(np.diag(cov))
    corr = np.clip(cov / np.outer(sd, sd), -1.0, 1.0)
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, None))
    np.fill_diagonal(dist, 0.0)
    link = hierarchy.linkage(squareform(dist, checks=False), linkage)
    order = [int(i) for i in hierarchy.to_tree(link, rd=False).pre_order()]
    w = np.ones(n)
    clusters = [order]
    while clusters:
        nxt = []
        for c in clusters:
            if len(c) < 2:
                continue
            half = len(c) // 2
            left, right = c[:half], c[half:]
            v_left, v_right = _cluster_variance(cov, left), _cluster_variance(cov, right)
            alpha = 1.0 - v_left / (v_left + v_right)
            w[left] *= alpha
            w[right] *= 1.0 - alpha
            nxt += [left, right]
        clusters = nxt
    return w, order


def _cluster_variance(cov: np.ndarray, idx: list[int]) -> float:
    sub = cov[np.ix_(idx, idx)]
    ivp = 1.0 / np.diag(sub)
    ivp /= ivp.sum()
    return float(ivp @ sub @ ivp)
