"""Energy tables and encodings shared by every binary model: the bounded integer encoding, the
QUBO and linear energy tables over all bit strings, the QUBO -> Ising map, bit strings as text."""
from __future__ import annotations

import math

import numpy as np


def bounded_coefficients(upper: int) -> np.ndarray:
    """Integer coefficients whose 0/1 combinations give exactly ``0..upper``: ``1, 2, ..., 2^(b-2)``
    and the remainder ``upper - (2^(b-1) - 1)`` (``b = floor(log2 upper) + 1`` bits; none for 0)."""
    upper = int(upper)
    if upper <= 0:
        return np.zeros(0, dtype=int)
    b = upper.bit_length()
    coefs = [1 << j for j in range(b - 1)]
    coefs.append(upper - ((1 << (b - 1)) - 1))
    return np.array(coefs, dtype=int)


def qubo_energies(Q: np.ndarray, c: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """``x'Qx + c'x + offset`` of all ``2**m`` bit strings, little-endian index (bit ``j`` = ``x_j``),
    in ``O(2^m)``: each variable doubles the table, adding its linear term and its couplings to the
    variables before it (the couplings' own table is built by the same doubling)."""
    Q = np.asarray(Q, dtype=float)
    c = np.asarray(c, dtype=float)
    m = len(c)
    E = np.array([float(offset)])
    for j in range(m):
        field_j = linear_energies(2.0 * Q[:j, j])  # sum_{i<j} 2 Q_ij x_i over the first j bits
        E = np.concatenate([E, E + (c[j] + Q[j, j]) + field_j])
    return E


def linear_energies(a: np.ndarray) -> np.ndarray:
    """``a'x`` of all ``2**len(a)`` bit strings (little-endian index)."""
    out = np.zeros(1)
    for v in np.asarray(a, dtype=float):
        out = np.concatenate([out, out + v])
    return out


def qubo_to_ising(Q: np.ndarray, c: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray, float]:
    """``x'Qx + c'x + offset`` with ``x = (1 - z)/2`` as ``h'z + sum_{i<j} J_ij z_i z_j + const``
    (``J`` upper triangular)."""
    Q = np.asarray(Q, dtype=float)
    c = np.asarray(c, dtype=float)
    Qs = (Q + Q.T) / 2
    d = np.diag(Qs).copy()
    off_diag = Qs - np.diag(d)
    # x_i x_j = (1 - z_i - z_j + z_i z_j)/4 ; x_i = (1 - z_i)/2 ; x_i^2 = x_i
    lin = c + d
    h = -lin / 2 - off_diag.sum(axis=1) / 2
    J = np.triu(off_diag * 2, 1) / 4 * 1.0
    const = offset + lin.sum() / 2 + off_diag.sum() / 4
    return h, J, float(const)

def bitstring(x) -> str:
    """Variables left to right in the model's order, '1' = set (not Qiskit's reversed order)."""
    return "".join("1" if v > 0.5 else "0" for v in np.asarray(x).reshape(-1))


def n_feasible_selection(n: int, k: int, cardinality: str = "exact") -> int:
    """How many bit strings a selection model accepts: ``C(n, k)``, or ``sum_{j<=k} C(n, j)``."""
    return math.comb(n, k) if cardinality == "exact" else sum(math.comb(n, j) for j in range(k + 1))
