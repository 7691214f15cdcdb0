"""The quantum-vs-classical study behind ``notebooks/04_quantum_vs_classical.ipynb``: one binary
selection problem solved by the requested method (QAOA, annealing, ...) next to its exact optimum,
with the sample distribution, the energy landscape and the diagnostics.

The study reads the typed parts of the result (``result.binary``: the model, the exact reference, the
quality, the distribution); it never rebuilds the model or solves the exact reference again."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo._checks import is_number
from qpo.errors import ProblemError
from qpo.optimization import OptimizationResult, PortfolioProblem, optimize
from qpo.optimization.engine import portfolio_statistics
from qpo.quantum import BinaryModel, BinaryOutcome, DistributionKind
from qpo.quantum.formulation import bitstring

#: diagnostics that are numbers and go to MLflow as metrics
METRIC_KEYS = ("objective_value", "f_star", "gap", "approximation_ratio", "expected_approximation_ratio",
               "p_optimum", "p_feasible", "uniform_p_optimum", "tts99_samples", "tts99_s", "evaluations",
               "wall_time_s", "penalty", "energy", "qubits", "n_feasible", "f_max", "exact_wall_time_s",
               "p_feasible_reads", "num_reads", "reps", "cvar_alpha", "p_feasible_raw", "p_optimum_raw",
               "expected_approximation_ratio_raw")


@dataclass
class QuantumStudy:
    """A binary problem, the requested method's result and the exact reference's answer (None when the
    exact solver found nothing in time: ``result.binary.reference_error`` says why)."""

    problem: PortfolioProblem
    result: OptimizationResult
    exact: OptimizationResult | None
    model: BinaryModel  # the BinaryModel both answers are of

    @classmethod
    def from_result(cls, problem: PortfolioProblem, result: OptimizationResult) -> QuantumStudy:
        """The study of a binary ``result`` of ``problem``, from the parts the result holds (its model and
        exact reference): nothing is built or solved again."""
        outcome = _outcome(result)
        return cls(problem=problem, result=result, exact=_exact_result(problem, result, outcome), model=outcome.model)

    @property
    def outcome(self) -> BinaryOutcome:
        """The typed parts of the requested method's answer."""
        return _outcome(self.result)

    def _fractions(self) -> dict[str, float]:
        """The stored samples as probabilities: exact ones as they are; counts over all samples."""
        dist = self.outcome.distribution
        return {} if dist is None else dist.probabilities()

    def _names(self, bits: str) -> str:
        x = np.array([c == "1" for c in bits], float)
        info = self.model.decode(x)[1]
        if "lots" in info:
            return ", ".join(f"{t} x{n}" for t, n in info["lots"].items() if n) or "(nothing)"
        return ", ".join(info["selected"]) or "(nothing)"

    def comparison(self) -> pd.DataFrame:
        """The two portfolios: objective, return, volatility, Sharpe, chosen names, solver, time."""
        rows = {}
        answers = [(f"requested ({self.result.method}): {self.result.solver}", self.result)]
        if self.exact is not None:
            answers.append((f"reference (exact): {self.exact.solver}", self.exact))
        for name, r in answers:
            b = _outcome(r)
            rows[name] = {"objective f": b.quality.objective_value, "gap to f*": b.quality.gap,
                          "expected return": r.expected_return, "volatility": r.volatility, "sharpe": r.sharpe,
                          "chosen": ", ".join(b.selected), "status": r.status, "seconds": r.timings["total_s"]}
        return pd.DataFrame(rows).T

    def selection(self) -> pd.DataFrame:
        """Per asset: the weight of each answer and whether each chose it."""
        chosen = set(self.outcome.selected)
        out = {"weight": self.result.weights, "chosen": [t in chosen for t in self.problem.tickers]}
        if self.exact is not None:
            exact_chosen = set(_outcome(self.exact).selected)
            out["exact weight"] = self.exact.weights
            out["exact chose"] = [t in exact_chosen for t in self.problem.tickers]
        return pd.DataFrame(out, index=self.problem.tickers)[[c for c in ("weight", "exact weight", "chosen",
                                                                         "exact chose") if c in out]]

    def diagnostics(self) -> pd.Series:
        """The scalar diagnostics of the requested method's answer."""
        d = self.result.diagnostics
        keys = [k for k in METRIC_KEYS if k in d] + ["mixer", "backend", "sampler", "bitstring", "exact_bitstring",
                                                     "penalty_rule", "fallback_reason", "auto_choice"]
        return pd.Series({k: d[k] for k in keys if k in d and d[k] is not None}, dtype=object)

    def metrics(self) -> dict[str, float]:
        """Flat finite numbers for MLflow."""
        d = self.result.diagnostics
        out = {}
        for k in METRIC_KEYS:
            v = d.get(k)
            if is_number(v):
                out[k] = float(v)  # type: ignore[arg-type]  # is_number: a finite real
        out["optimal_found"] = float(self.outcome.quality.optimal)
        out["fell_back"] = float(self.result.fallback_reason is not None)
        out["expected_return"] = self.result.expected_return
        out["volatility"] = self.result.volatility
        if self.exact is not None:
            out["exact_expected_return"] = self.exact.expected_return
            out["exact_volatility"] = self.exact.volatility
        return out

    def distribution_figure(self, top: int = 40):
        """The most likely (or most sampled) strings, feasible or not, the optimum marked."""
        import plotly.graph_objects as go

        outcome = self.outcome
        frac = self._fractions()
        items = sorted(frac.items(), key=lambda t: -t[1])[:top]
        if not items or outcome.distribution is None:
            return _empty_figure("no samples: the answer came from the exact solver")
        strings = [s for s, _ in items]
        probs = [v for _, v in items]
        exact = None if outcome.reference is None else bitstring(outcome.reference.x)
        colors = []
        for s in strings:
            if s == exact:
                colors.append("#2ca02c")
            elif not self.model.is_feasible(np.array([c == "1" for c in s], float)):
                colors.append("#d62728")
            else:
                colors.append("#1f77b4")
        fig = go.Figure(go.Bar(x=list(range(len(strings))), y=probs, marker_color=colors,
                               hovertext=[f"{s}<br>{self._names(s)}" for s in strings]))
        uniform = outcome.quality.uniform_p_optimum
        if uniform:
            fig.add_hline(y=uniform, line_dash="dot", annotation_text="P(optimum) of a uniformly random feasible answer")
        what = ("probability" if outcome.distribution.kind is DistributionKind.EXACT_STATEVECTOR
                else "fraction of samples")
        fig.update_layout(title=f"{self.result.method}: the {len(strings)} most likely strings "
                                f"(green: the exact optimum; red: infeasible)",
                          xaxis_title="string (by likelihood; hover for the names)", yaxis_title=what,
                          template="plotly_white", height=420)
        return fig

    def landscape_figure(self):
        """Every feasible selection's objective (sorted), with the probability the method put on it."""
        import plotly.graph_objects as go

        from qpo.quantum.exact import BRUTE_FORCE_MAX_VARIABLES, index_to_bits

        model = self.model
        if model.n_variables > BRUTE_FORCE_MAX_VARIABLES:
            return _empty_figure(f"{model.n_variables} bits: the landscape is drawn up to "
                                 f"{BRUTE_FORCE_MAX_VARIABLES}")
        ref = self.outcome.reference
        land = None if ref is None else ref.landscape  # enumerated once, with the exact reference
        if land is None:
            return _empty_figure(f"no exact reference, so no landscape: {self.outcome.reference_error}")
        idx = np.flatnonzero(land.feasible)
        order = idx[np.argsort(land.objective[idx])]
        prob = {int(s[::-1], 2): v for s, v in self._fractions().items()}
        p = np.array([prob.get(int(i), 0.0) for i in order])
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=np.arange(len(order)), y=land.objective[order], mode="lines",
                                 name="objective f (sorted)", yaxis="y"))
        fig.add_trace(go.Bar(x=np.arange(len(order)), y=p, name="probability on it", yaxis="y2", opacity=0.6))
        best = self._names("".join("1" if b else "0" for b in index_to_bits(int(order[0]), model.n_variables)))
        fig.update_layout(title=f"Energy landscape: {len(order)} feasible strings, best first ({best})",
                          xaxis_title="feasible string, by objective", yaxis_title="objective f (lower is better)",
                          yaxis2=dict(title="probability", overlaying="y", side="right"), template="plotly_white",
                          height=420, legend=dict(orientation="h"))
        return fig

    def selection_figure(self):
        from qpo.reporting.figures import weights_figure

        weights = {self.result.method: self.result.weights}
        if self.exact is not None:
            weights["exact"] = self.exact.weights
        return weights_figure(weights, title="The selected portfolio next to the exact one")


def _empty_figure(text: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template="plotly_white", height=200)
    return fig


def quantum_study(problem: PortfolioProblem, objective: str = "asset_selection", method: str = "qaoa", *,
                  seed: int = 0, **options) -> QuantumStudy:
    """Solve ``problem``'s binary ``objective`` with ``method`` and show it next to the exact optimum the
    result already carries (one solve: the exact reference is not solved a second time)."""
    result = optimize(problem, objective, method=method, seed=seed, confidence_level=None, **options)
    return QuantumStudy.from_result(problem, result)


def _outcome(result: OptimizationResult) -> BinaryOutcome:
    if result.binary is None:
        raise ProblemError(f"a quantum study needs the result of a binary objective (asset_selection, integer_lots); "
                           f"this is {result.objective!r} by method {result.method!r}")
    return result.binary


def _exact_result(problem: PortfolioProblem, result: OptimizationResult, outcome: BinaryOutcome
                  ) -> OptimizationResult | None:
    """The exact reference's answer as a result of its own, from what ``outcome`` holds."""
    if outcome.method == "exact":
        return result
    ref = outcome.reference_outcome()
    if ref is None or ref.reference is None:
        return None
    w = ref.weights.to_numpy()
    ret, vol, sharpe = portfolio_statistics(problem, w)
    seconds = ref.reference.wall_time_s
    return OptimizationResult(
        weights=pd.Series(w, index=problem.tickers, name="weight"), expected_return=ret, volatility=vol,
        sharpe=sharpe, objective=result.objective, method="exact", solver=ref.solver, status=ref.status,
        periods_per_year=problem.periods_per_year, risk_free_rate=problem.risk_free_rate,
        timings={"build_s": 0.0, "solve_s": seconds, "total_s": seconds}, diagnostics=ref.diagnostics(), binary=ref)
