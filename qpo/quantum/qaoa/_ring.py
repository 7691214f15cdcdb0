"""Dicke states and the XY ring: the start state and the edge order of the XY mixer (see the
package docstring), shared by the simulator and the Qiskit circuits."""
from __future__ import annotations

import math

import numpy as np

from qpo._checks import whole
from qpo.errors import InvalidValueError


def _popcount(n: int) -> np.ndarray:
    return np.bitwise_count(np.arange(1 << n, dtype=np.uint32)).astype(np.int8)


def dicke_state(n: int, k: int) -> np.ndarray:
    """The Dicke state ``|D^n_k>``: amplitude ``1/sqrt(C(n, k))`` on every weight-``k`` bitstring (float64)."""
    n = whole("n", n, 1)
    k = whole("k", k, 0, n, hint=f"0..n for n = {n}")
    v = (_popcount(n) == k).astype(float)
    v /= math.sqrt(math.comb(n, k))
    return v


def ring_edges(n: int) -> list[tuple[int, int]]:
    """The XY-ring edges in the order the mixer applies them: even, odd, then the closing edge ``(n-1, 0)``."""
    if n < 2:
        raise InvalidValueError(f"the XY ring needs n >= 2 qubits, got {n}")
    if n == 2:
        return [(0, 1)]
    even = [(j, j + 1) for j in range(0, n - 1, 2)]
    odd = [(j, j + 1) for j in range(1, n - 1, 2)]
    return even + odd + [(n - 1, 0)]
