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
# # Book risk
#
# Every portfolio valued on a date, risk-checked: volatility, VaR and CVaR (historical and parametric), beta, drawdown, the stress scenarios and every compliance check against the portfolio's own limits, the same numbers the daily risk report gives each portfolio, computed in bulk on a Dask cluster and stored per date. Each breach is an alert (one alert while it lasts, resolved when a later run passes); new alerts are e-mailed and posted when delivery is configured. The book report (HTML) opens with the breaches. Run by `qpo pipeline run risk` on weekdays at 18:00, after the valuation of the same date (it refuses a date without one); the same run from a shell is `qpo nightly risk [--fail-on-breach]`. Every number recorded below is logged to MLflow, and the stored operations run names that MLflow run.

# %% tags=["parameters"]
from typing import Optional

as_of: "Optional[str]" = None  # risk date YYYY-MM-DD, or None for the last date of the prices (it needs that date's valuation)
workers: "Optional[int]" = None  # local Dask worker processes; None: the usable CPUs (ignored with QPO_DASK_SCHEDULER)
chunk_size: "Optional[int]" = None  # portfolios per Dask task; None: about four tasks per worker
max_stale_days: int = 5  # a held name without a bar for more trading days than this is unpriced, not carried
deliver: bool = True  # e-mail / post the new alerts when delivery is configured (QPO_SMTP_HOST, QPO_ALERT_WEBHOOK)
run_id: "Optional[str]" = None  # MLflow run id; the pipeline runner sets it and logs the run itself

# %%
import contextlib

import pandas as pd

import qpo
from qpo.operations.nightly import run_risk
from qpo.reporting.book import book_figures, quantile_table
from qpo.workbench import record, show_figure

lines = []  # progress, delivery and the Dask dashboard's link, shown below (not part of the checked output)
tracking = (qpo.tracked_run("book-risk", params={"as_of": as_of, "workers": workers, "chunk_size": chunk_size})
            if run_id is None else contextlib.nullcontext(None))  # by hand: this notebook logs its own MLflow run
with tracking as mlflow_run:
    result = run_risk(as_of, workers=workers, chunk_size=chunk_size, max_stale_days=max_stale_days, deliver=deliver,
                      log=lines.append, mlflow_run_id=run_id or mlflow_run.run_id)
    figures = book_figures(result.table)
    if mlflow_run is not None:
        mlflow_run.log_metrics(result.metrics())
        mlflow_run.log_artifact(result.report)
        for name, fig in figures.items():
            mlflow_run.log_figure(fig, name)
# %% [markdown]
# What the run did (the line the notebook tests compare; the progress and the dashboard link follow):

# %% tags=["nbval-check-output"]
print(f"risk of {result.as_of}: {result.checked} portfolios risk-checked"
      + (f", {len(result.unchecked)} NOT risk-checked (unknown, not a pass)" if result.unchecked else "")
      + f"; {result.breaches} failed check(s) in {result.breaching} portfolio(s); alerts: {result.new_alerts} new, "
      f"{result.persisting_alerts} persisting, {result.resolved_alerts} resolved")

# %%
print("\n".join(lines))  # progress, and every warning (stale prices, no benchmark bar, no new data) as "WARNING: ..."
for name, value in result.metrics().items():
    record(name, value, show=False)
record("as_of", str(result.as_of), show=False)
record("book_report", result.report, show=False)
record("mlflow_run_id", run_id or mlflow_run.run_id, show=False)
print(f"book report (offline HTML): {result.report}")

# %% [markdown]
# ## Breaches
#
# Every failed compliance check, with its alert: *new* today, or *persisting* from an earlier run (one alert while the breach lasts).

# %%
open_alerts = pd.DataFrame(result.alerts.get("new", []) + result.alerts.get("persisting", []))
if open_alerts.empty:
    print("no compliance breach: every checked limit holds")
else:
    display(open_alerts[["portfolio", "advisor_email", "check", "value", "limit", "severity", "state", "first_seen"]]
            .sort_values(["state", "portfolio"]).style.format({"value": "{:.4g}", "limit": "{:.4g}"}).hide(axis="index"))

# %% [markdown]
# ## Risk across the book
#
# VaR and CVaR are positive one-day losses at 95 %; volatility is annualized; the worst stress loss is the largest loss of the historical and hypothetical scenarios on today's weights.

# %%
display(quantile_table(result.table).style.format("{:.4f}").format({"portfolios": "{:,.0f}"}))
for name, fig in figures.items():
    show_figure(fig, name)

# %% [markdown]
# ## Worst portfolios

# %%
from qpo.store.operations import book_risk_on

stored = book_risk_on(qpo.store.connect(create=False), result.as_of)  # as stored, with each portfolio's name
worst = stored.sort_values("var_historical", ascending=False).head(10)
percent = ("volatility", "var_historical", "cvar_historical", "var_parametric", "cvar_parametric", "max_drawdown",
           "worst_stress")
worst[["portfolio", "advisor_email", *percent, "beta", "breaches"]].style.format(
    {**{c: "{:.2%}" for c in percent}, "beta": "{:.3f}"}, na_rep="–").hide(axis="index")
