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

    def comparison(self) -> pd.DataFrame:
        """The two portfolios: objective, return, volatility, Sharpe, chosen names, solver, time."""
        rows = {}
        for name, r in ((f"{self.result.method}: {self.result.solver}", self.result),
                        (f"exact: {self.exact.solver}", self.exact)):
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
        out["optimal_found"] = float(d.get("gap", 1.0) <= 1e-9)
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
        samples = d.get("samples") or {}
        items = sorted(samples.items(), key=lambda t: -t[1])[:top]
        if not items:
            return _empty_figure("no samples: the answer came from the exact solver")
        total = sum(samples.values())
        strings = [s for s, _ in items]
        probs = [v / total for _, v in items]
        x_of = [np.array([c == "1" for c in s], float) for s in strings]
        model_tickers = self.problem.tickers
        exact = d["exact_bitstring"]
        colors = []
        for s, x in zip(strings, x_of):
            if s == exact:
                colors.append("#2ca02c")
            elif d.get("model", {}).get("kind") == "selection" and not _feasible_selection(x, d):
                colors.append("#d62728")
            else:
                colors.append("#1f77b4")
        labels = [", ".join(t for t, c in zip(model_tickers, s) if c == "1") if len(s) == len(model_tickers) else s
                  for s in strings]
        fig = go.Figure(go.Bar(x=list(range(len(strings))), y=probs, marker_color=colors,
                               hovertext=[f"{s}<br>{lab}" for s, lab in zip(strings, labels)]))
        uniform = d.get("uniform_p_optimum")
        if uniform:
            fig.add_hline(y=uniform, line_dash="dot", annotation_text="uniform over feasible: 1/C(n,k)")
        what = "probability" if d.get("distribution", "").startswith("exact") else "fraction of samples"
        fig.update_layout(title=f"{self.result.method}: the {len(strings)} most likely strings "
                                f"(green: the exact optimum; red: infeasible)",
                          xaxis_title="string (by likelihood; hover for the names)", yaxis_title=what,
                          template="plotly_white", height=420)
        return fig

    def landscape_figure(self):
        """Every feasible selection's objective (sorted), with the probability the method put on it."""
        import plotly.graph_objects as go

        from qpo.quantum.engine import build_model, resolve_binary_options
        from qpo.quantum.exact import (
            BRUTE_FORCE_MAX_VARIABLES,
            index_to_bits,
            landscape,
        )

        opts = self.result.diagnostics.get("options_used") or {}
        obj, _ = resolve_binary_options(self.result.objective, "exact", opts)
        model = build_model(self.problem, self.result.objective, obj)
        if model.n_variables > BRUTE_FORCE_MAX_VARIABLES:
            return _empty_figure(f"{model.n_variables} bits: the landscape is drawn up to "
                                 f"{BRUTE_FORCE_MAX_VARIABLES}")
        land = landscape(model)
        idx = np.flatnonzero(land.feasible)
        order = idx[np.argsort(land.objective[idx])]
        samples = self.result.diagnostics.get("samples") or {}
        total = sum(samples.values()) or 1.0
        prob = {int(s[::-1], 2): v / total for s, v in samples.items()}
        p = np.array([prob.get(int(i), 0.0) for i in order])
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=np.arange(len(order)), y=land.objective[order], mode="lines",
                                 name="objective f (sorted)", yaxis="y"))
        fig.add_trace(go.Bar(x=np.arange(len(order)), y=p, name="probability on it", yaxis="y2", opacity=0.6))
        names = [", ".join(t for t, b in zip(self.problem.tickers, index_to_bits(i, model.n_variables)) if b)
                 for i in order[:1]]
        fig.update_layout(title=f"Energy landscape: {len(order)} feasible strings, best first ({names[0]})",
                          xaxis_title="feasible string, by objective", yaxis_title="objective f (lower is better)",
                          yaxis2=dict(title="probability", overlaying="y", side="right"), template="plotly_white",
                          height=420, legend=dict(orientation="h"))
        return fig

    def selection_figure(self):
        from qpo.reporting.figures import weights_figure

        return weights_figure({self.result.method: self.result.weights, "exact": self.exact.weights},
                              title="The selected portfolio next to the exact one")


def _feasible_selection(x: np.ndarray, d: dict) -> bool:
    m = d.get("model", {})
    k = m.get("k")
    if k is None:
        return True
    return x.sum() == k if m.get("cardinality") == "exact" else x.sum() <= k


def _empty_figure(text: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template="plotly_white", height=200)
    return fig


def quantum_study(problem: PortfolioProblem, objective: str = "asset_selection", method: str = "qaoa", *,
                  seed: int = 0, **options) -> QuantumStudy:
    """Solve ``problem``'s binary ``objective`` with ``method`` and exactly (``method="exact"``)."""
    result = optimize(problem, objective, method=method, seed=seed, confidence_level=None, **options)
    result.diagnostics["options_used"] = {k: v for k, v in options.items()
                                          if k in _objective_option_names(objective)}
    exact_opts = {k: v for k, v in options.items() if k in _objective_option_names(objective)}
    exact = optimize(problem, objective, method="exact", seed=seed, confidence_level=None, **exact_opts)
    return QuantumStudy(problem=problem, result=result, exact=exact)


def _objective_option_names(objective: str) -> set[str]:
    from qpo.quantum.engine import BINARY_OBJECTIVE_OPTIONS

    return set(BINARY_OBJECTIVE_OPTIONS[objective])
