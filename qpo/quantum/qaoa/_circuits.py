"""The QAOA ansatz as a Qiskit circuit: the Ising operator's checks and diagonal, the Dicke-state
preparation by gates, the cost and mixer layers, and binding the angles."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from qpo.errors import InvalidValueError, UnknownOptionError
from qpo.quantum.qaoa._inputs import DICKE_PREPARATIONS, _check_angles, _check_mixer, _check_reps
from qpo.quantum.qaoa._ring import dicke_state, ring_edges

if TYPE_CHECKING:  # pragma: no cover
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp


def _ising_operator(ising) -> tuple[SparsePauliOp, float | None]:
    """Accept a SparsePauliOp or a ``(SparsePauliOp, offset)`` pair (``model.to_ising()``)."""
    from qiskit.quantum_info import SparsePauliOp

    offset = None
    if isinstance(ising, tuple):
        if len(ising) != 2:
            raise InvalidValueError("ising must be a SparsePauliOp or a (SparsePauliOp, offset) pair")
        ising, offset = ising
        offset = float(offset)
    if not isinstance(ising, SparsePauliOp):
        raise InvalidValueError(f"ising must be a qiskit.quantum_info.SparsePauliOp (Z / ZZ terms), got "
                                f"{type(ising).__name__}")
    coeffs = np.asarray(ising.coeffs)
    if np.abs(coeffs.imag).max(initial=0.0) > 1e-12 * max(1.0, np.abs(coeffs).max(initial=0.0)):
        raise InvalidValueError("ising has complex coefficients; a cost Hamiltonian needs real ones")
    if ising.paulis.x.any():
        labels = [lab for lab, x in zip(ising.paulis.to_labels(), ising.paulis.x.any(axis=1), strict=True) if x]
        raise InvalidValueError(f"ising must hold only Z / ZZ terms (a diagonal cost); found X/Y in {labels[:5]}")
    weights = ising.paulis.z.sum(axis=1)
    if (weights > 2).any():
        raise InvalidValueError(f"ising must hold only Z / ZZ terms; found a term on {int(weights.max())} qubits")
    return ising, offset


def ising_diagonal(ising) -> np.ndarray:
    """Diagonal of a Z/ZZ ``SparsePauliOp`` (plus the offset of a ``(op, offset)`` pair): ``E[i] = <i|H|i>``,
    little-endian, with ``Z|1> = -|1>``."""
    op, offset = _ising_operator(ising)
    n = op.num_qubits
    idx = np.arange(1 << n, dtype=np.int64)
    bits = [((idx >> j) & 1).astype(np.int8) for j in range(n)]
    out = np.full(1 << n, 0.0 if offset is None else offset)
    for z, coeff in zip(op.paulis.z, np.asarray(op.coeffs).real, strict=True):
        qs = np.flatnonzero(z)
        if qs.size == 0:
            out += coeff
        elif qs.size == 1:
            out += coeff * (1 - 2 * bits[qs[0]])
        else:
            out += coeff * (1 - 2 * (bits[qs[0]] ^ bits[qs[1]]))
    return out


def _dicke_gates(qc: QuantumCircuit, n: int, k: int) -> None:
    """Deterministic Dicke-state preparation (Bärtschi & Eidenbenz, FCT 2019), O(n k) CX and CRY gates.

    Starts from ``|0...0 1...1>`` (qubits ``0..k-1`` set) and applies the split-and-cyclic-shift
    unitaries ``SCS_{m, min(k, m-1)}`` for ``m = n .. 2``; qubit ``m-1`` (0-based) plays the role of
    the paper's qubit ``m`` with the order of the qubits reversed.
    """
    # Paper: qubits 1..n, start |0^{n-k} 1^k> with the ones on qubits n-k+1..n. Map paper qubit q -> n - q.
    def phys(q: int) -> int:
        return n - q

    for q in range(n - k + 1, n + 1):
        qc.x(phys(q))

    def scs(m: int, kk: int) -> None:
        # gate (i) on paper qubits m-1, m
        a, b = phys(m - 1), phys(m)
        qc.cx(a, b)
        qc.cry(2 * math.acos(math.sqrt(1 / m)), b, a)
        qc.cx(a, b)
        # gates (ii)_l on paper qubits m-l, m-l+1, m for l = 2..kk
        for ll in range(2, kk + 1):
            a, c = phys(m - ll), phys(m - ll + 1)
            half = math.acos(math.sqrt(ll / m))  # CCRY(2 half) controlled by b, c on a, as CRY(half)^2
            qc.cx(a, b)
            qc.cry(half, c, a)   # (Barenco et al. 1995: C^2 U from controlled V, V^2 = U)
            qc.cx(b, c)
            qc.cry(-half, c, a)
            qc.cx(b, c)
            qc.cry(half, b, a)
            qc.cx(a, b)

    for m in range(n, k, -1):
        scs(m, k)
    for m in range(k, 1, -1):
        scs(m, m - 1)


def qaoa_circuit(ising, reps: int, *, mixer: str = "x", k: int | None = None, measure: bool = False,
                 dicke: str = "gates") -> QuantumCircuit:
    """The QAOA ansatz as a parameterized Qiskit circuit.

    ``ising``: a ``SparsePauliOp`` with only Z / ZZ terms (or ``model.to_ising()``'s ``(op, offset)``; the
    offset is a global phase and is dropped). Parameters ``gamma[0..p-1]``, ``beta[0..p-1]``
    (``ParameterVector``; bind them by name: Qiskit sorts ``beta`` before ``gamma``). Cost layer:
    ``RZ(2 c gamma)`` per ``c Z_j`` and ``RZZ(2 c gamma)`` per ``c Z_i Z_j`` (``exp(-i gamma H)`` up to a
    global phase); X mixer ``RX(2 beta)``; XY mixer ``XXPlusYYGate(2 beta)`` (``= exp(-i beta (XX+YY)/2)``)
    on the ring edges in parity order. The Dicke start is built from gates (``dicke="gates"``,
    O(n k) CX / CRY) or by ``initialize`` of the exact vector (``dicke="initialize"``, small n).
    ``measure=True`` appends ``measure_all``.
    """
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.circuit.library import XXPlusYYGate

    op, _ = _ising_operator(ising)
    reps = _check_reps(reps)
    n = op.num_qubits
    k = _check_mixer(mixer, k, n)
    if dicke not in DICKE_PREPARATIONS:
        raise UnknownOptionError("Dicke-state preparation", dicke, DICKE_PREPARATIONS)
    gamma, beta = ParameterVector("gamma", reps), ParameterVector("beta", reps)
    qc = QuantumCircuit(n, name=f"QAOA(p={reps}, mixer={mixer})")
    if k is None:  # the X mixer (_check_mixer gives the XY mixer its k)
        qc.h(range(n))
    elif dicke == "initialize":
        qc.initialize(dicke_state(n, k), range(n))
    else:
        _dicke_gates(qc, n, k)
    terms = [(np.flatnonzero(z), float(c)) for z, c in zip(op.paulis.z, np.asarray(op.coeffs).real, strict=True)]
    terms = [(qs, c) for qs, c in terms if qs.size and c != 0.0]
    edges = ring_edges(n) if mixer == "xy" else []
    for layer in range(reps):
        for qs, c in terms:
            if qs.size == 1:
                qc.rz(2 * c * gamma[layer], int(qs[0]))
            else:
                qc.rzz(2 * c * gamma[layer], int(qs[0]), int(qs[1]))
        if mixer == "x":
            qc.rx(2 * beta[layer], range(n))
        else:
            for i, j in edges:
                qc.append(XXPlusYYGate(2 * beta[layer]), [i, j])
    if measure:
        qc.measure_all()
    return qc


def bind_angles(circuit: QuantumCircuit, gammas, betas) -> QuantumCircuit:
    """``circuit`` (from :func:`qaoa_circuit`) with ``gamma[i] = gammas[i]``, ``beta[i] = betas[i]`` bound."""
    g, b = _check_angles(gammas, betas)
    return circuit.assign_parameters(parameter_values(circuit, g, b))


def parameter_values(circuit: QuantumCircuit, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Values in ``circuit.parameters`` order."""
    params = list(circuit.parameters)
    if len(params) != gammas.size + betas.size:
        raise InvalidValueError(f"the circuit has {len(params)} parameters; got {gammas.size} gammas and "
                                f"{betas.size} betas")
    out = np.empty(len(params))
    for i, prm in enumerate(params):
        vec = getattr(prm, "vector", None)
        if vec is None or vec.name not in ("gamma", "beta"):
            raise InvalidValueError(f"unexpected circuit parameter {prm.name!r}; expected gamma[i] / beta[i]")
        out[i] = (gammas if vec.name == "gamma" else betas)[prm.index]
    return out
