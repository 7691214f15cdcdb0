"""Exact references for the binary models: brute force over every bit string (small models) and the
same problem as a mixed-integer program solved by SCIP through cvxpy (any size; proven optimal
unless a time limit stops it). They are the yardstick of every quantum answer and the engine's
fallback.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from qpo._checks import is_number, quote
from qpo.errors import InvalidValueError, SolverError
from qpo.quantum.formulation import BinaryModel

#: brute force enumerates 2**m strings (8 bytes each, twice): 20 bits take ~20 MB and well under a second;
#: the :class:`Landscape` it keeps on its answer is 10 bytes a string (objective, feasible, optimal): 10 MiB
#: at 20 bits, 2.5 KiB at 8
BRUTE_FORCE_MAX_VARIABLES = 20


@dataclass
class ExactSolution:
    """The exact optimum of a binary model.

    ``f_max`` (the worst feasible objective) and ``n_feasible`` come with brute force only: they
    normalize the approximation ratio ``(f_max - f) / (f_max - f*)``. ``optimal_indices`` are the
    little-endian indices of every optimal string (ties within the model's
    :attr:`~qpo.quantum.formulation.BinaryModel.tie_tolerance`). ``landscape`` is the table brute
    force enumerated (every string's objective and feasibility), kept so that judging an answer and
    drawing the landscape never enumerate it again (:func:`reference_landscape`); None from SCIP until
    an answer is judged against it.
    """

    x: np.ndarray
    objective: float
    method: str
    proven_optimal: bool
    wall_time_s: float
    f_max: float | None = None
    n_feasible: int | None = None
    optimal_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mip_gap: float | None = None
    status: str = "optimal"
    landscape: Landscape | None = field(default=None, repr=False, compare=False)

    @property
    def index(self) -> int:
        return int(bits_to_index(self.x))

    @property
    def solver_name(self) -> str:
        """The solver an answer of this reference reports: ``brute force`` or ``SCIP (cvxpy)``."""
        return "brute force" if self.method == "brute_force" else "SCIP (cvxpy)"


@dataclass
class Landscape:
    """Objective and feasibility of every decision bit string (little-endian index), for diagnostics."""

    objective: np.ndarray
    feasible: np.ndarray
    f_star: float
    f_max: float
    optimal: np.ndarray  # boolean mask of optimal strings


def bits_to_index(x) -> int:
    x = np.asarray(np.round(x), dtype=np.int64)
    return int((x << np.arange(len(x), dtype=np.int64)).sum())


def index_to_bits(index, m: int) -> np.ndarray:
    idx = np.asarray(index, dtype=np.int64)
    return ((idx[..., None] >> np.arange(m, dtype=np.int64)) & 1).astype(float)


def landscape(model: BinaryModel) -> Landscape:
    """Brute-force table of ``f`` and feasibility over every decision bit string."""
    m = model.n_variables
    if m > BRUTE_FORCE_MAX_VARIABLES + 4:
        raise InvalidValueError(f"a brute-force landscape of {m} bits needs 2^{m} entries; the limit is "
                                f"{BRUTE_FORCE_MAX_VARIABLES + 4} bits")
    f = model.objective_energies()
    ok = model.feasible_mask()
    if not ok.any():
        raise SolverError(f"no bit string satisfies the {model.kind} model's constraints")
    fs = f[ok]
    f_star, f_max = float(fs.min()), float(fs.max())
    tol = model.tie_tolerance
    return Landscape(objective=f, feasible=ok, f_star=f_star, f_max=f_max, optimal=ok & (f <= f_star + tol))


def brute_force(model: BinaryModel) -> ExactSolution:
    """Evaluate every bit string (``n_variables <= BRUTE_FORCE_MAX_VARIABLES``)."""
    m = model.n_variables
    if m > BRUTE_FORCE_MAX_VARIABLES:
        raise InvalidValueError(f"brute force is for at most {BRUTE_FORCE_MAX_VARIABLES} binary variables "
                                f"(2^{BRUTE_FORCE_MAX_VARIABLES} strings); this model has {m}: use method='scip'")
    t0 = time.perf_counter()
    land = landscape(model)
    opt = np.flatnonzero(land.optimal)
    x = index_to_bits(opt[0], m)
    return ExactSolution(x=x, objective=float(model.objective(x)), method="brute_force", proven_optimal=True,
                         wall_time_s=time.perf_counter() - t0, f_max=land.f_max, n_feasible=int(land.feasible.sum()),
                         optimal_indices=opt, landscape=land)


def reference_landscape(model: BinaryModel, reference: ExactSolution | None) -> Landscape | None:
    """The landscape of ``model`` held by ``reference`` (``model``'s exact answer): brute force's own
    table; for another reference of at most ``BRUTE_FORCE_MAX_VARIABLES`` bits (SCIP) it is enumerated
    here once and kept on ``reference``. None above that size (the landscape is not enumerated)."""
    if reference is not None and reference.landscape is not None:
        return reference.landscape
    if model.n_variables > BRUTE_FORCE_MAX_VARIABLES:
        return None
    land = landscape(model)
    if reference is not None:
        reference.landscape = land
    return land


def solve_scip(model: BinaryModel, time_limit: float | None = None) -> ExactSolution:
    """The model as a mixed-integer quadratic program (binary ``x``, native linear constraints,
    ``min ||L'x||^2 + c'x`` with ``Q = L L'``), solved by SCIP to a zero gap (or until ``time_limit``
    seconds, then ``proven_optimal`` is False and ``mip_gap`` says how far it may be)."""
    import cvxpy as cp

    if time_limit is not None and (not is_number(time_limit) or not float(time_limit) > 0):
        raise InvalidValueError(f"time_limit must be a positive number of seconds or None, got {quote(time_limit)}")
    t0 = time.perf_counter()
    m = model.n_variables
    x = cp.Variable(m, boolean=True)
    vals, vecs = np.linalg.eigh(model.Q)
    keep = vals > 1e-14 * max(vals.max(), 1e-300)
    L = vecs[:, keep] * np.sqrt(vals[keep])  # Q = L L' (PSD: risk_aversion/2 W'Sigma W)
    # Q's clipped negative eigenvalues are round-off; the objective is re-evaluated exactly below
    cons = []
    for con in model.constraints:
        expr = con.coefficients @ x
        cons.append(expr == con.rhs if con.sense == "==" else expr <= con.rhs)
    # the objective in units of its coefficients: SCIP's tolerances are absolute (1e-9), so an
    # objective of 1e-14 (returns x 1e-6) would be all ties to it; the argmin does not change
    unit = model.objective_scale or 1.0
    obj = cp.sum_squares(L.T @ x / np.sqrt(unit)) + (model.c / unit) @ x + model.offset / unit
    prob = cp.Problem(cp.Minimize(obj), cons)
    params = {"limits/gap": 0.0, "limits/absgap": 0.0}
    if time_limit is not None:
        params["limits/time"] = float(time_limit)
    try:
        prob.solve(solver="SCIP", scip_params=params)
    except cp.error.SolverError as e:
        raise SolverError(f"SCIP failed on the {model.kind} model ({m} binary variables): {e}") from None
    if x.value is None:
        raise SolverError(f"SCIP found no solution of the {model.kind} model (status {prob.status}"
                          + (f", time limit {time_limit} s" if time_limit else "") + ")")
    xv = np.round(x.value).astype(float)
    gap = _scip_gap(prob)
    proven = prob.status == "optimal" and (gap is None or gap <= 1e-9)
    return ExactSolution(x=xv, objective=float(model.objective(xv)), method="scip", proven_optimal=bool(proven),
                         wall_time_s=time.perf_counter() - t0, mip_gap=gap, status=str(prob.status),
                         optimal_indices=np.array([bits_to_index(xv)]) if m <= 62 else np.zeros(0, dtype=np.int64))


def _scip_gap(prob) -> float | None:
    extra = getattr(getattr(prob, "solver_stats", None), "extra_stats", None)
    scip = extra.get("model") if isinstance(extra, dict) else extra
    if scip is None:
        return None
    try:
        return float(scip.getGap())
    except Exception:  # noqa: BLE001 - a missing gap is reported as unknown (None), never as proof
        return None


def solve_exact(model: BinaryModel, method: str = "auto", time_limit: float | None = None) -> ExactSolution:
    """``method="auto"``: brute force up to ``BRUTE_FORCE_MAX_VARIABLES`` bits, SCIP above."""
    from qpo.errors import UnknownOptionError

    if method not in ("auto", "brute_force", "scip"):
        raise UnknownOptionError("exact method", method, ("auto", "brute_force", "scip"))
    if method == "brute_force" or (method == "auto" and model.n_variables <= BRUTE_FORCE_MAX_VARIABLES):
        return brute_force(model)
    return solve_scip(model, time_limit=time_limit)
