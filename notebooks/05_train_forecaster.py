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
# # Train the return forecaster
#
# Walk-forward evaluation of a PyTorch return forecaster against the historical mean and zero, out of sample; then the final model, trained on all the data, is logged to MLflow and registered as `qpo-return-forecaster`. It becomes `@champion` only when its out-of-sample mean rank IC beats the historical mean's and the current champion's; otherwise it is kept as `@challenger`. Run by `qpo pipeline run weekly-retrain` on Mondays at 02:00.

# %% tags=["parameters"]
from typing import Optional

model: str = "mlp"  # forecaster: mlp, lstm or gru
horizon: int = 21  # forecast horizon in trading days
feature_window: "Optional[int]" = None  # days of features per sample; None: 1 for mlp, 21 for lstm and gru
hidden: int = 32  # hidden units per layer
layers: int = 2  # hidden layers
max_epochs: int = 40  # most training epochs per fold
patience: int = 5  # epochs without a better validation loss before training stops
seed: int = 0  # seeds the weights and the minibatches
retrain_months: int = 12  # the walk-forward retrains every this many months
walk_window: str = "expanding"  # training window: expanding (from the first date) or rolling
train_years: "Optional[float]" = None  # years of a rolling training window; None for expanding
prices_source: str = "store"  # "store" (its market data, else the bundled panel), a bundled source name, or a CSV/Parquet file
history_start: str = "2005-01-01"  # first date of prices (validated before the run)
history_end: "Optional[str]" = None  # last date, or None for the end of the data
tickers: "Optional[str]" = None  # comma-separated subset of the columns, or None for all
model_name: str = "qpo-return-forecaster"  # registered model name in the MLflow registry
threads: int = 1  # torch CPU threads: 1 is fastest on a shared machine
run_id: "Optional[str]" = None  # set by the pipeline runner: the model and metrics go into its run

# %%
import contextlib
import io

from IPython.display import HTML, display

from qpo.forecasting import ForecasterConfig
from qpo.reporting.forecast import baseline_table, folds_figure, folds_table, ic_figure, promotion_html
from qpo.tracking import registry_table, train_and_register
from qpo.workbench import record, show_figure
from qpo.workbench.prices import notebook_prices

prices = notebook_prices(prices_source, start=history_start, end=history_end,
                         tickers=[t.strip() for t in tickers.split(",")] if tickers else None).prices
config = ForecasterConfig(model=model, horizon=horizon, window=feature_window, hidden=hidden, layers=layers,
                          max_epochs=max_epochs, patience=patience, seed=seed)
training_log = io.StringIO()  # fold by fold progress and MLflow's messages, shown under Folds


def progress(fold, folds, row):
    print(f"fold {fold}/{folds}: trained to {row['train_end'].date()}, {row['epochs']} epochs in "
          f"{row['fit_seconds']:.1f} s; IC {row['mean_ic']:.4f} vs historical mean {row['baseline_mean_ic']:.4f}",
          file=training_log)


# with run_id (the pipeline's run) the model and metrics go into that run; without, into a new one
with contextlib.redirect_stderr(training_log):
    result, forecaster, registration = train_and_register(
        prices, config, retrain_months=retrain_months, window=walk_window, train_years=train_years,
        run_id=run_id, model_name=model_name, threads=threads, progress=progress)

# %% tags=["nbval-check-output"]
display(HTML(promotion_html(registration, result)))  # the decision first
print(f"{prices.shape[1]} tickers, {len(prices)} days {prices.index[0].date()} to {prices.index[-1].date()}; "
      f"{len(result.folds)} folds in {result.seconds:.1f} s; the final model, trained to "
      f"{forecaster.train_end.date()} in {len(forecaster.history)} epochs, is {registration.model_uri}")

# %% [markdown]
# ## Against the baselines
#
# Out of sample, on the same (date, ticker) pairs: the mean Spearman rank IC across tickers per forecast date (forecast dates every `horizon` days, so the realized returns do not overlap), its t-stat, the share of dates with IC > 0, the hit rate (sign right) and the mean squared error of the forecast return. Zero is a constant: no rank IC.

# %%
baseline_table(result)

# %%
show_figure(ic_figure(result), "ic")

# %% [markdown]
# ## Folds
#
# Each fold's model is trained on the labels known at its first forecast date and early-stopped on the last dates of its training period.

# %%
show_figure(folds_figure(result), "folds")
display(folds_table(result).style.format({"fit seconds": "{:.1f}", "model IC": "{:.4f}",
                                          "historical mean IC": "{:.4f}"}, na_rep="–"))
print(training_log.getvalue())

# %% [markdown]
# ## The registry
#
# Every version of the model, its aliases, its out-of-sample IC and the promotion decision with its reason.

# %%
registry_table(model_name).style.format({"oos_mean_ic": "{:.4f}", "baseline_mean_ic": "{:.4f}"},
                                        na_rep="–").hide(axis="index")

# %%
# machine-readable copies of the numbers (the pipeline logs them to its MLflow run)
record("oos_mean_ic", registration.oos_mean_ic, show=False)
record("baseline_mean_ic", registration.baseline_mean_ic, show=False)
record("promoted", int(registration.promoted), show=False)
record("model_version", int(registration.version), show=False)
record("alias", registration.alias, show=False)
record("promotion_reason", registration.reason, show=False)
record("previous_champion", registration.previous_champion, show=False)
record("mlflow_run_id", registration.run_id, show=False)
record("folds", len(result.folds), show=False)
record("walk_forward_seconds", result.seconds, show=False)
for name, value in result.summary_metrics().items():
    record(name, value, show=False)
