# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quantum vs classical asset selection
#
# Choose `k` of `n` real S&P 500 names (each at 1/k) to minimize the annual mean-variance objective `risk_aversion/2 w'Sigma w - mu'w`, with QAOA (qpo's statevector simulation, checked against Qiskit) or annealing (dwave-samplers, local), and next to it the exact optimum (brute force, or SCIP above 20 assets). Every quantum number below is reported against that optimum. Run it here, or with `qpo pipeline run quantum-vs-classical`; either way the run and its diagnostics are logged to MLflow.

# %% tags=["parameters"]
from typing import Optional

prices_source: str = "store"  # "store" (its market data, else the bundled panel), a bundled source name, or a CSV/Parquet file
history_start: str = "2015-01-01"  # first date of the returns
history_end: "Optional[str]" = "2020-12-31"  # last date, or None for the end of the data
n: int = 10  # assets: the first n columns with full history in the window
k: int = 5  # assets to choose
method: str = "qaoa"  # qaoa, annealing, exact or auto
depth: int = 3  # QAOA layers p
mixer: str = "auto"  # QAOA mixer: x (penalties), xy (ring, Dicke start, stays feasible) or auto
cvar_alpha: float = 1.0  # QAOA CVaR aggregation: 1 is the mean energy
shots: int = 1024  # QAOA samples drawn from the final state
sampler: str = "simulated_annealing"  # annealing sampler: simulated_annealing, tabu or steepest_descent
risk_aversion: float = 10.0  # weight of the variance against the return
seed: int = 7  # seeds every random choice
run_id: "Optional[str]" = None  # set by the pipeline runner, which then logs the run itself

# %% tags=["nbval-check-output"]
import qpo
from qpo.workbench import record, show_figure
from qpo.workbench.prices import notebook_prices

prices = notebook_prices(prices_source, start=history_start, end=history_end).prices.dropna(axis=1)
returns = qpo.prices_to_returns(prices).iloc[:, :n]
problem = qpo.PortfolioProblem.from_returns(returns, covariance="ledoit_wolf")
options = {"k": k, "risk_aversion": risk_aversion}
if method in ("qaoa", "auto"):
    options.update(reps=depth, mixer=mixer, cvar_alpha=cvar_alpha, shots=shots)
if method in ("annealing", "auto"):
    options.update(sampler=sampler)
study = qpo.quantum_study(problem, "asset_selection", method=method, seed=seed, **options)
result = study.result
print(f"{returns.shape[1]} assets, {len(returns)} daily returns {returns.index[0].date()} to "
      f"{returns.index[-1].date()}; choose {k}")
if result.fallback_reason:
    print(f"fallback: {result.fallback_reason}")

# %% [markdown]
# ## The answer next to the exact optimum
#
# `gap` = (f - f*) / |f*|; the approximation ratio (f_max - f) / (f_max - f*) runs from 0 (the worst feasible choice) to 1 (the optimum); P(optimum) is against the uniform baseline 1/C(n,k); TTS99 is the time to see the optimum with 99 % probability.

# %%
display(study.comparison())
display(study.diagnostics().to_frame("value"))

# %%
show_figure(study.selection_figure(), "selection")
show_figure(study.distribution_figure(), "distribution")
show_figure(study.landscape_figure(), "landscape")

# %%
for name, value in study.metrics().items():
    record(name, value, show=False)
record("selected", ",".join(result.binary.selected), show=False)  # the typed parts of the binary result
if study.exact is not None:  # None only when the exact reference found nothing in time (result.binary.reference_error)
    record("exact_selected", ",".join(study.exact.binary.selected), show=False)
if run_id is None:  # run by hand: log to MLflow here (the pipeline runner logs its own runs)
    with qpo.tracked_run("quantum-vs-classical", params={"prices_source": prices_source, "n": n, "k": k,
                         "method": method, "depth": depth, "mixer": mixer, "sampler": sampler,
                         "risk_aversion": risk_aversion, "seed": seed, "shots": shots,
                         "cvar_alpha": cvar_alpha}, data_hash=qpo.data_hash(prices)) as run:
        run.log_metrics(study.metrics())
        run.log_figure(study.distribution_figure(), "distribution.html")
        run.log_dict({"diagnostics": study.diagnostics().astype(str).to_dict()}, "diagnostics.json")
    record("mlflow_run_id", run.run_id, show=False)
    print(f"logged to MLflow: run {run.run_id}")
