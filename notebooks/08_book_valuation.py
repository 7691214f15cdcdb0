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
# # Book valuation
#
# Every portfolio of the store valued on a date: market value, cash, and the daily, month-to-date, year-to-date and since-inception time-weighted returns, stored per date (a rerun replaces the date). The prices are the store's market data (the bundled panel on a fresh install); the book is split into chunks of portfolios computed on a Dask cluster (a local cluster of worker processes, or the scheduler at `QPO_DASK_SCHEDULER`). Run by `qpo pipeline run valuation` on weekdays at 17:00, before the 18:00 risk run; the same run from a shell is `qpo nightly value`. Every number recorded below is logged to MLflow, and the stored operations run names that MLflow run.

# %% tags=["parameters"]
from typing import Optional

as_of: "Optional[str]" = None  # valuation date YYYY-MM-DD, or None for the last date of the prices
workers: "Optional[int]" = None  # local Dask worker processes; None: the usable CPUs (ignored with QPO_DASK_SCHEDULER)
chunk_size: "Optional[int]" = None  # portfolios per Dask task; None: about four tasks per worker
max_stale_days: int = 5  # a held name without a bar for more trading days than this is unpriced, not carried
run_id: "Optional[str]" = None  # MLflow run id; the pipeline runner sets it and logs the run itself

# %%
import contextlib

from IPython.display import HTML

import qpo
from qpo.book.valuation import book_totals
from qpo.operations.nightly import run_valuation
from qpo.reporting.book import valuation_figures
from qpo.store.operations import valuations_on
from qpo.workbench import record, show_figure

lines = []  # progress and the Dask dashboard's link, shown below (not part of the checked output)
tracking = (qpo.tracked_run("book-valuation", params={"as_of": as_of, "workers": workers, "chunk_size": chunk_size})
            if run_id is None else contextlib.nullcontext(None))  # by hand: this notebook logs its own MLflow run
with tracking as mlflow_run:
    result = run_valuation(as_of, workers=workers, chunk_size=chunk_size, max_stale_days=max_stale_days, log=lines.append,
                           mlflow_run_id=run_id or mlflow_run.run_id)
    valuations = valuations_on(qpo.store.connect(create=False), result.as_of)  # as stored, with names
    figures = valuation_figures(valuations)
    if mlflow_run is not None:
        mlflow_run.log_metrics(result.metrics())
        for name, fig in figures.items():
            mlflow_run.log_figure(fig, name)
# %% [markdown]
# What the run did (the line the notebook tests compare; the progress and the dashboard link follow):

# %% tags=["nbval-check-output"]
print(f"valuation of {result.as_of}: {result.portfolios} portfolios, {result.valued} valued, {result.unpriced} "
      f"unpriced, {result.stale} with stale prices, {result.empty} empty; prices from the {result.price_source} panel")

# %%
print("\n".join(lines))
for name, value in result.metrics().items():
    record(name, value, show=False)
record("as_of", str(result.as_of), show=False)
record("price_source", result.price_source, show=False)
record("mlflow_run_id", run_id or mlflow_run.run_id, show=False)

# %% [markdown]
# ## The book on the date
#
# Market value is the shares held at the last price on or before the date plus cash; a portfolio holding a name without any price is *unpriced* (no value, never zero), and one whose names' last prices are older than the date is flagged *stale*.

# %%
for name, fig in figures.items():
    show_figure(fig, name)
totals = book_totals(valuations)
record("book_market_value_priced", totals["market_value_priced"], show=False)
if totals["market_value_complete"] is not None:
    record("book_market_value", totals["market_value_complete"], show=False)
    display(HTML(f"<p>Book market value ${totals['market_value_complete']:,.2f}, cash ${totals['cash_priced']:,.2f}.</p>"))
else:  # a total that leaves unpriced portfolios out is not the book's: said so
    display(HTML(f"<p>Book market value unknown: {totals['unpriced']} of {totals['portfolios']} portfolio(s) unpriced. "
                 f"The {totals['priced']} priced: ${totals['market_value_priced']:,.2f}, cash "
                 f"${totals['cash_priced']:,.2f}.</p>"))
columns = ["portfolio", "advisor_email", "market_value", "cash", "daily_return", "mtd_return", "ytd_return",
           "inception_return", "status"]
valuations.nlargest(10, "market_value")[columns].style.format(
    {"market_value": "${:,.2f}", "cash": "${:,.2f}", "daily_return": "{:.2%}", "mtd_return": "{:.2%}",
     "ytd_return": "{:.2%}", "inception_return": "{:.2%}"}, na_rep="–").hide(axis="index")

# %% [markdown]
# ## Unpriced and stale

# %%
flagged = valuations[(valuations["status"] == "unpriced") | valuations["stale"].map(lambda s: bool(s))]
if flagged.empty:
    print("every portfolio was valued at prices of the date")
else:
    display(flagged[["portfolio", "advisor_email", "status", "unpriced", "stale"]].head(50))
