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
# # A parameter sweep
#
# A finished sweep read back from MLflow: one pipeline's notebook run for every cell of a grid, e.g. `qpo pipeline sweep backtest -p costs 0 0.001 0.002 0.003 -p window 126 252 504`, each cell a child run of one parent run. Below: the status of every cell, the comparison table (the parameters and every metric each child recorded) and a metric against the first parameter, one line per value of the others (Sharpe against costs for each window). The numbers are read from the child runs themselves, so a run repaired later shows its new status.

# %% tags=["parameters"]
from typing import Optional

sweep_run_id: "Optional[str]" = None  # the parent MLflow run of a finished sweep; None reads the latest sweep
metric: "Optional[str]" = None  # the metric plotted against the first parameter; None: the Sharpe ratio of the first strategy (not a baseline nor the benchmark)

# %% tags=["nbval-check-output"]
from qpo.workbench import record, show_figure
from qpo.workbench.sweep import read_sweep

sweep = read_sweep(sweep_run_id)
counts = sweep.table["status"].value_counts().sort_index()
print(f"sweep of {sweep.pipeline}: {len(sweep.cells)} cells over {', '.join(sweep.names)}; "
      + ", ".join(f"{n} {status}" for status, n in counts.items()) + f"; parent run {sweep.status}")

# %% [markdown]
# ## Cells
#
# One row per cell: its parameters, its status, its child run and the cell's seconds in its worker, then every metric its notebook recorded (empty for a cell that did not finish).

# %%
display(sweep.table.style.format(precision=4, na_rep=""))
failed = sweep.table[~sweep.table["status"].isin(["FINISHED"])]
for _, row in failed.iterrows():
    cell = sweep.cells[int(row["cell"])]
    values = ", ".join(f"{n}={cell['parameters'].get(n)}" for n in sweep.names)
    print(f"cell {row['cell']} ({values}): {row['status']}: {cell.get('error') or ''}")

# %%
figure = sweep.figure(metric)
show_figure(figure, "sweep")
record("cells", len(sweep.cells), show=False)
record("finished", int((sweep.table["status"] == "FINISHED").sum()), show=False)
record("metric", figure.layout.yaxis.title.text, show=False)
