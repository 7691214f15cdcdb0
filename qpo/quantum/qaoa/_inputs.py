"""The option names of QAOA and the checks of its inputs (cost diagonal, mixer, layers, CVaR level,
angles), shared by the simulator, the circuits and the run loop."""
from __future__ import annotations

import numpy as np

from qpo._checks import is_number, quote, whole
from qpo.errors import InvalidValueError, UnknownOptionError

MIXERS = ("x", "xy")
INITS = ("linear_ramp", "tqa", "random")
BACKENDS = ("numpy", "qiskit", "aer")
OPTIMIZERS = ("COBYLA", "Nelder-Mead", "L-BFGS-B", "Powell")
DICKE_PREPARATIONS = ("gates", "initialize")


def _check_diag(diag) -> tuple[np.ndarray, int]:
    try:
        d = np.asarray(diag, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"diag must be a 1-d array of real energies, one per bitstring: {exc}") from None
    if d.ndim != 1:
        raise InvalidValueError(f"diag must be 1-d (the energy of each of the 2**n bitstrings), got shape {d.shape}")
    size = d.shape[0]
    if size < 2 or size & (size - 1):
        raise InvalidValueError(f"diag must have length 2**n with n >= 1 (one energy per bitstring), got length "
                                f"{size}")
    bad = ~np.isfinite(d)
    if bad.any():
        raise InvalidValueError(f"diag holds {int(bad.sum())} NaN/inf energies (first at index "
                                f"{int(np.flatnonzero(bad)[0])}); every energy must be finite")
    return np.ascontiguousarray(d), size.bit_length() - 1


def _check_mixer(mixer: str, k, n: int) -> int | None:
    if mixer not in MIXERS:
        raise UnknownOptionError("mixer", mixer, MIXERS)
    if mixer == "x":
        if k is not None:
            _check_k(k, n)  # a k given with the X mixer is still checked, though unused
        return None
    if k is None:
        raise InvalidValueError(f"the xy mixer needs k, the Hamming weight of the Dicke start (1..{n - 1} for "
                                f"n = {n} qubits)")
    return _check_k(k, n)


def _check_k(k, n: int) -> int:
    return whole("k", k, 1, n - 1, hint=f"the Hamming weight of the Dicke start, 1..n-1 for n = {n} qubits")


def _check_reps(reps) -> int:
    return whole("reps (the number of QAOA layers p)", reps, 1)


def _check_alpha(cvar_alpha) -> float:
    if not is_number(cvar_alpha) or not 0.0 < float(cvar_alpha) <= 1.0:
        raise InvalidValueError(f"cvar_alpha must be in (0, 1] (1 = plain expectation), got {quote(cvar_alpha)}")
    return float(cvar_alpha)


def _check_angles(gammas, betas) -> tuple[np.ndarray, np.ndarray]:
    g = np.atleast_1d(np.asarray(gammas, dtype=float))
    b = np.atleast_1d(np.asarray(betas, dtype=float))
    if g.ndim != 1 or b.ndim != 1 or g.shape != b.shape or g.size == 0:
        raise InvalidValueError(f"gammas and betas must be 1-d of the same length p >= 1 (one per layer), got "
                                f"shapes {g.shape} and {b.shape}")
    if not (np.isfinite(g).all() and np.isfinite(b).all()):
        raise InvalidValueError("gammas and betas must be finite")
    return g, b
