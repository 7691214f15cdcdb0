"""The Qiskit backends of :func:`run_qaoa`: energy (or sampled CVaR) evaluations of the circuit through
Qiskit's statevector primitives or qiskit-aer's."""
from __future__ import annotations

import numpy as np

from qpo.errors import InvalidValueError
from qpo.quantum.qaoa._circuits import _ising_operator, ising_diagonal, parameter_values, qaoa_circuit

#: samples the qiskit/aer backends draw per CVaR evaluation when ``shots`` is not given
CVAR_SAMPLER_SHOTS = 10_000



class _QiskitEvaluator:
    """Energy (or CVaR) evaluations through Qiskit primitives on :func:`qaoa_circuit`."""

    def __init__(self, backend: str, ising, diag: np.ndarray, reps: int, mixer: str, k: int | None,
                 cvar_alpha: float, shots: int | None, seed: int):
        op, offset = _ising_operator(ising)
        n = diag.size.bit_length() - 1
        if op.num_qubits != n:
            raise InvalidValueError(f"ising acts on {op.num_qubits} qubits but diag has 2**{n} entries")
        resid = diag - ising_diagonal(op)
        if offset is None:
            offset = float(resid.mean())
        tol = 1e-8 * max(1.0, float(np.abs(diag).max()))
        if np.abs(resid - offset).max() > tol:
            raise InvalidValueError(f"ising (+ offset) does not reproduce diag: largest difference "
                                    f"{float(np.abs(resid - offset).max()):.3g}; pass the model's own to_ising()")
        self.backend, self.op, self.offset, self.diag = backend, op, offset, diag
        self.cvar_alpha, self.seed = cvar_alpha, seed
        self.shots = shots if shots is not None else CVAR_SAMPLER_SHOTS
        self.circuit = qaoa_circuit(op, reps, mixer=mixer, k=k)
        self.measured = qaoa_circuit(op, reps, mixer=mixer, k=k, measure=True)
        if backend == "aer":
            from qiskit import transpile
            from qiskit_aer import AerSimulator
            from qiskit_aer.primitives import EstimatorV2, SamplerV2

            sim = AerSimulator(method="statevector")
            self.circuit = transpile(self.circuit, sim, optimization_level=0)
            self.measured = transpile(self.measured, sim, optimization_level=0)
            self.estimator = EstimatorV2(options={"backend_options": {"method": "statevector"},
                                                  "run_options": {"seed_simulator": seed}})
            self.sampler = SamplerV2(seed=seed, options={"backend_options": {"method": "statevector"}})
        else:
            from qiskit.primitives import StatevectorEstimator, StatevectorSampler

            self.estimator = StatevectorEstimator(seed=seed)
            self.sampler = StatevectorSampler(seed=seed)

    def energy(self, gammas: np.ndarray, betas: np.ndarray) -> float:
        """Expectation (or sampled CVaR) in the caller's units."""
        if self.cvar_alpha == 1.0:
            values = parameter_values(self.circuit, gammas, betas)
            res = self.estimator.run([(self.circuit, self.op, values)]).result()
            return float(np.real(res[0].data.evs)) + self.offset
        counts = self.sample(gammas, betas, self.shots)
        idx = np.array([int(b, 2) for b in counts])
        freq = np.array(list(counts.values()), dtype=float)
        e = self.diag[idx]
        order = np.argsort(e, kind="stable")
        e, freq = e[order], freq[order] / freq.sum()
        cum = np.cumsum(freq)
        i = min(int(np.searchsorted(cum, self.cvar_alpha)), e.size - 1)
        below = cum[i - 1] if i > 0 else 0.0
        return float((np.dot(freq[:i], e[:i]) + (self.cvar_alpha - below) * e[i]) / self.cvar_alpha)

    def sample(self, gammas: np.ndarray, betas: np.ndarray, shots: int) -> dict[str, int]:
        values = parameter_values(self.measured, gammas, betas)
        res = self.sampler.run([(self.measured, values)], shots=shots).result()
        return {key: int(v) for key, v in res[0].data.meas.get_counts().items()}

    def probabilities(self, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray | None:
        if self.backend != "qiskit":
            return None
        from qiskit.quantum_info import Statevector

        bound = self.circuit.assign_parameters(parameter_values(self.circuit, gammas, betas))
        return Statevector(bound).probabilities()
