"""The binary model type: :class:`BinaryModel` (objective, native constraints, the penalized form
and its exports to dimod, Qiskit and Qiskit Optimization) and :class:`LinearConstraint`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from qpo._checks import positive
from qpo.errors import ProblemError
from qpo.quantum.formulation._qubo import linear_energies, qubo_energies, qubo_to_ising

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

    @property
    def objective_scale(self) -> float:
        """The size of the objective's coefficients (the largest of ``|Q|`` and ``|c|``): the unit
        that objective values are compared in (0.0 for a model without any)."""
        return float(max(np.abs(self.Q).max(initial=0.0), np.abs(self.c).max(initial=0.0)))

    @property
    def tie_tolerance(self) -> float:
        """How close two objective values are to be the same optimum: ``1e-9`` of
        :attr:`objective_scale`, so ties do not depend on the returns' units (an absolute ``1e-12``
        counted every selection optimal on returns x 1e-6, and the exact answer was the first
        feasible string)."""
        return 1e-9 * self.objective_scale

    def with_penalty(self, penalty: float) -> BinaryModel:
        p = positive("penalty", penalty)
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
        if self.kind == "selection" and self.cardinality == "at_most":  # 1/k each: fewer names leave cash
            info["cash_weight"] = max(0.0, 1.0 - float(w.sum()))
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
        P = self.penalty if penalty is None else positive("penalty", penalty)
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


def _qiskit_name(label: str) -> str:
    return label.replace("[", "_").replace("]", "").replace(" ", "_").replace(".", "_") or "x"
