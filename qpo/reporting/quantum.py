"""The quantum-vs-classical study behind ``notebooks/04_quantum_vs_classical.ipynb``: one binary
selection problem solved by the requested method (QAOA, annealing, ...) and exactly, side by side,
with the sample distribution, the energy landscape and the diagnostics."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpo.optimization import OptimizationResult, PortfolioProblem, optimize

#: diagnostics that are numbers and go to MLflow as metrics
METRIC_KEYS = ("objective_value", "f_star", "gap", "approximation_ratio", "expected_approximation_ratio",
               "p_optimum", "p_feasible", "uniform_p_optimum", "tts99_samples", "tts99_s", "evaluations",
               "wall_time_s", "penalty", "energy", "qubits", "n_feasible", "f_max", "exact_wall_time_s",
               "p_feasible_reads", "num_reads", "reps", "cvar_alpha", "p_feasible_raw", "p_optimum_raw",
               "expected_approximation_ratio_raw")


@dataclass
class QuantumStudy:
    """A binary problem, the requested method's result and the exact one."""

    problem: PortfolioProblem
    result: OptimizationResult
    exact: OptimizationResult
    model: object = None  # the BinaryModel both solved

    def _fractions(self) -> dict[str, float]:
        """The stored samples as probabilities: exact ones as they are; counts over all samples."""
        d = self.result.diagnostics
        samples = d.get("samples") or {}
        if d.get("distribution", "").startswith("exact"):
            return dict(samples)
        total = d.get("samples_per_run") or sum(samples.values()) or 1
        return {k: v / total for k, v in samples.items()}

    def _names(self, bits: str) -> str:
        x = np.array([c == "1" for c in bits], float)
        info = self.model.decode(x)[1]
        if "lots" in info:
            return ", ".join(f"{t} x{n}" for t, n in info["lots"].items() if n) or "(nothing)"
        return ", ".join(info["selected"]) or "(nothing)"

    def comparison(self) -> pd.DataFrame:
        """The two portfolios: objective, return, volatility, Sharpe, chosen names, solver, time."""
        rows = {}
        for name, r in ((f"requested ({self.result.method}): {self.result.solver}", self.result),
                        (f"reference (exact): {self.exact.solver}", self.exact)):
            d = r.diagnostics
            rows[name] = {"objective f": d["objective_value"], "gap to f*": d["gap"],
                          "expected return": r.expected_return, "volatility": r.volatility, "sharpe": r.sharpe,
                          "chosen": ", ".join(d["selected"]), "status": r.status,
                          "seconds": r.timings["total_s"]}
        return pd.DataFrame(rows).T

    def selection(self) -> pd.DataFrame:
        """Per asset: the weight of each answer and whether each chose it."""
        return pd.DataFrame({"weight": self.result.weights, "exact weight": self.exact.weights,
                             "chosen": [t in self.result.diagnostics["selected"] for t in self.problem.tickers],
                             "exact chose": [t in self.exact.diagnostics["selected"] for t in self.problem.tickers]},
                            index=self.problem.tickers)

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
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v):
                out[k] = float(v)
        gap = d.get("gap")
        out["optimal_found"] = float(gap is not None and gap <= 1e-9 and bool(d.get("exact_proven_optimal")))
        out["fell_back"] = float(self.result.fallback_reason is not None)
        out["expected_return"] = self.result.expected_return
        out["volatility"] = self.result.volatility
        out["exact_expected_return"] = self.exact.expected_return
        out["exact_volatility"] = self.exact.volatility
        return out

    def distribution_figure(self, top: int = 40):
        """The most likely (or most sampled) strings, feasible or not, the optimum marked."""
        import plotly.graph_objects as go

        d = self.result.diagnostics
        frac = self._fractions()
        items = sorted(frac.items(), key=lambda t: -t[1])[:top]
        if not items:
            return _empty_figure("no samples: the answer came from the exact solver")
        strings = [s for s, _ in items]
        probs = [v for _, v in items]
        exact = d.get("exact_bitstring")
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
        uniform = d.get("uniform_p_optimum")
        if uniform:
            fig.add_hline(y=uniform, line_dash="dot", annotation_text="P(optimum) of a uniformly random feasible answer")
        what = "probability" if d.get("distribution", "").startswith("exact") else "fraction of samples"
        fig.update_layout(title=f"{self.result.method}: the {len(strings)} most likely strings "
                                f"(green: the exact optimum; red: infeasible)",
                          xaxis_title="string (by likelihood; hover for the names)", yaxis_title=what,
                          template="plotly_white", height=420)
        return fig

    def landscape_figure(self):
        """Every feasible selection's objective (sorted), with the probability the method put on it."""
        import plotly.graph_objects as go

        from qpo.quantum.exact import (
            BRUTE_FORCE_MAX_VARIABLES,
            index_to_bits,
            landscape,
        )

        model = self.model
        if model.n_variables > BRUTE_FORCE_MAX_VARIABLES:
            return _empty_figure(f"{model.n_variables} bits: the landscape is drawn up to "
                                 f"{BRUTE_FORCE_MAX_VARIABLES}")
        land = landscape(model)
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

        return weights_figure({self.result.method: self.result.weights, "exact": self.exact.weights},
                              title="The selected portfolio next to the exact one")


def _empty_figure(text: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template="plotly_white", height=200)
    return fig


def quantum_study(problem: PortfolioProblem, objective: str = "asset_selection", method: str = "qaoa", *,
                  seed: int = 0, **options) -> QuantumStudy:
    """Solve ``problem``'s binary ``objective`` with ``method`` and exactly (``method="exact"``)."""
    from qpo.quantum.engine import build_model, resolve_binary_options

    result = optimize(problem, objective, method=method, seed=seed, confidence_level=None, **options)
    exact_opts = {k: v for k, v in options.items() if k in _objective_option_names(objective)}
    exact = optimize(problem, objective, method="exact", seed=seed, confidence_level=None, **exact_opts)
    model = build_model(problem, objective, resolve_binary_options(objective, "exact", exact_opts)[0])
    return QuantumStudy(problem=problem, result=result, exact=exact, model=model)


def _objective_option_names(objective: str) -> set[str]:
    from qpo.quantum.engine import BINARY_OBJECTIVE_OPTIONS

    return set(BINARY_OBJECTIVE_OPTIONS[objective])
