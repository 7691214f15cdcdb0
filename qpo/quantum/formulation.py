"""Binary formulations of asset selection, built from the shared :class:`~qpo.PortfolioProblem`.

Two problems, one type (:class:`BinaryModel`):

- **selection** (:func:`selection_model`): choose exactly (``cardinality="exact"``) or at most
  (``"at_most"``) ``k`` of the ``n`` assets; each chosen asset weighs ``1/k`` (with ``at_most`` the
  empty slots stay in cash). ``x_i = 1`` when asset ``i`` is chosen.
- **lots** (:func:`lots_model`): whole lots of each asset (``lot_size`` shares at ``price``) under a
  cash budget, ``sum_i price_i lot_size_i n_i <= cash``; ``n_i`` in ``0..max_lots_i`` is encoded in
  binary with the bounded integer coefficients ``1, 2, 4, ..., 2^(b-2), max_lots - (2^(b-1) - 1)``
  (every value in range has a code, none above it; ``model.encoding`` records them). The weight
  of asset ``i`` is the cash it takes, ``price_i lot_size_i n_i / cash``; the rest stays in cash.

Objective, in both: the annual mean-variance utility of the weights ``w = W x`` (the same convention
as ``optimize(..., "max_utility")``), to be minimized::

    f(x) = risk_aversion / 2 * w' Sigma w - mu' w = x' Q x + c' x + offset

with ``Sigma``, ``mu`` the problem's annualized moments (``Q = risk_aversion/2 W' Sigma W``,
``c = -W' mu``). For selection with exactly ``k`` this is the issue's ``q x' Sigma x - mu' x``
with ``q = risk_aversion / (2 k)`` and ``mu, Sigma`` divided by ``k``.

Constraints are kept native (``model.constraints``: linear, ``==`` or ``<=``) for the CQM, the
``QuadraticProgram`` and the exact solvers. Samplers that take an unconstrained model (QAOA with the
X mixer, annealing) get the **penalized** form ``E(x, s) = f(x) + P * sum_j r_j(x, s)^2`` where an
inequality gets slack bits ``s`` (bounded binary encoding, integer coefficients) and ``r_j`` is the
residual in the constraint's *unit* (one asset for the cardinality; the cheapest lot's cost for
the budget).

**Penalty default** (``penalty_rule``): ``P = 2 * D`` where ``D = max_i (|Q_ii + c_i| + 2 sum_{j!=i}
|Q_ij|)`` bounds how much one bit flip can change ``f``. For the cardinality (unit residuals) any
string that misses the constraint by ``r`` can reach a feasible one with ``|r|`` flips that raise
``f`` by at most ``|r| D < P r^2``: the penalized minimum is feasible and is the constrained one.
For the budget, an overspend smaller than one cheapest lot is penalized less than that; the engine
checks every answer and repairs or falls back (see :mod:`qpo.quantum.engine`). ``penalty=`` overrides
it; the value used is always recorded.

Bit order everywhere: variable ``j`` is bit ``j`` of a state's index (little-endian) and Qiskit's
qubit ``j``; the Ising form uses ``x_j = (1 - z_j) / 2``. Decision variables come first, slack
bits after them.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from qpo.errors import InvalidValueError, ProblemError, UnknownOptionError

CARDINALITIES = ("exact", "at_most")
KINDS = ("selection", "lots")


@dataclass(frozen=True, eq=False)
class LinearConstraint:
    """``coefficients @ x  (== or <=)  rhs`` over the decision bits; ``unit`` is the size of one
    step of the residual used by the penalty (one asset, one cheapest lot)."""

    name: str
    coefficients: np.ndarray
    sense: str
    rhs: float
    unit: float = 1.0

    def residual(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ self.coefficients - self.rhs

    def violation(self, x: np.ndarray) -> np.ndarray:
        r = self.residual(x)
        return np.abs(r) if self.sense == "==" else np.maximum(r, 0.0)


@dataclass(frozen=True, eq=False)
class BinaryModel:
    """A binary portfolio problem: objective ``f(x) = x'Qx + c'x + offset`` on decision bits, linear
    constraints, the penalty of its unconstrained form and how the bits map to weights."""

    kind: str
    tickers: tuple[str, ...]
    variables: tuple[str, ...]
    Q: np.ndarray
    c: np.ndarray
    offset: float
    weights_map: np.ndarray  # (n_assets, n_variables): w = weights_map @ x
    constraints: tuple[LinearConstraint, ...]
    penalty: float
    penalty_rule: str
    risk_aversion: float
    k: int | None = None
    cardinality: str | None = None
    slack: tuple[tuple[str, int, np.ndarray], ...] = ()  # (constraint name, slack unit index, coefficients)
    slack_unit: tuple[float, ...] = ()  # per slack group: value of one slack step in the constraint's units
    encoding: dict = field(default_factory=dict)
    periods_per_year: int = 252

    # -- sizes and labels ------------------------------------------------------------------------
    @property
    def n_assets(self) -> int:
        return len(self.tickers)

    @property
    def n_variables(self) -> int:
        return len(self.variables)

    @property
    def slack_variables(self) -> tuple[str, ...]:
        return tuple(f"slack_{name}[{b}]" for name, _, coefs in self.slack for b in range(len(coefs)))

    @property
    def n_qubits(self) -> int:
        return self.n_variables + len(self.slack_variables)

    def with_penalty(self, penalty: float) -> BinaryModel:
        p = _positive("penalty", penalty)
        return replace(self, penalty=p, penalty_rule=f"given: {p:.6g}")

    def describe(self) -> dict:
        """Flat parameters for logs and MLflow."""
        out = {"kind": self.kind, "n_assets": self.n_assets, "n_variables": self.n_variables,
               "n_qubits": self.n_qubits, "penalty": self.penalty, "penalty_rule": self.penalty_rule,
               "risk_aversion": self.risk_aversion}
        if self.kind == "selection":
            out.update(k=self.k, cardinality=self.cardinality)
        else:
            out.update(cash=self.encoding["cash"], slack_bits=len(self.slack_variables))
        return out

    # -- evaluation ------------------------------------------------------------------------------
    def _bits(self, x) -> np.ndarray:
        a = np.asarray(x, dtype=float)
        if a.shape[-1:] != (self.n_variables,) or a.ndim > 2:
            raise ProblemError(f"x must have {self.n_variables} bits (or be a (samples, {self.n_variables}) "
                               f"array), got shape {a.shape}")
        return a

    def objective(self, x):
        """``f(x)`` for one bit vector (a float) or a (samples, m) array (an array)."""
        a = self._bits(x)
        vals = np.einsum("...i,ij,...j->...", a, self.Q, a) + a @ self.c + self.offset
        return float(vals) if a.ndim == 1 else vals

    def violation(self, x):
        """The largest constraint violation (0 when feasible), in the constraints' own units."""
        a = self._bits(x)
        v = np.zeros(a.shape[:-1])
        for con in self.constraints:
            v = np.maximum(v, con.violation(a))
        return float(v) if a.ndim == 1 else v

    def is_feasible(self, x, tol: float = 1e-9):
        v = self.violation(x)
        scale = max((abs(c.rhs) for c in self.constraints), default=1.0) or 1.0
        ok = v <= tol * max(scale, 1.0)
        return bool(ok) if np.ndim(ok) == 0 else ok

    def decode(self, x) -> tuple[pd.Series, dict]:
        """Weights (by ticker) of a bit vector, and what it means: the selected tickers, and for
        lots the lot and share counts and the cash spent."""
        a = self._bits(x)
        if a.ndim != 1:
            raise ProblemError("decode takes one bit vector")
        a = np.round(a)
        w = pd.Series(self.weights_map @ a, index=list(self.tickers), name="weight")
        info: dict = {"selected": [t for t, v in w.items() if v > 0]}
        if self.kind == "lots":
            lots = {t: int(round(sum(coef * a[j] for j, coef in self.encoding["bits"][t]))) for t in self.tickers}
            info["lots"] = lots
            info["shares"] = {t: lots[t] * self.encoding["lot_size"][t] for t in self.tickers}
            spent = float(sum(self.encoding["lot_cost"][t] * lots[t] for t in self.tickers))
            info["spent"] = spent
            info["cash_left"] = self.encoding["cash"] - spent
        return w, info

    # -- the penalized (unconstrained) form ------------------------------------------------------
    def penalized_qubo(self, penalty: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """``(Qp, cp, offset)`` over decision then slack bits (``n_qubits``): ``E = z'Qp z + cp'z + offset``
        with ``Qp`` symmetric."""
        P = self.penalty if penalty is None else _positive("penalty", penalty)
        m, nq = self.n_variables, self.n_qubits
        Qp = np.zeros((nq, nq))
        Qp[:m, :m] = self.Q
        cp = np.zeros(nq)
        cp[:m] = self.c
        off = float(self.offset)
        slack_pos = m
        slack_of = {name: (i, coefs) for i, (name, _, coefs) in enumerate(self.slack)}
        for con in self.constraints:
            a = np.zeros(nq)
            a[:m] = con.coefficients
            if con.sense == "<=":
                i, coefs = slack_of[con.name]
                a[slack_pos:slack_pos + len(coefs)] = np.asarray(coefs, float) * self.slack_unit[i]
                slack_pos += len(coefs)
            a, b = a / con.unit, con.rhs / con.unit
            # P (a'z - b)^2 = P z'aa'z - 2 P b a'z + P b^2, and z_j^2 = z_j
            Qp += P * np.outer(a, a)
            cp += -2.0 * P * b * a
            off += P * b * b
        return Qp, cp, off

    def energies(self, penalty: float | None = None) -> np.ndarray:
        """The penalized energy of every one of the ``2**n_qubits`` bit strings (little-endian index)."""
        Qp, cp, off = self.penalized_qubo(penalty)
        return qubo_energies(Qp, cp, off)

    def objective_energies(self) -> np.ndarray:
        """``f`` of every decision bit string (``2**n_variables``, little-endian index)."""
        return qubo_energies(self.Q, self.c, self.offset)

    def feasible_mask(self) -> np.ndarray:
        """Feasibility of every decision bit string (``2**n_variables``, little-endian index)."""
        ok = np.ones(2 ** self.n_variables, dtype=bool)
        for con in self.constraints:
            lhs = linear_energies(con.coefficients)
            tol = 1e-9 * max(abs(con.rhs), 1.0)
            ok &= (np.abs(lhs - con.rhs) <= tol) if con.sense == "==" else (lhs <= con.rhs + tol)
        return ok

    # -- exports ---------------------------------------------------------------------------------
    def to_bqm(self, penalty: float | None = None):
        """The penalized form as a ``dimod.BinaryQuadraticModel`` over ``variables + slack_variables``;
        its energy equals :meth:`energies`."""
        import dimod

        Qp, cp, off = self.penalized_qubo(penalty)
        labels = list(self.variables) + list(self.slack_variables)
        nq = len(labels)
        iu = np.triu_indices(nq, 1)
        quad = 2.0 * Qp[iu]
        keep = quad != 0
        bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(
            cp + np.diag(Qp), (iu[0][keep], iu[1][keep], quad[keep]), off, dimod.BINARY)
        return bqm.relabel_variables(dict(enumerate(labels)), inplace=False)

    def to_cqm(self):
        """A ``dimod.ConstrainedQuadraticModel`` with the native constraints (no slack, no penalty)."""
        import dimod

        labels = list(self.variables)
        m = len(labels)
        iu = np.triu_indices(m, 1)
        quad = 2.0 * self.Q[iu]
        keep = quad != 0
        obj = dimod.BinaryQuadraticModel.from_numpy_vectors(
            self.c + np.diag(self.Q), (iu[0][keep], iu[1][keep], quad[keep]), self.offset, dimod.BINARY)
        obj.relabel_variables(dict(enumerate(labels)))
        cqm = dimod.ConstrainedQuadraticModel()
        cqm.set_objective(obj)
        for con in self.constraints:
            terms = [(labels[j], float(a)) for j, a in enumerate(con.coefficients) if a != 0]
            cqm.add_constraint_from_iterable(terms, con.sense, rhs=float(con.rhs), label=con.name)
        return cqm

    def to_quadratic_program(self):
        """A ``qiskit_optimization.QuadraticProgram`` (binary variables, native linear constraints)."""
        from qiskit_optimization import QuadraticProgram

        qp = QuadraticProgram(name=f"qpo-{self.kind}")
        names = [_qiskit_name(v) for v in self.variables]
        for v in names:
            qp.binary_var(v)
        m = len(names)
        quad = {}
        for i in range(m):
            if self.Q[i, i] != 0:
                quad[(names[i], names[i])] = float(self.Q[i, i])
            for j in range(i + 1, m):
                if self.Q[i, j] != 0:
                    quad[(names[i], names[j])] = float(2.0 * self.Q[i, j])
        qp.minimize(constant=float(self.offset), linear=dict(zip(names, map(float, self.c))), quadratic=quad)
        for con in self.constraints:
            lin = {names[j]: float(a) for j, a in enumerate(con.coefficients) if a != 0}
            qp.linear_constraint(linear=lin, sense=con.sense, rhs=float(con.rhs), name=con.name)
        return qp

    def to_ising(self, penalty: float | None = None):
        """``(H, offset)``: a ``SparsePauliOp`` of Z and ZZ terms with ``E(x) = <z|H|z> + offset``,
        ``x_j = (1 - z_j)/2``, qubit ``j`` = variable ``j`` (decision bits, then slack)."""
        from qiskit.quantum_info import SparsePauliOp

        Qp, cp, off = self.penalized_qubo(penalty)
        h, J, const = qubo_to_ising(Qp, cp, off)
        nq = len(h)
        terms: list[tuple[str, list[int], float]] = []
        for j in range(nq):
            if h[j] != 0:
                terms.append(("Z", [j], float(h[j])))
        for i in range(nq):
            for j in range(i + 1, nq):
                if J[i, j] != 0:
                    terms.append(("ZZ", [i, j], float(J[i, j])))
        if not terms:
            terms.append(("I", [0], 0.0))
        return SparsePauliOp.from_sparse_list(terms, num_qubits=nq), float(const)


# -- building ------------------------------------------------------------------------------------
def selection_model(problem, k: int | None = None, *, cardinality: str = "exact", risk_aversion: float = 1.0,
                    penalty: float | None = None) -> BinaryModel:
    """Choose ``k`` assets of ``problem`` (exactly, or at most with ``cardinality="at_most"``), each
    weighing ``1/k``, to minimize ``risk_aversion/2 w'Sigma w - mu'w`` (annual moments).

    ``k`` defaults to the problem's ``Constraints(max_assets=...)`` (then ``at_most``). The
    problem's other constraints are not binary: they are refused rather than silently ignored.
    """
    from qpo.optimization.problem import PortfolioProblem

    if not isinstance(problem, PortfolioProblem):
        raise TypeError(f"problem must be a qpo.PortfolioProblem, got {type(problem).__name__}")
    if cardinality not in CARDINALITIES:
        raise UnknownOptionError("cardinality", cardinality, CARDINALITIES)
    extra = dict(problem.constraints.describe())
    max_assets = extra.pop("max_assets", None)
    if k is None and max_assets is not None:
        k, cardinality = max_assets, "at_most"  # Constraints(max_assets=K) is "at most K"
    elif max_assets is not None and isinstance(k, numbers.Integral) and k > max_assets:
        raise ProblemError(f"k={k} assets breaks the problem's max_assets={max_assets}; choose k <= {max_assets} "
                           "or drop max_assets")
    _refuse_constraints("asset selection", extra)
    n = problem.n_assets
    if k is None:
        raise ProblemError(f"asset selection needs k, the number of assets to choose (1..{n}), e.g. k={max(1, n // 2)}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise InvalidValueError(f"k must be a whole number of assets in 1..{n}, got {k!r}")
    k = int(k)
    if not 1 <= k <= n:
        raise InvalidValueError(f"k must be between 1 and the number of assets ({n}), got {k}"
                                + ("; choosing no asset is not a portfolio" if k == 0 else ""))
    lam = _positive("risk_aversion", risk_aversion)
    W = np.eye(n) / k
    Q, c = _utility(problem, W, lam)
    ones = np.ones(n)
    if cardinality == "exact":
        cons = (LinearConstraint("cardinality", ones, "==", float(k)),)
        slack, slack_unit = (), ()
    else:
        cons = (LinearConstraint("cardinality", ones, "<=", float(k)),)
        slack, slack_unit = (("cardinality", 0, bounded_coefficients(k)),), (1.0,)
    P, rule = _penalty(Q, c, penalty)
    return BinaryModel(kind="selection", tickers=tuple(problem.tickers), variables=tuple(problem.tickers), Q=Q, c=c,
                       offset=0.0, weights_map=W, constraints=cons, penalty=P, penalty_rule=rule, risk_aversion=lam,
                       k=k, cardinality=cardinality, slack=slack, slack_unit=slack_unit,
                       encoding={"weight_per_asset": 1.0 / k}, periods_per_year=problem.periods_per_year)


def lots_model(problem, prices, cash: float, *, lot_size=1, max_lots=None, risk_aversion: float = 1.0,
               penalty: float | None = None, slack_resolution: float = 0.25) -> BinaryModel:
    """Whole lots under a cash budget: ``n_i`` lots of ``lot_size_i`` shares at ``prices_i``, with
    ``sum_i prices_i lot_size_i n_i <= cash``; the weights are the cash each asset takes over ``cash``.

    ``prices`` and ``lot_size`` / ``max_lots`` are one number or a mapping ticker -> value.
    ``max_lots`` defaults to what the cash buys of each asset alone. The penalized form's slack
    counts unspent cash in steps of ``slack_resolution`` cheapest lots (0.25: a quarter lot).
    """
    from qpo.optimization.problem import PortfolioProblem

    if not isinstance(problem, PortfolioProblem):
        raise TypeError(f"problem must be a qpo.PortfolioProblem, got {type(problem).__name__}")
    _refuse_constraints("integer lots", problem.constraints.describe())
    tickers = problem.tickers
    px = _per_ticker("prices", prices, tickers)
    if not np.isfinite(px).all() or (px <= 0).any():
        bad = [t for t, p in zip(tickers, px) if not (np.isfinite(p) and p > 0)]
        raise InvalidValueError(f"prices must be positive finite numbers; bad for {bad[:10]}")
    cash = _positive("cash", cash)
    lots = _per_ticker("lot_size", lot_size, tickers)
    if not np.isfinite(lots).all() or (lots < 1).any() or (lots != np.round(lots)).any():
        bad = [f"{t}={v:g}" for t, v in zip(tickers, lots) if not (np.isfinite(v) and v >= 1 and v == round(v))]
        raise InvalidValueError(f"lot_size must be a whole number of shares >= 1 (lots are integer); got {bad[:10]}")
    lots = lots.astype(int)
    cost = px * lots
    cheapest = float(cost.min())
    if cheapest > cash:
        t = tickers[int(cost.argmin())]
        raise InvalidValueError(f"cash {cash:,.2f} is below the cheapest lot ({t}: {lots[int(cost.argmin())]} shares "
                                f"at {px[int(cost.argmin())]:,.2f} = {cheapest:,.2f}); nothing can be bought")
    afford = np.floor(cash / cost + 1e-12).astype(int)
    if max_lots is None:
        maxl = afford
    else:
        ml = _per_ticker("max_lots", max_lots, tickers)
        if not np.isfinite(ml).all() or (ml < 0).any() or (ml != np.round(ml)).any():
            raise InvalidValueError(f"max_lots must be whole numbers >= 0, got {ml.tolist()[:10]}")
        maxl = np.minimum(ml.astype(int), afford)
    if maxl.sum() == 0:
        raise InvalidValueError("max_lots allows no lot of any asset within the cash")
    resolution = _positive("slack_resolution", slack_resolution)
    variables, bits, cols = [], {}, []
    for i, t in enumerate(tickers):
        bits[t] = []
        for b, coef in enumerate(bounded_coefficients(int(maxl[i]))):
            bits[t].append((len(variables), int(coef)))
            variables.append(f"{t}[{b}]")
            cols.append((i, int(coef)))
    m = len(variables)
    W = np.zeros((len(tickers), m))
    budget = np.zeros(m)
    for j, (i, coef) in enumerate(cols):
        W[i, j] = cost[i] * coef / cash
        budget[j] = cost[i] * coef
    lam = _positive("risk_aversion", risk_aversion)
    Q, c = _utility(problem, W, lam)
    slack_step = cheapest * resolution
    slack_steps = int(np.floor(cash / slack_step + 1e-12))
    cons = (LinearConstraint("budget", budget, "<=", cash, unit=cheapest),)
    P, rule = _penalty(Q, c, penalty, unit_note="one cheapest lot")
    encoding = {"cash": cash, "price": dict(zip(tickers, px.tolist())), "lot_size": dict(zip(tickers, lots.tolist())),
                "lot_cost": dict(zip(tickers, cost.tolist())), "max_lots": dict(zip(tickers, maxl.tolist())),
                "bits": bits, "coefficients": {t: [coef for _, coef in bits[t]] for t in tickers},
                "slack_step": slack_step, "slack_steps": slack_steps,
                "note": ("lots n_i = sum_b coef_b x_(i,b), bounded binary encoding with integer coefficients; "
                         f"slack = unspent cash in steps of {slack_step:.6g} ({resolution:g} cheapest lot), "
                         f"0..{slack_steps} steps")}
    return BinaryModel(kind="lots", tickers=tuple(tickers), variables=tuple(variables), Q=Q, c=c, offset=0.0,
                       weights_map=W, constraints=cons, penalty=P, penalty_rule=rule, risk_aversion=lam,
                       slack=(("budget", 0, bounded_coefficients(slack_steps)),), slack_unit=(slack_step,),
                       encoding=encoding, periods_per_year=problem.periods_per_year)


# -- helpers -------------------------------------------------------------------------------------
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


def _utility(problem, W: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    S = problem.annual_cov()
    mu = problem.annual_mu()
    Q = lam / 2.0 * W.T @ S @ W
    Q = (Q + Q.T) / 2
    return Q, -(W.T @ mu)


def _penalty(Q: np.ndarray, c: np.ndarray, penalty, unit_note: str = "one asset") -> tuple[float, str]:
    if penalty is not None:
        p = _positive("penalty", penalty)
        return p, f"given: {p:.6g}"
    off = np.abs(Q - np.diag(np.diag(Q))).sum(axis=1)
    D = float(np.max(np.abs(np.diag(Q) + c) + 2.0 * off)) if len(c) else 1.0
    D = D if D > 0 else 1.0
    return 2.0 * D, (f"default 2 x D = {2.0 * D:.6g}, D = {D:.6g} the largest change of the objective one bit flip "
                     f"can make; residuals in units of {unit_note}")


def _positive(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
        raise InvalidValueError(f"{name} must be a positive finite number, got {v!r}")
    return float(v)


def _per_ticker(name: str, v, tickers: list[str]) -> np.ndarray:
    if isinstance(v, (Mapping, pd.Series)):
        d = dict(v)
        missing = [t for t in tickers if t not in d]
        if missing:
            raise ProblemError(f"{name} has no value for {missing[:10]}; give one for every asset")
        vals = [d[t] for t in tickers]
    elif isinstance(v, numbers.Real) and not isinstance(v, bool):
        vals = [v] * len(tickers)
    else:
        arr = np.asarray(v, dtype=object).ravel()
        if arr.size != len(tickers):
            raise ProblemError(f"{name} has {arr.size} values for {len(tickers)} assets")
        vals = list(arr)
    out = []
    for t, x in zip(tickers, vals):
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise InvalidValueError(f"{name}[{t!r}] must be a number, got {x!r}")
        out.append(float(x))
    return np.array(out)


def _refuse_constraints(what: str, extra: dict) -> None:
    if extra:
        raise ProblemError(f"{what} encodes only its own binary constraints; the problem also sets "
                           f"{sorted(extra)}, which it cannot honour. Drop them (use Constraints()) or solve "
                           "the continuous problem with method='classical'")


def _qiskit_name(label: str) -> str:
    return label.replace("[", "_").replace("]", "").replace(" ", "_").replace(".", "_") or "x"


def bitstring(x) -> str:
    """Variables left to right in the model's order, '1' = set (not Qiskit's reversed order)."""
    return "".join("1" if v > 0.5 else "0" for v in np.asarray(x).reshape(-1))


def package_versions(packages) -> dict[str, str | None]:
    """Installed versions of ``packages`` (None when absent), for the record of a run."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def n_feasible_selection(n: int, k: int, cardinality: str = "exact") -> int:
    """How many bit strings a selection model accepts: ``C(n, k)``, or ``sum_{j<=k} C(n, j)``."""
    return math.comb(n, k) if cardinality == "exact" else sum(math.comb(n, j) for j in range(k + 1))
