"""Starting angles of the QAOA layers: the linear ramp, the TQA schedule and random starts."""
from __future__ import annotations

import math

import numpy as np

from qpo.errors import InvalidValueError, UnknownOptionError
from qpo.quantum.qaoa._inputs import INITS, _check_reps

#: (on the normalized cost, unit standard deviation, ramps with delta in 0.75..1.25 start lowest for p = 2..5)
LINEAR_RAMP_DELTA = 1.0
#: default time step of the TQA schedule (Sack & Serbyn, Quantum 5, 491 (2021): dt ~ 0.75 is near optimal)
TQA_DT = 0.75
#: ranges of the random initialization: gamma ~ U(0, RANDOM_GAMMA_MAX), beta ~ U(-RANDOM_BETA_MAX, RANDOM_BETA_MAX)
RANDOM_GAMMA_MAX = 1.5
RANDOM_BETA_MAX = math.pi / 4



def initial_parameters(reps: int, init: str = "linear_ramp", *, rng: np.random.Generator | int | None = None,
                       delta: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Starting angles ``(gammas, betas)`` for ``reps`` layers (for the normalized cost of :func:`run_qaoa`).

    * ``"linear_ramp"``: ``gamma_i = (i + 1/2)/p * delta``, ``beta_i = -(1 - (i + 1/2)/p) * delta``
      (``delta`` default :data:`LINEAR_RAMP_DELTA` = 1.0, the same for every ``p``: the ramp's angles
      stay in ``(0, delta)``).
    * ``"tqa"``: the trotterized quantum annealing schedule (Sack & Serbyn 2021) with time step
      ``dt = delta`` (default :data:`TQA_DT` = 0.75): total time ``T = p dt``, ``t_i = (i + 1/2) dt``,
      ``gamma_i = (t_i / T) dt``, ``beta_i = -(1 - t_i / T) dt``.
    * ``"random"``: ``gamma ~ U(0, RANDOM_GAMMA_MAX = 1.5)``, ``beta ~ U(-pi/4, pi/4)`` from ``rng``.

    The negative betas follow the sign convention of the module docstring (annealing to the minimum).
    """
    reps = _check_reps(reps)
    if init not in INITS:
        raise UnknownOptionError("QAOA initialization", init, INITS)
    if delta is not None:
        delta = float(delta)
        if not math.isfinite(delta) or delta <= 0:
            raise InvalidValueError(f"delta must be a positive finite number, got {delta!r}")
    frac = (np.arange(reps) + 0.5) / reps
    if init == "linear_ramp":
        d = LINEAR_RAMP_DELTA if delta is None else delta
        return frac * d, -(1.0 - frac) * d
    if init == "tqa":
        dt = TQA_DT if delta is None else delta
        return frac * dt, -(1.0 - frac) * dt
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return gen.uniform(0.0, RANDOM_GAMMA_MAX, reps), gen.uniform(-RANDOM_BETA_MAX, RANDOM_BETA_MAX, reps)
